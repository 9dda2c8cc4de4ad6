#!/usr/bin/env bash
# Latency of a 4-peer cluster on loopback, for the README's cluster figures:
# bench/cluster/main.go starts four `varpar peer` processes with deploy/local
# (one compute thread each, the built-in MNIST family), waits until they have
# agreed on the plan and serve it, runs `varpar loadgen` over the MNIST test
# digits spread over the four (after 5 s of GET /healthz at the same rate:
# the HTTP round trip alone), prints the slowest variant's own forward time
# for comparison, and stops the peers it started.
#
# usage: bench/cluster/loadgen.sh [RATE] [DURATION]    (defaults 100 15s)
# PEERS=N (default 4, at most 8) changes the number of peers; VARPAR_BIN the
# binary; PROFILE_DIR=DIR writes each peer's CPU profile there (peerI.prof).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VARPAR_BIN:-$ROOT/bin/varpar}
[[ -x $BIN ]] || make -C "$ROOT" build >&2
cd "$ROOT"
exec go run ./bench/cluster -bin "$BIN" -rate "${1:-100}" -duration "${2:-15s}" -peers "${PEERS:-4}" \
	${PROFILE_DIR:+-profile-dir "$PROFILE_DIR"}
