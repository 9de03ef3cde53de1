"""One framework, one case, in this process only: time it and print one JSON line.

``benchmarks/run.py`` starts one of these per (framework, case, round), so no framework's
thread pools (OpenBLAS, OpenMP) are left spinning while the other is timed.  The thread count
is fixed before NumPy or torch is imported: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``GPUNET_NUM_THREADS`` are set to ``--threads``, and torch also gets
``torch.set_num_threads``.

Example:
    $ python benchmarks/worker.py --framework torch --case lenet-step-b64 --threads 2
    {"framework": "torch", "case": "lenet-step-b64", "seconds": [...], ...}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GPUNET_NUM_THREADS")


def _calibrate(fn, sync, min_rep_s):
    """How many calls make one timed repetition last at least ``min_rep_s``."""
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    return max(1, int(min_rep_s / once + 0.999))


def time_case(case, reps, warmup, min_rep_s):
    """Seconds per call of ``reps`` repetitions, each ``inner`` calls long, after warm-up."""
    for _ in range(warmup):
        case.fn()
    case.sync()
    inner = _calibrate(case.fn, case.sync, min_rep_s)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            case.fn()
        case.sync()
        times.append((time.perf_counter() - t0) / inner)
    return times, inner


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--framework", choices=("gpunet", "torch"), required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--backend", choices=("numpy", "cuda"), default="numpy")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-rep-s", type=float, default=0.1)
    p.add_argument("--gpunet-src", help="import gpunet from this folder (another checkout)")
    args = p.parse_args(argv)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.cases import build

    if args.gpunet_src:  # after benchmarks.cases is loaded from this checkout
        sys.path.insert(0, str(Path(args.gpunet_src).resolve()))

    if args.framework == "torch":
        import torch

        torch.set_num_threads(args.threads)
    case = build(args.framework, args.case, args.backend)
    module = __import__(args.framework)
    times, inner = time_case(case, args.reps, args.warmup, args.min_rep_s)
    print(json.dumps({"framework": args.framework, "case": args.case, "backend": args.backend,
                      "threads": args.threads, "items": case.items, "flops": case.flops,
                      "inner": inner, "seconds": times,
                      "source": str(Path(module.__file__).resolve().parent)}))


if __name__ == "__main__":
    main()
