"""Where a gpunet training step spends its time: wall time per backend primitive.

Every primitive of the backend (conv2d_fwd, max_pool2d_bwd, matmul, …) is wrapped with a wall
clock, so the time a kernel spends on its worker threads is counted once, where it is called;
what is left of the step is autograd, optimiser and Python overhead.  ``--cprofile`` prints
cProfile's table instead (the calling thread only).

Example:
    $ python benchmarks/profile_step.py --batch 64 --top 5
    $ python benchmarks/profile_step.py --model resnet8 --batch 64   # any benchmarks.user_models model
    $ python benchmarks/profile_step.py --batch 64 --gpunet-src /tmp/old-checkout   # a baseline
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cases import build  # noqa: E402
from benchmarks.user_models import BUILDERS  # noqa: E402


def time_primitives(backend, totals):
    """Wrap each primitive of ``backend`` (on the instance) to add its wall time to ``totals``."""
    from gpunet.backends.primitives import NAMES  # the one declaration; after --gpunet-src

    for name in NAMES:
        fn = getattr(backend, name, None)
        if fn is None:
            continue

        def timed(*args, _fn=fn, _name=name, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kw)
            finally:
                totals[_name] += time.perf_counter() - t0

        setattr(backend, name, functools.wraps(fn)(timed))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("lenet", *BUILDERS), default="lenet")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--cprofile", action="store_true", help="cProfile's table instead")
    p.add_argument("--gpunet-src", help="profile the gpunet package found in this folder")
    args = p.parse_args(argv)
    if args.gpunet_src:
        sys.path.insert(0, str(Path(args.gpunet_src).resolve()))
    import gpunet

    case = build("gpunet", f"{args.model}-step-b{args.batch}", args.backend)
    totals = collections.defaultdict(float)
    if not args.cprofile:
        time_primitives(gpunet.backends.backend(args.backend), totals)
    for _ in range(5):
        case.fn()
    totals.clear()
    prof = cProfile.Profile() if args.cprofile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    for _ in range(args.steps):
        case.fn()
    case.sync()
    if prof:
        prof.disable()
    step = (time.perf_counter() - t0) / args.steps
    print(f"{args.model} step, batch {args.batch}, {args.backend} backend, gpunet from "
          f"{Path(gpunet.__file__).parent}: {step * 1e3:.2f} ms/step (wall)")
    if prof:
        return pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {name:<28} {t / args.steps * 1e3:7.3f} ms/step  {t / args.steps / step:5.1%}")
    rest = step - sum(totals.values()) / args.steps
    print(f"  {'(outside primitives)':<28} {rest * 1e3:7.3f} ms/step  {rest / step:5.1%}")


if __name__ == "__main__":
    main()
