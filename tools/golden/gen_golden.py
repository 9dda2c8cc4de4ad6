#!/usr/bin/python3
"""Generates varpar's golden reference data in nn/testdata/golden/.

Run from anywhere with Debian's interpreter (python3-torch, python3-torchvision):

    /usr/bin/python3 tools/golden/gen_golden.py [--out nn/testdata/golden]

Everything is seeded, so a rerun on the same torch build rewrites the same
bytes (on another CPU, logits may differ in the last bits; the weights only if
a calibration factor lands on a rounding boundary). See
nn/testdata/golden/README.md for what the files hold.
"""

import argparse
import io
import json
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnv2  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Each variant: id, spec, seed, keep num_batches_tracked, tensor order in the file.
GOLDEN10 = [
    # (a) ImageNet layout at width 0.35, 32x32: 32 -> 16 -> 8 -> 4 -> 2 -> 1.
    dict(id="w035-r32", seed=101, nbt=True, order="state_dict",
         spec=mnv2.make_spec(0.35, 32, 10)),
    # (b) CIFAR-style: stem stride 1 and the 24-channel row at stride 1.
    dict(id="w050-r48-s1", seed=102, nbt=False, order="state_dict",
         spec=mnv2.make_spec(0.5, 48, 10,
                             [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 2, 2],
                              [6, 96, 1, 1], [6, 160, 1, 2]],
                             stem_stride=1, last_channel=512)),
    # (c) width 1.0 at 40x40: 40 -> 20 -> 10 -> 5 -> 3 -> 2 (odd sizes into stride 2).
    dict(id="w100-r40", seed=103, nbt=True, order="state_dict",
         spec=mnv2.make_spec(1.0, 40, 10,
                             [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 48, 2, 2],
                              [6, 64, 1, 1], [6, 96, 1, 2]],
                             last_channel=256)),
    # (d) odd input 33 -> 17 -> 9 -> 5 -> 3 -> 2; t=1 rows in the middle (one of
    # them a residual t=1 block: 24 -> 24 channels at width 0.75) and t=4 rows.
    # Tensors are stored in reverse state_dict order.
    dict(id="w075-r33", seed=104, nbt=False, order="reversed",
         spec=mnv2.make_spec(0.75, 33, 10,
                             [[1, 16, 1, 1], [4, 24, 2, 2], [1, 32, 1, 1], [6, 32, 2, 2],
                              [4, 64, 2, 2], [1, 96, 1, 1], [4, 160, 1, 2]],
                             last_channel=320)),
]

GOLDEN1000 = [
    # 1000 classes; a short trunk and last_channel 128 keep the file under 1 MB.
    dict(id="w035-r64", seed=201, nbt=True, order="state_dict", f16=True,
         spec=mnv2.make_spec(0.35, 64, 1000,
                             [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2],
                              [6, 96, 1, 1], [6, 160, 1, 2]],
                             last_channel=128)),
]

FAMILIES = [
    ("golden10", [f"c{i}" for i in range(10)], GOLDEN10),
    ("golden1000", [f"class{i:04d}" for i in range(1000)], GOLDEN1000),
]

BATCH = 2


def smooth_picture(r, gen):
    """An r x r RGB uint8 picture: bilinearly upsampled coarse noise plus a little
    fine noise, so neighbouring pixels are related like in a photo."""
    coarse = torch.rand(1, 3, max(2, r // 6), max(2, r // 6), generator=gen)
    up = torch.nn.functional.interpolate(coarse, size=(r, r), mode="bilinear", align_corners=False)
    pic = (up + 0.06 * torch.randn(1, 3, r, r, generator=gen)).clamp(0, 1)
    return (pic[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def preprocess(png_path, spec):
    """torchvision's ToTensor then Normalize(mean, std): NCHW [1,3,R,R]."""
    import torchvision.transforms as T
    img = Image.open(png_path).convert("RGB")
    tf = T.Compose([T.ToTensor(), T.Normalize(spec["mean"], spec["std"])])
    return tf(img).unsqueeze(0)


def forward(model, x_nchw):
    """Logits and the pooled feature vector (classifier input), in the model's dtype."""
    with torch.no_grad():
        f = model.features(x_nchw)
        pooled = torch.nn.functional.adaptive_avg_pool2d(f, (1, 1)).flatten(1)
        logits = model.classifier(pooled)
        ref = model(x_nchw)
    assert (logits - ref).abs().max() < 1e-6
    return logits, pooled


def reference(model, spec, x_nchw):
    """Float64 evaluation of the float32 model's exact weights, rounded to float32,
    plus the max deviation of plain float32 torch from it."""
    m64 = mnv2.build_model(spec).double()
    m64.load_state_dict(model.state_dict())
    m64.eval()
    logits, pooled = forward(m64, x_nchw.double())
    l32, _ = forward(model, x_nchw.float())
    return logits.float(), pooled.float(), float((l32.double() - logits).abs().max())


def ordered(tensors, order):
    if order == "reversed":
        return dict(reversed(list(tensors.items())))
    return tensors


def gen_variant(fam_dir, v, versions):
    spec = v["spec"]
    r = spec["resolution"]
    model = mnv2.build_model(spec)
    stats = mnv2.randomize(model, spec, seed=v["seed"])
    model.eval()
    gen = torch.Generator().manual_seed(v["seed"] * 7919)

    wname = f'{v["id"]}.safetensors'
    tensors = ordered(mnv2.state_tensors(model, keep_num_batches_tracked=v["nbt"]), v["order"])
    meta = {"format": "pt", "generator": "tools/golden/gen_golden.py", "spec": json.dumps(spec)}
    mnv2.write_safetensors(os.path.join(fam_dir, wname), tensors, meta)
    back, _ = mnv2.read_safetensors(os.path.join(fam_dir, wname))
    sd = model.state_dict()
    for k, t in back.items():
        assert torch.equal(t, sd[k].reshape(t.shape).to(t.dtype)), k
    assert set(back) == {k for k in sd if v["nbt"] or not k.endswith("num_batches_tracked")}

    # Random normal inputs, already normalised, stored NHWC.
    x_nhwc = torch.randn(BATCH, r, r, 3, generator=gen)
    logits, pooled, d1 = reference(model, spec, mnv2.nhwc_to_nchw(x_nhwc))

    png_path = os.path.join(fam_dir, f'{v["id"]}.png')
    with open(png_path, "wb") as f:
        f.write(png_bytes(smooth_picture(r, gen)))
    png_x = preprocess(png_path, spec)
    assert png_x.shape == (1, 3, r, r)
    png_logits, _, d2 = reference(model, spec, png_x)
    f64_diff = max(d1, d2)

    golden = {
        "input": x_nhwc,
        "logits": logits,
        "pooled": pooled,
        "png_input": mnv2.nchw_to_nhwc(png_x),
        "png_logits": png_logits,
    }
    gmeta = {"generator": "tools/golden/gen_golden.py", "weights": wname,
             "spec": json.dumps(spec), "f32_vs_f64_max_abs_diff": f"{f64_diff:.3g}", **versions}
    mnv2.write_safetensors(os.path.join(fam_dir, f'{v["id"]}.golden.safetensors'), golden, gmeta)

    print(f'  {v["id"]}: params {mnv2.params(model)}, MACs {mnv2.macs(model, spec)}, '
          f'sizes {mnv2.spatial_sizes(spec)}, nbt={"kept" if v["nbt"] else "dropped"}')
    print(f'    calibration: {mnv2.describe_stats(stats)}')
    print(f'    golden logits std {float(logits.std()):.3f} |max| {float(logits.abs().max()):.3f}; '
          f'png logits std {float(png_logits.std()):.3f} argmax {int(png_logits.argmax())}; '
          f'max |torch f32 - f64| {f64_diff:.3g}')
    if not (0.5 < float(logits.std()) < 20):
        raise SystemExit(f'{v["id"]}: logit std {float(logits.std())} out of the sane range')

    if v.get("f16"):
        gen_f16(fam_dir, v, model, x_nhwc, png_x, versions)
    return {"id": v["id"], "spec": spec, "weights": wname}


def gen_f16(fam_dir, v, model, x_nhwc, png_x, versions):
    """Same weights rounded to F16, with logits of the rounded model (float64 math on
    the F16 values, rounded to float32 like the other references)."""
    f16 = mnv2.state_tensors(model, keep_num_batches_tracked=v["nbt"], dtype=torch.float16)
    name = f'{v["id"]}.f16.safetensors'
    mnv2.write_safetensors(os.path.join(fam_dir, name), f16,
                           {"format": "pt", "generator": "tools/golden/gen_golden.py",
                            "spec": json.dumps(v["spec"])})
    rounded = mnv2.build_model(v["spec"])
    rounded.load_state_dict({k: (t.float() if t.is_floating_point() else t) for k, t in f16.items()},
                            strict=v["nbt"])
    rounded.eval()
    logits, pooled, _ = reference(rounded, v["spec"], mnv2.nhwc_to_nchw(x_nhwc))
    png_logits, _, _ = reference(rounded, v["spec"], png_x)
    ref, _, _ = reference(model, v["spec"], mnv2.nhwc_to_nchw(x_nhwc))
    golden = {"input": x_nhwc, "logits": logits, "pooled": pooled,
              "png_input": mnv2.nchw_to_nhwc(png_x), "png_logits": png_logits}
    mnv2.write_safetensors(os.path.join(fam_dir, f'{v["id"]}.f16.golden.safetensors'), golden,
                           {"generator": "tools/golden/gen_golden.py", "weights": name,
                            "spec": json.dumps(v["spec"]), **versions})
    print(f'    f16: max |logit(f16) - logit(f32)| = {float((logits - ref).abs().max()):.4g}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "nn", "testdata", "golden"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    print(f'torch {versions["torch"]}, torchvision {versions["torchvision"]}, numpy {np.__version__}')
    total = 0
    for name, classes, variants in FAMILIES:
        fam_dir = os.path.join(args.out, name)
        os.makedirs(fam_dir, exist_ok=True)
        print(f"{name}:")
        entries = [gen_variant(fam_dir, v, versions) for v in variants]
        mnv2.write_family(fam_dir, name, classes, entries)
        size = sum(os.path.getsize(os.path.join(fam_dir, f)) for f in os.listdir(fam_dir))
        total += size
        print(f"  {fam_dir}: {size / 1e6:.2f} MB")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
