#!/usr/bin/python3
"""Times PyTorch training steps on the MobileNetV2 rows varpar's training
benchmark uses, and prints one JSON line per row.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, oneDNN), e.g.

  /usr/bin/python3 bench/train/torch_train_bench.py                 # all rows
  /usr/bin/python3 bench/train/torch_train_bench.py --rows w035-r32 --malloc default

A step is what a training loop does per batch: zero the gradients, forward
in training mode (batch norm uses batch statistics and updates its running
ones), cross-entropy loss, backward, SGD update (momentum 0.9, Nesterov,
weight decay 5e-4 on conv and linear weights, as varpar's TrainConfig).
Inputs are random NCHW float32 batches with random labels over 10 classes,
made once before timing. The model runs in channels_last memory format
(NHWC in memory, which oneDNN handles without reordering every layer;
about 1.4-1.6x faster than contiguous NCHW here), and the timed step
converts the NCHW batch to it; --memory-format nchw keeps everything
contiguous NCHW. After --warmup steps the loop runs until it has done at
least --min-steps steps and --min-seconds seconds.

Output (stdout, one line per row):
  {"model": ROW, "images_per_s": batch * steps / timed seconds,
   "step_ms_median": ..., "threads": ..., ...extra diagnostic fields}
images_per_s is a mean over the timed steps, as Go's benchmarks report;
images_per_s_median_step (batch / median step time) is less sensitive to
other jobs on a shared machine.
Progress goes to stderr.

glibc malloc: PyTorch frees and reallocates every activation and gradient
buffer at each step. With glibc's default settings, buffers above the mmap
threshold (128 KiB, rising dynamically to at most 32 MiB) are mmap'ed and
munmap'ed each time, and the heap top is trimmed, so each step first-touches
tens of thousands of fresh pages and spends 10-30% of its time in the
kernel's page-fault path (a VM makes faults dearer). --malloc tuned (the
default) re-executes the script with TUNED_MALLOC_ENV, so that freed memory
stays in the process and is reused, on huge pages; see bench/train/README.md
for the measurements behind it.
"""

import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The glibc malloc settings that gave PyTorch its best speed on the benchmark
# machine (bench/train/README.md): never serve an allocation with mmap, never
# give freed heap memory back to the kernel, grow the heap in 64 MiB steps,
# and ask for transparent huge pages on the heap (glibc >= 2.35; older ones
# ignore the tunable, and it does nothing where THP is "never").
TUNED_MALLOC_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
    "MALLOC_TOP_PAD_": str(64 << 20),
    "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
}
MALLOC_VARS = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
               "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
REEXEC_MARK = "VARPAR_TORCH_BENCH_MALLOC"

CIFAR_SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
                 [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2470, 0.2435, 0.2616]

# row id -> (width_mult, resolution, last_channel); all CIFAR-style, 10 classes.
ROWS = {
    "w035-r32": (0.35, 32, 512),
    "w050-r24": (0.5, 24, 512),
    "base-w100-r32": (1.0, 32, 1280),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS),
                   help="comma-separated rows (default: all of %s)" % ", ".join(ROWS))
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--min-steps", type=int, default=20, help="timed steps, at least (default 20)")
    p.add_argument("--min-seconds", type=float, default=10.0,
                   help="timed seconds, at least (default 10)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many timed steps even before --min-seconds (0: no cap)")
    p.add_argument("--malloc", choices=("tuned", "default", "inherit"), default="tuned",
                   help="tuned: re-exec with TUNED_MALLOC_ENV; default: re-exec with glibc's "
                        "defaults (malloc variables removed); inherit: use the environment as is")
    p.add_argument("--memory-format", choices=("channels_last", "nchw"), default="channels_last",
                   help="layout of the model's weights and activations: channels_last (NHWC in "
                        "memory, PyTorch's fastest on this CPU; the default) or nchw (contiguous). "
                        "The inputs are NCHW either way; with channels_last the timed step "
                        "converts them")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    a.rows = [r for r in a.rows.split(",") if r]
    for r in a.rows:
        if r not in ROWS:
            p.error("unknown row %r; known: %s" % (r, ", ".join(ROWS)))
    if not a.rows:
        p.error("no rows")
    if a.threads < 1 or a.batch < 1 or a.min_steps < 1 or a.warmup < 0:
        p.error("--threads, --batch and --min-steps must be positive, --warmup not negative")
    return a


def malloc_env_now():
    return {k: os.environ[k] for k in MALLOC_VARS if k in os.environ}


def maybe_reexec(mode):
    """glibc reads its malloc settings once, at start-up, so they can only be
    changed by starting the process again with a different environment."""
    if mode == "inherit" or os.environ.get(REEXEC_MARK) == mode:
        return
    env = dict(os.environ)
    for k in MALLOC_VARS:
        env.pop(k, None)
    if mode == "tuned":
        env.update(TUNED_MALLOC_ENV)
    env[REEXEC_MARK] = mode
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def load_mnv2():
    path = os.path.join(ROOT, "tools", "golden", "mnv2.py")
    spec = importlib.util.spec_from_file_location("varpar_mnv2", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def row_spec(mnv2, row):
    wm, res, last = ROWS[row]
    return mnv2.make_spec(wm, res, 10, setting=CIFAR_SETTING, stem_stride=1,
                          last_channel=last, mean=CIFAR_MEAN, std=CIFAR_STD)


def usage():
    """(minor faults, major faults, user CPU s, system CPU s) of the process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_minflt, ru.ru_majflt, ru.ru_utime, ru.ru_stime


def bench_row(torch, mnv2, row, a):
    spec = row_spec(mnv2, row)
    torch.manual_seed(a.seed)
    model = mnv2.build_model(spec)
    model.train()
    fmt = torch.channels_last if a.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    # Weight decay on conv and linear weights only, as varpar's TrainConfig
    # (not on batch-norm parameters and biases); the cost is the same either way.
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    r = spec["resolution"]
    nbatches = 4
    xs = [torch.randn(a.batch, 3, r, r) for _ in range(nbatches)]  # NCHW, contiguous
    ys = [torch.randint(0, spec["num_classes"], (a.batch,)) for _ in range(nbatches)]

    def step(i):
        opt.zero_grad(set_to_none=True)
        x = xs[i % nbatches].contiguous(memory_format=fmt)  # a copy for channels_last
        loss = loss_fn(model(x), ys[i % nbatches])
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    times = []
    u0 = usage()
    t0 = time.perf_counter()
    i = 0
    while True:
        s = time.perf_counter()
        loss = step(i)
        times.append(time.perf_counter() - s)
        i += 1
        done = len(times) >= a.min_steps and time.perf_counter() - t0 >= a.min_seconds
        if done or (a.max_steps and len(times) >= a.max_steps):
            break
    total = time.perf_counter() - t0
    u1 = usage()
    loss = float(loss)
    if loss != loss:
        raise SystemExit("%s: loss became NaN" % row)
    n = len(times)
    return {
        "model": row,
        "images_per_s": round(a.batch * n / total, 2),
        "step_ms_median": round(1000 * statistics.median(times), 2),
        "threads": a.threads,
        "images_per_s_median_step": round(a.batch / statistics.median(times), 2),
        "images_per_s_best_step": round(a.batch / min(times), 2),
        "step_ms_min": round(1000 * min(times), 2),
        "step_ms_max": round(1000 * max(times), 2),
        "steps": n,
        "seconds": round(total, 3),
        "batch": a.batch,
        "minor_faults_per_step": round((u1[0] - u0[0]) / n, 1),
        "major_faults_per_step": round((u1[1] - u0[1]) / n, 1),
        "user_cpu_ms_per_step": round(1000 * (u1[2] - u0[2]) / n, 1),
        "sys_cpu_ms_per_step": round(1000 * (u1[3] - u0[3]) / n, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_loss": round(loss, 4),
        "memory_format": a.memory_format,
        "malloc": os.environ.get(REEXEC_MARK, "inherit"),
        "malloc_env": malloc_env_now(),
        "torch": torch.__version__,
    }


def main():
    a = parse_args()
    maybe_reexec(a.malloc)
    import torch
    torch.set_num_threads(a.threads)
    mnv2 = load_mnv2()
    print("torch %s, %d thread(s), malloc %s %s" % (
        torch.__version__, torch.get_num_threads(), os.environ.get(REEXEC_MARK, "inherit"),
        json.dumps(malloc_env_now())), file=sys.stderr)
    for row in a.rows:
        res = bench_row(torch, mnv2, row, a)
        print("  %s: %.1f images/s, median step %.1f ms, %d steps, %.0f minor faults/step" % (
            row, res["images_per_s"], res["step_ms_median"], res["steps"],
            res["minor_faults_per_step"]), file=sys.stderr)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
