"""Shared helpers for building, randomising and saving varpar MobileNetV2 models.

Used by tools/golden/gen_golden.py (golden test data) and
bench/compare/make_models.py (speed-comparison models). Run both with Debian's
/usr/bin/python3 (python3-torch, python3-torchvision, python3-onnx).

A "spec" is the dict varpar reads (nn/spec.go):
  width_mult, round_nearest, inverted_residual_setting [[t,c,n,s],...],
  stem_stride, last_channel, num_classes, resolution, mean, std.
"""

import hashlib
import json
import math
import os
import struct

import torch
import torchvision
from torch import nn

IMAGENET_SETTING = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

FAMILY_FORMAT = "varpar-family/1"


def make_spec(width_mult, resolution, num_classes, setting=None, stem_stride=2,
              last_channel=1280, round_nearest=8, mean=None, std=None):
    """Returns a spec dict with the fields in nn/spec.go's order."""
    return {
        "width_mult": float(width_mult),
        "round_nearest": int(round_nearest),
        "inverted_residual_setting": [list(map(int, r)) for r in (setting or IMAGENET_SETTING)],
        "stem_stride": int(stem_stride),
        "last_channel": int(last_channel),
        "num_classes": int(num_classes),
        "resolution": int(resolution),
        "mean": list(mean or IMAGENET_MEAN),
        "std": list(std or IMAGENET_STD),
    }


def make_divisible(v, divisor):
    """torchvision's _make_divisible (min_value = divisor)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def build_model(spec):
    """torchvision.models.mobilenet_v2 with the spec's stem stride and last_channel.

    Returns the model in eval mode with torchvision's default initialisation.
    """
    wm = spec["width_mult"]
    rn = spec["round_nearest"]
    model = torchvision.models.mobilenet_v2(
        weights=None,
        width_mult=wm,
        inverted_residual_setting=[list(r) for r in spec["inverted_residual_setting"]],
        round_nearest=rn,
        num_classes=spec["num_classes"],
    )
    s = spec["stem_stride"]
    stem = model.features[0][0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3)
    stem.stride = (s, s)
    stem.padding = (1, 1)

    if spec["last_channel"] != 1280:
        last = make_divisible(spec["last_channel"] * max(1.0, wm), rn)
        in_ch = model.features[-1][0].in_channels
        head = torchvision.ops.misc.Conv2dNormActivation(
            in_ch, last, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
        nn.init.kaiming_normal_(head[0].weight, mode="fan_out")
        model.features[-1] = head
        old = model.classifier[1]
        lin = nn.Linear(last, spec["num_classes"])
        nn.init.normal_(lin.weight, 0, 0.01)
        nn.init.zeros_(lin.bias)
        model.classifier[1] = lin
        model.last_channel = last
        del old
    model.eval()
    check_against_spec(model, spec)
    return model


def expected_last(spec):
    return make_divisible(spec["last_channel"] * max(1.0, spec["width_mult"]), spec["round_nearest"])


def check_against_spec(model, spec):
    """Sanity checks that the torch model is the network the spec describes."""
    last = expected_last(spec)
    assert model.features[-1][0].out_channels == last, (model.features[-1][0].out_channels, last)
    assert model.classifier[1].in_features == last
    assert model.classifier[1].out_features == spec["num_classes"]
    nblocks = sum(r[2] for r in spec["inverted_residual_setting"])
    assert len(model.features) == nblocks + 2, (len(model.features), nblocks)


def spatial_sizes(spec):
    """The feature-map side after the stem and after each stride-2 row."""
    h = spec["resolution"]
    conv = lambda n, s: (n + 2 - 3) // s + 1
    h = conv(h, spec["stem_stride"])
    sizes = [h]
    for t, c, n, s in spec["inverted_residual_setting"]:
        if s == 2:
            h = conv(h, 2)
            sizes.append(h)
    return sizes


def macs(model, spec):
    """Multiply-accumulates at batch 1, counted like nn/spec.go's MACs()."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            total += out.shape[2] * out.shape[3] * m.out_channels * k
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    r = spec["resolution"]
    with torch.no_grad():
        model(torch.zeros(1, 3, r, r))
    for h in hs:
        h.remove()
    return total


def params(model):
    return sum(p.numel() for p in model.parameters())


def _round_sig(x, digits=3):
    """Rounds a calibration factor to a few significant digits so that ulp-level
    differences between machines rarely change the stored weights."""
    return float(f"{x:.{digits}g}")


def randomize(model, spec, seed, act_std=2.5, proj_std=1.0, logit_std=3.0, calib_batch=4,
              common_shrink=0.9):
    """Randomises weights and batch-norm state, then calibrates scales.

    Every conv weight keeps its random (kaiming) pattern; every BatchNorm gets
    running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5),
    bias ~ N(0, 0.1); the classifier gets N(0,1) weights and N(0, 0.5) bias.
    Then, in one forward pass over random normal inputs, each conv weight is
    multiplied by one scalar chosen so that its BN output has a standard
    deviation of about act_std (layers followed by ReLU6: about half the values
    go to 0 and around 1% clip at 6) or proj_std (linear projection layers).
    The classifier loses common_shrink of its component along the mean pooled
    feature (so logits vary with the input) and is scaled so that logits have
    a std of about logit_std. Returns a
    dict of statistics of that calibration pass.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.out_features, generator=g) * 0.5)

    # Pair each conv with the BatchNorm that follows it and whether a ReLU6 comes after.
    pairs = []  # (conv, bn, has_relu6)
    for mod in model.modules():
        kids = list(mod.children())
        for i, k in enumerate(kids):
            if isinstance(k, nn.Conv2d) and i + 1 < len(kids) and isinstance(kids[i + 1], nn.BatchNorm2d):
                relu = i + 2 < len(kids) and isinstance(kids[i + 2], nn.ReLU6)
                pairs.append((k, kids[i + 1], relu))
    n_convs = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d))
    assert len(pairs) == n_convs, (len(pairs), n_convs)

    stats = {"relu_zero": [], "relu_clip": [], "scales": []}

    def conv_hook(conv, bn, relu):
        def hook(m, inp, out):
            sd = torch.sqrt(bn.running_var + bn.eps)
            scaled = out * (bn.weight / sd).view(1, -1, 1, 1)
            a = _round_sig((act_std if relu else proj_std) / max(float(scaled.std()), 1e-12))
            m.weight.mul_(a)
            out = out * a
            stats["scales"].append(a)
            if relu:
                z = bn(out)
                stats["relu_zero"].append(float((z <= 0).float().mean()))
                stats["relu_clip"].append(float((z >= 6).float().mean()))
            return out
        return hook

    lin = model.classifier[1]

    def lin_hook(m, inp, out):
        # Pooled features share a large input-independent part (ReLU6 outputs
        # are positive, averaged over space). Shrink the weights' component
        # along the mean feature direction so that logits depend visibly on
        # the input rather than being one vector plus small changes.
        mu = inp[0].mean(0)
        mu = mu / max(float(mu.norm()), 1e-12)
        m.weight.sub_(common_shrink * (m.weight @ mu)[:, None] * mu[None, :])
        w_part = inp[0] @ m.weight.t()
        a = _round_sig(logit_std / max(float(w_part.std()), 1e-12))
        m.weight.mul_(a)
        return w_part * a + m.bias

    handles = [c.register_forward_hook(conv_hook(c, b, r)) for c, b, r in pairs]
    handles.append(lin.register_forward_hook(lin_hook))
    r = spec["resolution"]
    x = torch.randn(calib_batch, 3, r, r, generator=g)
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    with torch.no_grad():
        logits = model(x)
    stats["logit_std"] = float(logits.std())
    stats["logit_absmax"] = float(logits.abs().max())
    stats["relu_zero_mean"] = sum(stats["relu_zero"]) / len(stats["relu_zero"])
    stats["relu_clip_mean"] = sum(stats["relu_clip"]) / len(stats["relu_clip"])
    stats["relu_clip_max"] = max(stats["relu_clip"])
    stats["relu_zero_max"] = max(stats["relu_zero"])
    return stats


def describe_stats(stats):
    return ("logit std %.3f |max| %.3f; ReLU6 layers: mean zero %.1f%% (max %.1f%%), "
            "mean clipped %.2f%% (max %.2f%%)" % (
                stats["logit_std"], stats["logit_absmax"],
                100 * stats["relu_zero_mean"], 100 * stats["relu_zero_max"],
                100 * stats["relu_clip_mean"], 100 * stats["relu_clip_max"]))


# ---------------------------------------------------------------- safetensors

_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
}


def safetensors_bytes(tensors, metadata=None):
    """Serialises an ordered {name: tensor} dict in the safetensors format.

    Tensors are stored in the given order; the header keys follow that order.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        assert len(raw) == t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_safetensors(path, tensors, metadata=None):
    data = safetensors_bytes(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def read_safetensors(path):
    """Reads a safetensors file back (used to self-check what we wrote)."""
    import numpy as np
    np_dt = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
             "I32": np.int32, "U8": np.uint8}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=np.dtype(np_dt[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out, header.get("__metadata__", {})


def state_tensors(model, keep_num_batches_tracked=True, dtype=torch.float32):
    """The model's state_dict as an ordered dict, floats converted to dtype."""
    sd = model.state_dict()
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            if keep_num_batches_tracked:
                out[k] = v.to(torch.int64).reshape(())
            continue
        out[k] = v.to(dtype)
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_family(dirpath, name, classes, variants):
    """Writes family.json. variants: list of dicts with id, spec, weights
    (file name relative to dirpath) and optionally fusion_weight; sha256 is
    computed from the file."""
    vs = []
    for v in variants:
        e = {"id": v["id"], "spec": v["spec"], "weights": v["weights"],
             "sha256": sha256_file(os.path.join(dirpath, v["weights"]))}
        if v.get("fusion_weight") is not None:
            e["fusion_weight"] = v["fusion_weight"]
        vs.append(e)
    manifest = {"format": FAMILY_FORMAT, "name": name, "classes": list(classes), "variants": vs}
    with open(os.path.join(dirpath, "family.json"), "w") as f:
        f.write(pretty_json(manifest) + "\n")
    return manifest


def pretty_json(v, indent=0):
    """JSON with objects indented and lists of scalars (or of lists of
    scalars, as inverted_residual_setting) kept on one line."""
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {pretty_json(x, indent + 1)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list):
        flat = all(not isinstance(x, (dict, list)) or
                   (isinstance(x, list) and all(not isinstance(y, (dict, list)) for y in x)) for x in v)
        if flat:
            return json.dumps(v, separators=(", ", ": "))
        items = [f"{pad}  {pretty_json(x, indent + 1)}" for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(v)


def nchw_to_nhwc(x):
    return x.permute(0, 2, 3, 1).contiguous()


def nhwc_to_nchw(x):
    return x.permute(0, 3, 1, 2).contiguous()
