"""conv2d forward+backward on the NumPy backend alone: 32×64×32×32 input, 64×64×3×3 kernel, padding 1.

Prints the median time of forward and of forward+backward (input, weight and bias gradients) and
GFLOP/s, counting 2·N·C_out·H·W·C_in·k² per forward and twice that for the backward.

Example:
    $ python benchmarks/conv_numpy.py --reps 7
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gpunet as gn  # noqa: E402
from gpunet import functional as F  # noqa: E402


def timed(fn, reps, warmup=2):
    """Median and (min, max) seconds of ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    n, c, k, h, w, ks = 32, 64, 64, 32, 32, 3
    with gn.use_backend("numpy"):
        x = gn.tensor(rng.standard_normal((n, c, h, w)).astype(np.float32), requires_grad=True)
        wt = gn.tensor((rng.standard_normal((k, c, ks, ks)) * 0.05).astype(np.float32), requires_grad=True)
        b = gn.tensor(np.zeros(k, np.float32), requires_grad=True)
        gy = gn.tensor(rng.standard_normal((n, k, h, w)).astype(np.float32))

        def fwd():
            with gn.no_grad():
                F.conv2d(x, wt, b, padding=1)

        def fwd_bwd():
            x.grad = wt.grad = b.grad = None
            F.conv2d(x, wt, b, padding=1).backward(gy)

        flops = 2.0 * n * k * h * w * c * ks * ks
        for name, fn, f in (("forward", fwd, flops), ("forward+backward", fwd_bwd, 3 * flops)):
            med, lo, hi = timed(fn, args.reps)
            print(f"conv2d {n}x{c}x{h}x{w} * {k}x{c}x{ks}x{ks} pad 1, numpy {name:<17} "
                  f"{med * 1e3:8.1f} ms [{lo * 1e3:.1f}–{hi * 1e3:.1f}]  {f / med / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
