#!/usr/bin/python3
"""Turns compare.sh's results (JSON lines) into the markdown table.

usage: report.py RESULTS.jsonl

Each input line is {"row": ROW, "side": "varpar"|"torch", "round": N,
"images_per_s": X, ...}. Per row and side the best round is reported (the
machine is shared, so slower rounds mostly measure other jobs), with the
spread over rounds in the notes below the table.
"""

import json
import sys


def fmt(x):
    return "-" if x is None else ("%.1f" % x)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    rows = []
    best = {}
    every = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r["row"] not in rows:
                rows.append(r["row"])
            key = (r["row"], r["side"])
            v = float(r["images_per_s"])
            every.setdefault(key, []).append(v)
            best[key] = max(best.get(key, v), v)

    print("| model | varpar images/s | PyTorch images/s | ratio varpar/PyTorch |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        v = best.get((row, "varpar"))
        t = best.get((row, "torch"))
        ratio = "-" if v is None or t is None or t == 0 else "%.2f" % (v / t)
        print("| %s | %s | %s | %s |" % (row, fmt(v), fmt(t), ratio))
    print()
    spread = []
    for row in rows:
        for side, name in (("varpar", "varpar"), ("torch", "PyTorch")):
            vs = every.get((row, side))
            if vs:
                spread.append("%s %s %s" % (row, name, "/".join("%.1f" % x for x in vs)))
    if spread:
        print("Best of %d round(s) per side; every round (images/s): %s." % (
            max(len(v) for v in every.values()), "; ".join(spread)))


if __name__ == "__main__":
    main()
