#!/usr/bin/env bash
# Compares varpar's single-image latency with ONNX Runtime's (onnxruntime-node,
# CPU, one thread) on the same MobileNetV2 networks and weights, and prints a
# markdown table.
#
# usage: bench/compare/compare.sh [--out DIR] [--rows a,b,...] [--rounds N]
#                                 [--threads N] [--ort-seconds S] [--varpar BIN]
#
#   --out DIR        where the models live / are made (env VARPAR_COMPARE_OUT,
#                    default build/bench-compare under the repository root)
#   --rows LIST      comma-separated subset of the rows below (env VARPAR_COMPARE_ROWS)
#   --rounds N       varpar/ORT alternations per row, best median kept
#                    (env VARPAR_COMPARE_ROUNDS, default 2)
#   --threads N      threads for both engines (env VARPAR_COMPARE_THREADS, default 1)
#   --ort-seconds S  timed seconds per ORT run (env VARPAR_COMPARE_ORT_SECONDS, default 2.5)
#   --varpar BIN     the varpar binary (env VARPAR_BIN, default bin/varpar; built
#                    with `make build` when missing)
#
# Steps: npm ci --ignore-scripts when node_modules is missing; make_models.py
# for rows whose models are missing (needs Debian's python3-torch,
# python3-torchvision, python3-onnx); an ORT-vs-torch output check of every
# model; then per row, N rounds of `varpar bench` and ort_bench.js alternately.
# The raw results go to OUT/last.jsonl and the table to OUT/last.md as well.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_ROWS="mnv2-100-r224,mnv2-035-r32,mnv2-050-r96,mnv2-cifar-100-r32"

OUT=${VARPAR_COMPARE_OUT:-$ROOT/build/bench-compare}
ROWS=${VARPAR_COMPARE_ROWS:-$ALL_ROWS}
ROUNDS=${VARPAR_COMPARE_ROUNDS:-2}
THREADS=${VARPAR_COMPARE_THREADS:-1}
ORT_SECONDS=${VARPAR_COMPARE_ORT_SECONDS:-2.5}
VARPAR=${VARPAR_BIN:-$ROOT/bin/varpar}
PY=${VARPAR_COMPARE_PYTHON:-/usr/bin/python3} # Debian's, with python3-torch

die() { echo "compare.sh: $*" >&2; exit 1; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --out) need_arg "$@"; OUT=$2; shift 2 ;;
    --rows) need_arg "$@"; ROWS=$2; shift 2 ;;
    --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
    --threads) need_arg "$@"; THREADS=$2; shift 2 ;;
    --ort-seconds) need_arg "$@"; ORT_SECONDS=$2; shift 2 ;;
    --varpar) need_arg "$@"; VARPAR=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer, got $ROUNDS"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads wants a positive integer, got $THREADS"
IFS=, read -r -a rows <<< "$ROWS"
[[ ${#rows[@]} -gt 0 ]] || die "no rows selected"
for r in "${rows[@]}"; do
  [[ ,$ALL_ROWS, == *",$r,"* ]] || die "unknown row $r; known: $ALL_ROWS"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# 1. ONNX Runtime for node.
command -v node >/dev/null || die "node is not installed (apt-get install -y nodejs npm)"
if [[ ! -d $HERE/node_modules/onnxruntime-node ]]; then
  echo "== npm ci --ignore-scripts (in bench/compare)" >&2
  command -v npm >/dev/null || die "npm is not installed (apt-get install -y npm)"
  (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund >&2) || die "npm ci failed"
fi

# 2. Models.
missing=()
for r in "${rows[@]}"; do
  if [[ ! -f $OUT/$r/family.json || ! -f $OUT/$r/$r.onnx ]]; then missing+=("$r"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if ! [[ -x $PY ]] || ! "$PY" -c 'import torch, torchvision, onnx' 2>/dev/null; then
    echo "compare.sh: making the models needs Debian's torch, torchvision and onnx for $PY; run:" >&2
    echo "  apt-get update && apt-get install -y python3-torch python3-torchvision python3-onnx" >&2
    exit 1
  fi
  list=$(IFS=,; echo "${missing[*]}")
  echo "== making models: $list" >&2
  "$PY" "$HERE/make_models.py" "$OUT" --rows "$list" >&2 || die "make_models.py failed"
fi

# 3. The ONNX files compute what torch computes.
onnx=()
for r in "${rows[@]}"; do onnx+=("$OUT/$r/$r.onnx"); done
echo "== checking ORT output against torch" >&2
node "$HERE/ort_bench.js" --check "${onnx[@]}" >&2 || die "ORT output differs from torch's"

# 4. varpar.
if [[ ! -x $VARPAR ]]; then
  echo "== make build" >&2
  make -C "$ROOT" build >&2 || die "make build failed"
  [[ -x $VARPAR ]] || die "$VARPAR still missing after make build"
fi

# 4b. varpar computes what torch computes, on these very weights.
echo "== checking varpar output against torch" >&2
(cd "$ROOT" && VARPAR_BENCH_DIR="$OUT" VARPAR_BENCH_ROWS="$(IFS=,; echo "${rows[*]}")" \
  go test -count=1 -run TestBenchCompareModels ./nn >&2) || die "varpar output differs from torch's"

# 5. Alternate the engines so that both see the same machine noise.
results=$OUT/last.jsonl
: > "$results"
last_json() { grep '^[[:space:]]*{' | tail -n 1; }
for r in "${rows[@]}"; do
  for ((i = 1; i <= ROUNDS; i++)); do
    echo "== $r round $i/$ROUNDS: varpar" >&2
    v=$("$VARPAR" bench --family "$OUT/$r" --threads "$THREADS" --json | last_json) ||
      die "varpar bench failed on $r"
    [[ -n $v ]] || die "varpar bench printed no JSON for $r"
    printf '{"row":"%s","side":"varpar","round":%d,"result":%s}\n' "$r" "$i" "$v" >> "$results"
    echo "   $v" >&2
    echo "== $r round $i/$ROUNDS: ORT" >&2
    o=$(node "$HERE/ort_bench.js" --threads "$THREADS" --seconds "$ORT_SECONDS" "$OUT/$r/$r.onnx" | last_json) ||
      die "ort_bench.js failed on $r"
    [[ -n $o ]] || die "ort_bench.js printed no JSON for $r"
    printf '{"row":"%s","side":"ort","round":%d,"result":%s}\n' "$r" "$i" "$o" >> "$results"
    echo "   $o" >&2
  done
done

# 6. The table.
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
ortv=$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$HERE/node_modules/onnxruntime-node/package.json")
{
  node "$HERE/report.js" "$results"
  echo "CPU: ${cpu:-unknown} ($(nproc) logical CPUs); onnxruntime-node $ortv; threads $THREADS."
} > "$OUT/last.md" || die "report failed"
cat "$OUT/last.md"
