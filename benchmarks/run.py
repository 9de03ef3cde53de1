"""Run gpunet against PyTorch side by side and print ratios; results go to benchmarks/results/.

Suites: ``lenet`` (training step at batch 64 and 256, inference at 256), ``conv`` (Conv2d 64→64
3×3 on 32×64×32×32, forward and forward+backward, GFLOP/s), ``scaling`` (time per image of the
LeNet step for batch 16…1024) and ``memory`` (peak RSS of a LeNet training epoch, each framework
in its own subprocess).  ratio = gpunet throughput / PyTorch throughput (>1: gpunet faster).

Example:
    $ python benchmarks/run.py                          # all suites, numpy vs torch CPU
    $ python benchmarks/run.py --suite lenet conv --reps 9
    $ python benchmarks/run.py --backend cuda           # cuda backend vs torch CUDA
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402
from benchmarks.models import GpunetLeNet, TorchLeNet, batch, lenet_weights  # noqa: E402

SUITES = ("lenet", "conv", "scaling", "memory")
SCALING_BATCHES = (16, 32, 64, 128, 256, 512, 1024)


class Ctx:
    """What every suite needs: the gpunet backend name, the torch device and the sync calls."""

    def __init__(self, backend, reps):
        import gpunet as gn
        import torch

        self.gn, self.torch, self.backend, self.reps = gn, torch, backend, reps
        self.be = gn.backends.backend(backend)
        self.device = "cuda" if backend == "cuda" else "cpu"
        self.sync_g = self.be.synchronize
        self.sync_t = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)

    def compare(self, name, fg, ft, items, **kw):
        rec = harness.compare(name, fg, ft, items, reps=self.reps, sync_gpunet=self.sync_g,
                              sync_torch=self.sync_t, **kw)
        print(harness.format_record(rec), flush=True)
        return rec


def _lenet_pair(ctx, n):
    w = lenet_weights(0)
    g, t = GpunetLeNet(w, ctx.backend), TorchLeNet(w, ctx.device)
    x, y = batch(n)
    return g, t, g.tensors(x, y), t.tensors(x, y)


def suite_lenet(ctx):
    """LeNet-5 training step at batch 64 and 256, inference at batch 256."""
    out = []
    for n in (64, 256):
        g, t, (xg, yg), (xt, yt) = _lenet_pair(ctx, n)
        rec = ctx.compare(f"lenet step b{n}", lambda: g.step(xg, yg), lambda: t.step(xt, yt), n)
        rec["gpunet_api"] = g.api
        out.append(rec)
    g, t, (xg, _), (xt, _) = _lenet_pair(ctx, 256)
    out.append(ctx.compare("lenet infer b256", lambda: g.infer(xg), lambda: t.infer(xt), 256))
    return out


def conv_flops(n=32, c=64, k=64, h=32, w=32, ks=3):
    """Forward FLOPs of a stride-1 'same' conv: 2·N·C_out·H·W·C_in·k²."""
    return 2.0 * n * k * h * w * c * ks * ks


def suite_conv(ctx):
    """Conv2d(64, 64, 3, padding=1) on 32×64×32×32: forward, and forward+backward (3× the FLOPs)."""
    gn, torch, F = ctx.gn, ctx.torch, ctx.gn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    b = np.zeros(64, np.float32)
    gy = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    xg, wg, bg = (gn.tensor(a, requires_grad=True, backend=ctx.be) for a in (x, w, b))
    gyg = gn.tensor(gy, backend=ctx.be)
    xt, wt, bt = (torch.from_numpy(a).to(ctx.device).requires_grad_() for a in (x, w, b))
    gyt = torch.from_numpy(gy).to(ctx.device)
    flops = conv_flops()

    def fwd_g():
        with gn.no_grad():
            F.conv2d(xg, wg, bg, padding=1)

    def fwd_t():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt, padding=1)

    def both_g():
        for p in (xg, wg, bg):
            p.grad = None
        F.conv2d(xg, wg, bg, padding=1).backward(gyg)

    def both_t():
        for p in (xt, wt, bt):
            p.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gyt)

    def gflops(total):
        return lambda r: {f"{k}_gflops": total / r[k]["seconds"]["median"] / 1e9 for k in ("gpunet", "torch")}

    return [ctx.compare("conv 64x3x3 fwd", fwd_g, fwd_t, 32, extra=gflops(flops)),
            ctx.compare("conv 64x3x3 fwd+bwd", both_g, both_t, 32, extra=gflops(3 * flops))]


def suite_scaling(ctx):
    """Time per image of the LeNet training step as the batch grows."""
    out = []
    for n in SCALING_BATCHES:
        g, t, (xg, yg), (xt, yt) = _lenet_pair(ctx, n)
        rec = ctx.compare(f"lenet step b{n}", lambda: g.step(xg, yg), lambda: t.step(xt, yt), n,
                          min_rep_s=0.03)
        for k in ("gpunet", "torch"):
            rec[k]["us_per_image"] = rec[k]["seconds"]["median"] / n * 1e6
        print(f"{'':28} per image: gpunet {rec['gpunet']['us_per_image']:.1f} us, "
              f"torch {rec['torch']['us_per_image']:.1f} us")
        out.append(rec)
    return out


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb():
    """Peak RSS of this process: VmHWM (Linux; ru_maxrss would carry the parent's peak over exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_probe(framework, backend, batch_size=64):
    """In a fresh process: one LeNet training epoch over the 4,000 embedded digits; print JSON."""
    from gpunet import datasets

    (x, y), _ = datasets.digits()
    w = lenet_weights(0)
    device = "cuda" if backend == "cuda" else "cpu"
    model = GpunetLeNet(w, backend) if framework == "gpunet" else TorchLeNet(w, device)
    before = _rss_mb()
    t0 = time.perf_counter()
    for i in range(0, len(x), batch_size):
        xb, yb = model.tensors(x[i:i + batch_size], y[i:i + batch_size])
        model.step(xb, yb)
    peak = _peak_rss_mb()
    print(json.dumps({"framework": framework, "rss_before_epoch_mb": before, "peak_rss_mb": peak,
                      "epoch_growth_mb": peak - before, "epoch_s": time.perf_counter() - t0,
                      "images": len(x), "batch": batch_size}))


def suite_memory(ctx):
    """Peak resident memory of one training epoch, each framework in its own subprocess."""
    out = {}
    for fw in ("gpunet", "torch"):
        cmd = [sys.executable, __file__, "--memory-probe", fw, "--backend", ctx.backend]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        out[fw] = json.loads(res.stdout.strip().splitlines()[-1])
        r = out[fw]
        print(f"memory {fw:<7} peak RSS {r['peak_rss_mb']:7.1f} MB  (before epoch "
              f"{r['rss_before_epoch_mb']:.1f} MB, growth {r['epoch_growth_mb']:.1f} MB, "
              f"epoch {r['epoch_s']:.2f} s)", flush=True)
    out["name"] = "memory lenet epoch b64"
    out["peak_ratio_gpunet_over_torch"] = out["gpunet"]["peak_rss_mb"] / out["torch"]["peak_rss_mb"]
    print(f"memory peak RSS gpunet/torch = {out['peak_ratio_gpunet_over_torch']:.2f} "
          "(<1: gpunet uses less; includes each framework's import footprint)")
    return [out]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", nargs="+", choices=SUITES + ("all",), default=["all"])
    p.add_argument("--backend", choices=("numpy", "cuda"), default="numpy")
    p.add_argument("--reps", type=int, default=11, help="timed repetitions per case (>= 7)")
    p.add_argument("--tag", default="", help="suffix for the results file name")
    p.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    p.add_argument("--memory-probe", choices=("gpunet", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        return memory_probe(args.memory_probe, args.backend)
    if args.reps < 7:
        p.error("--reps must be at least 7")
    suites = SUITES if "all" in args.suite else tuple(args.suite)
    ctx = Ctx(args.backend, args.reps)
    print(harness.header())
    info = harness.machine_info()
    print(f"# machine: {info['cpu_model']}, {info['cores']} cores; backend {args.backend} vs torch "
          f"{ctx.device}; numpy {info['numpy']}, torch {info['torch']}; load average "
          f"{info['loadavg_1_5_15']} (other work on the machine skews both sides)")
    t0, records = time.perf_counter(), {"_loadavg_at_start": info["loadavg_1_5_15"]}
    for s in suites:
        print(f"\n== {s} ==", flush=True)
        records[s] = globals()[f"suite_{s}"](ctx)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if not args.no_save:
        print("wrote", harness.write_results(records, args.backend, list(suites), args.tag))


if __name__ == "__main__":
    main()
