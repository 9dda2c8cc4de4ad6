#!/usr/bin/python3
"""Writes the models of the varpar vs ONNX Runtime speed comparison.

    /usr/bin/python3 bench/compare/make_models.py [OUT_DIR] [--rows a,b] [--force]

OUT_DIR defaults to build/bench-compare/ under the repository root. For each
row it writes OUT_DIR/ROW/ with
    family.json              a varpar family with one variant, id ROW
    ROW.safetensors          its weights (random, randomised batch norm)
    ROW.onnx                 the same network and weights, exported by torch
    ROW.check.safetensors    "input" [1,3,R,R] NCHW and torch's "logits" for it
                             (computed in float64 from the same weights),
                             which `node ort_bench.js --check` compares with ORT
A row directory is built under a temporary name and renamed when complete, so
an existing OUT_DIR/ROW/family.json means the row is whole. Rows that exist
are skipped unless --force.

Needs Debian's python3-torch, python3-torchvision and python3-onnx.
"""

import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(REPO, "tools", "golden"))

import torch  # noqa: E402

import mnv2  # noqa: E402

CIFAR_SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
                 [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

# name -> (spec, seed). Keep in sync with ROWS in compare.sh.
ROWS = {
    "mnv2-100-r224": (mnv2.make_spec(1.0, 224, 1000), 1),
    "mnv2-035-r32": (mnv2.make_spec(0.35, 32, 10, stem_stride=2, last_channel=1280), 2),
    "mnv2-050-r96": (mnv2.make_spec(0.5, 96, 10), 3),
    "mnv2-cifar-100-r32": (mnv2.make_spec(1.0, 32, 10, CIFAR_SETTING, stem_stride=1, last_channel=1280), 4),
}


def class_names(n):
    return [f"class{i:04d}" for i in range(n)] if n > 10 else [f"c{i}" for i in range(n)]


def make_row(out, name, spec, seed):
    import onnx

    final = os.path.join(out, name)
    tmp = os.path.join(out, f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    model = mnv2.build_model(spec)
    stats = mnv2.randomize(model, spec, seed=seed)
    model.eval()
    weights = f"{name}.safetensors"
    mnv2.write_safetensors(os.path.join(tmp, weights), mnv2.state_tensors(model),
                           {"format": "pt", "generator": "bench/compare/make_models.py"})

    r = spec["resolution"]
    gen = torch.Generator().manual_seed(seed * 7919)
    x = torch.randn(1, 3, r, r, generator=gen)
    # Reference logits in float64 (same weights), so that the ORT check measures
    # ORT's float32 rounding only, not torch's as well.
    m64 = mnv2.build_model(spec).double()
    m64.load_state_dict(model.state_dict())
    m64.eval()
    with torch.no_grad():
        logits = m64(x.double()).float()
        f32_diff = float((model(x) - logits).abs().max())
    mnv2.write_safetensors(os.path.join(tmp, f"{name}.check.safetensors"),
                           {"input": x, "logits": logits},
                           {"generator": "bench/compare/make_models.py", "layout": "NCHW"})

    onnx_path = os.path.join(tmp, f"{name}.onnx")
    with torch.no_grad():
        torch.onnx.export(model, x, onnx_path, export_params=True, opset_version=13,
                          do_constant_folding=True, input_names=["input"], output_names=["logits"],
                          training=torch.onnx.TrainingMode.EVAL)
    onnx.checker.check_model(onnx.load(onnx_path))

    mnv2.write_family(tmp, name, class_names(spec["num_classes"]),
                      [{"id": name, "spec": spec, "weights": weights}])
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    print(f"{name}: params {mnv2.params(model)}, MACs {mnv2.macs(model, spec) / 1e6:.1f}M, "
          f"{mnv2.describe_stats(stats)}; torch float32 vs float64 max diff {f32_diff:.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=os.path.join(REPO, "build", "bench-compare"))
    ap.add_argument("--rows", default="", help="comma-separated subset of: " + ",".join(ROWS))
    ap.add_argument("--force", action="store_true", help="rebuild rows that exist")
    args = ap.parse_args()

    rows = [r for r in args.rows.split(",") if r] or list(ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        sys.exit(f"make_models.py: unknown rows {unknown}; known: {', '.join(ROWS)}")
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for name in rows:
        if not args.force and os.path.exists(os.path.join(args.out, name, "family.json")):
            print(f"{name}: exists, skipped")
            continue
        spec, seed = ROWS[name]
        make_row(args.out, name, spec, seed)


if __name__ == "__main__":
    main()
