#!/usr/bin/env bash
# Compares varpar's training speed with PyTorch's (Debian's python3-torch 1.13,
# oneDNN) on the same MobileNetV2 rows, batch 128, and prints a markdown table
# | model | varpar images/s | PyTorch images/s | ratio varpar/PyTorch |.
#
# usage: bench/train/compare.sh [--rows a,b,...] [--rounds N] [--threads N]
#                               [--torch-format channels_last|nchw]
#                               [--only varpar|torch] [--out DIR]
#
#   --rows LIST   comma-separated subset of w035-r32,w050-r24,base-w100-r32
#                 (env VARPAR_TRAIN_ROWS; default all)
#   --rounds N    varpar/PyTorch alternations per row, best kept
#                 (env VARPAR_TRAIN_ROUNDS, default 2)
#   --threads N   threads for both sides: GOMAXPROCS for varpar,
#                 torch.set_num_threads for PyTorch (env VARPAR_TRAIN_THREADS, default 2)
#   --torch-format F  PyTorch's memory format (env VARPAR_TRAIN_TORCH_FORMAT):
#                 channels_last (default, its fastest here) or nchw (contiguous);
#                 the inputs are NCHW float32 either way
#   --only SIDE   run one side only; the other column shows "-"
#   --out DIR     where the test binary and results go (env VARPAR_TRAIN_OUT,
#                 default build/bench-train under the repository root)
#
# varpar side: the nn/train package's test binary is built once (go test -c), then
# for each row and round it runs the equivalent of
#   go test ./nn/train -run XXX -bench "$BENCH_PATTERN" -benchtime $BENCHTIME   ({row} = ROW)
# and reads the "images/s" metric from the benchmark lines whose name starts
# with $BENCH_FUNC and contains the row id.
# PyTorch side: bench/train/torch_train_bench.py --rows ROW, which re-executes
# itself with the tuned glibc malloc settings (see README.md), in its
# fastest configuration: channels_last model, tuned malloc.
# Within a round the side that goes first alternates. Raw results go to
# OUT/last.jsonl and the table to OUT/last.md as well.
set -euo pipefail

# ---- the varpar benchmark; adjust here if its name changes ----------------
BENCH_FUNC=BenchmarkTrainStep                 # top-level benchmark function
BENCH_PATTERN='^BenchmarkTrainStep$/{row}/'    # -bench regex; {row} is replaced by the row id
BENCHTIME=${VARPAR_TRAIN_BENCHTIME:-20x}      # -benchtime
BENCH_PKG=./nn/train
# ---------------------------------------------------------------------------

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_ROWS="w035-r32,w050-r24,base-w100-r32"

ROWS=${VARPAR_TRAIN_ROWS:-$ALL_ROWS}
ROUNDS=${VARPAR_TRAIN_ROUNDS:-2}
THREADS=${VARPAR_TRAIN_THREADS:-2}
TORCH_FORMAT=${VARPAR_TRAIN_TORCH_FORMAT:-channels_last}
OUT=${VARPAR_TRAIN_OUT:-$ROOT/build/bench-train}
ONLY=""
PY=${VARPAR_TRAIN_PYTHON:-/usr/bin/python3} # Debian's, with python3-torch
GO=${GO:-go}

die() { echo "compare.sh: $*" >&2; exit 1; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) need_arg "$@"; ROWS=$2; shift 2 ;;
    --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
    --threads) need_arg "$@"; THREADS=$2; shift 2 ;;
    --torch-format) need_arg "$@"; TORCH_FORMAT=$2; shift 2 ;;
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --out) need_arg "$@"; OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer, got $ROUNDS"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads wants a positive integer, got $THREADS"
[[ -z $ONLY || $ONLY == varpar || $ONLY == torch ]] || die "--only wants varpar or torch, got $ONLY"
[[ $TORCH_FORMAT == channels_last || $TORCH_FORMAT == nchw ]] ||
  die "--torch-format wants channels_last or nchw, got $TORCH_FORMAT"
IFS=, read -r -a rows <<< "$ROWS"
[[ ${#rows[@]} -gt 0 ]] || die "no rows selected"
for r in "${rows[@]}"; do
  [[ ,$ALL_ROWS, == *",$r,"* ]] || die "unknown row $r; known: $ALL_ROWS"
done
do_varpar=true; do_torch=true
[[ $ONLY == torch ]] && do_varpar=false
[[ $ONLY == varpar ]] && do_torch=false
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# 1. PyTorch is there.
if $do_torch; then
  if ! [[ -x $PY ]] || ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    echo "compare.sh: PyTorch side: $PY cannot import torch and torchvision; run:" >&2
    echo "  apt-get update && apt-get install -y python3-torch python3-torchvision" >&2
    exit 1
  fi
fi

# 2. The varpar benchmark is there: build the test binary once, so that no
# compilation happens between timed runs, and look for the benchmark in it.
TESTBIN=$OUT/train.test
if $do_varpar; then
  echo "== go test -c $BENCH_PKG" >&2
  (cd "$ROOT" && "$GO" test -c -o "$TESTBIN" "$BENCH_PKG" >&2) ||
    die "varpar side: building the $BENCH_PKG test binary failed (see above)"
  if ! (cd "$ROOT/$BENCH_PKG" && "$TESTBIN" -test.list "^${BENCH_FUNC}\$") | grep -qx "$BENCH_FUNC"; then
    die "varpar side: $BENCH_PKG has no benchmark $BENCH_FUNC (not written yet?). Expected
  $BENCH_FUNC/<row>/batch128 reporting an \"images/s\" metric via b.ReportMetric;
  adjust BENCH_FUNC / BENCH_PATTERN at the top of $0 if it is named differently,
  or run with --only torch."
  fi
fi

# images/s from `go test -bench` output (stdin) for row $1: the best over the
# lines named $BENCH_FUNC... that contain the row id. Prints nothing if none.
parse_images_per_s() {
  awk -v fn="$BENCH_FUNC" -v row="$1" '
    index($1, fn) == 1 && index($1, row) > 0 {
      for (i = 3; i <= NF; i++)
        if ($i == "images/s" && ($(i-1) + 0) > best) { best = $(i-1) + 0; found = 1 }
    }
    END { if (found) printf "%.2f\n", best }'
}

run_varpar() { # row round
  local row=$1 round=$2 pat log ips
  pat=${BENCH_PATTERN//\{row\}/$row}
  log=$OUT/varpar-$row-$round.log
  echo "== $row round $round/$ROUNDS: varpar (-bench '$pat' -benchtime $BENCHTIME, GOMAXPROCS=$THREADS)" >&2
  if ! (cd "$ROOT/$BENCH_PKG" && GOMAXPROCS=$THREADS "$TESTBIN" -test.run '^$' \
        -test.bench "$pat" -test.benchtime "$BENCHTIME" -test.timeout 60m) > "$log" 2>&1; then
    cat "$log" >&2
    die "varpar side: the benchmark failed on $row (output above, also in $log)"
  fi
  ips=$(parse_images_per_s "$row" < "$log")
  if [[ -z $ips ]]; then
    cat "$log" >&2
    die "varpar side: no $BENCH_FUNC line for row $row with an images/s metric in the output
  above (pattern '$pat'); is the sub-benchmark for $row written yet, and does it call
  b.ReportMetric(..., \"images/s\")? Adjust BENCH_PATTERN at the top of $0 if needed."
  fi
  printf '{"row":"%s","side":"varpar","round":%d,"images_per_s":%s}\n' "$row" "$round" "$ips" >> "$results"
  echo "   $ips images/s" >&2
}

run_torch() { # row round
  local row=$1 round=$2 j
  echo "== $row round $round/$ROUNDS: PyTorch ($TORCH_FORMAT)" >&2
  j=$("$PY" "$HERE/torch_train_bench.py" --rows "$row" --threads "$THREADS" \
        --memory-format "$TORCH_FORMAT" | grep '^{' | tail -n 1) ||
    die "PyTorch side: torch_train_bench.py failed on $row"
  [[ -n $j ]] || die "PyTorch side: torch_train_bench.py printed no JSON for $row"
  printf '{"row":"%s","side":"torch","round":%d,"images_per_s":%s,"result":%s}\n' "$row" "$round" \
    "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["images_per_s"])' "$j")" "$j" >> "$results"
  echo "   $j" >&2
}

# 3. Alternate the sides so that both see the same machine noise.
results=$OUT/last.jsonl
: > "$results"
for r in "${rows[@]}"; do
  for ((i = 1; i <= ROUNDS; i++)); do
    if (( i % 2 == 1 )); then
      ! $do_varpar || run_varpar "$r" "$i"
      ! $do_torch || run_torch "$r" "$i"
    else
      ! $do_torch || run_torch "$r" "$i"
      ! $do_varpar || run_varpar "$r" "$i"
    fi
  done
done

# 4. The table.
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
torchv=""
if $do_torch; then torchv=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true); fi
{
  "$PY" "$HERE/report.py" "$results"
  echo "CPU: ${cpu:-unknown} ($(nproc) logical CPUs); threads $THREADS; batch 128;" \
    "PyTorch ${torchv:-not run} ($TORCH_FORMAT, oneDNN, tuned glibc malloc); varpar $BENCH_FUNC -benchtime $BENCHTIME."
} > "$OUT/last.md" || die "report failed"
cat "$OUT/last.md"
