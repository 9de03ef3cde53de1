"""cProfile of the gpunet LeNet-5 training step: where the time goes, top functions by own time.

Example:
    $ python benchmarks/profile_step.py --batch 64 --steps 50 --top 5
    $ python benchmarks/profile_step.py --cpu      # CPU time instead of wall time (busy machines)
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.models import GpunetLeNet, batch, lenet_weights  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--cpu", action="store_true", help="time with process_time (all threads' CPU)")
    args = p.parse_args(argv)
    model = GpunetLeNet(lenet_weights(0), args.backend)
    x, y = model.tensors(*batch(args.batch))
    for _ in range(5):
        model.step(x, y)
    prof = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(args.steps):
        model.step(x, y)
    prof.disable()
    print(f"LeNet step, batch {args.batch}, api {model.api}: "
          f"{(time.perf_counter() - t0) / args.steps * 1e3:.2f} ms/step (wall, profiled)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
