"""Microseconds per kernel launch: gpunet's launcher against a CuPy ElementwiseKernel and PyTorch.

What a small step costs on a GPU is mostly launches.  Each row times ``--launches`` launches of
a trivial kernel on ``--n`` float32 elements, ``--reps`` times, and reports two medians:

* host µs/launch: the clock read right after the last launch is queued (what Python pays);
* synced µs/launch: the clock read after synchronising the device (host and device overlap, so
  this is about the larger of the two).

Rows: ``cuda_kernels._launch.launch`` on a Numba kernel with 1 and with 4 array arguments
(CuPy arrays, CuPy's current stream) and Numba's plain ``kernel[grid, block](...)`` on the same
CuPy arrays; a CuPy ``ElementwiseKernel`` with 1 and 4 arrays; PyTorch ``x.add_(1)``,
``torch.add(a, b, out=c)`` and ``torch.addcmul(a, b, c, out=d)``.  Each framework runs in its
own ``--worker`` process, the order reversed every round; medians [min–max] over rounds.

``--dry-run``: gpunet in Numba's CUDA simulator, PyTorch on the CPU, CuPy skipped (it needs a
GPU), few launches: it proves the script; the figures mean NOTHING for speed.

Example:
    $ python benchmarks/launch_overhead.py --launches 5000 --rounds 3 --out results/launch.txt
    $ python benchmarks/launch_overhead.py --dry-run --launches 3 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_step import Report, run_json_worker  # noqa: E402

FRAMEWORKS = ("gpunet", "cupy", "torch")
cuda = None  # numba.cuda, imported by the gpunet worker only


def spread(values) -> str:
    """``median [min–max]`` in µs with two decimals."""
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def time_launches(launch, sync, launches, reps) -> dict:
    """Median host and synced µs per launch over ``reps`` runs of ``launches`` launches."""
    for _ in range(3):  # compile / warm caches
        launch()
    sync()
    host, synced = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(launches):
            launch()
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
        host.append((t1 - t0) / launches * 1e6)
        synced.append((t2 - t0) / launches * 1e6)
    return {"host_us": statistics.median(host), "synced_us": statistics.median(synced)}


def gpunet_rows(n, launches, reps):
    # A module global, not a local: the simulator swaps a kernel's global ``cuda`` for its own.
    global cuda
    from numba import cuda

    from cuda_kernels import _launch

    @cuda.jit
    def add_one_kernel(x):
        i = cuda.grid(1)
        if i < x.size:
            x[i] += 1.0

    @cuda.jit
    def add3_kernel(out, a, b, c):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = a[i] + b[i] + c[i]

    xp = _launch.xp
    x, a, b, c = (xp.zeros(n, dtype=xp.float32) for _ in range(4))
    grid, tpb = _launch.blocks_for(n), _launch.TPB
    sync = (lambda: None) if _launch.SIMULATOR else xp.cuda.get_current_stream().synchronize
    yield "gpunet _launch.launch, 1 array", time_launches(
        lambda: _launch.launch(add_one_kernel, grid, tpb, x), sync, launches, reps)
    yield "gpunet _launch.launch, 4 arrays", time_launches(
        lambda: _launch.launch(add3_kernel, grid, tpb, x, a, b, c), sync, launches, reps)
    if not _launch.SIMULATOR:  # the fallback route, taken when the fast route fails its check
        yield "gpunet plain route (as_cuda_array), 4 arrays", time_launches(
            lambda: _launch.plain_launch(add3_kernel, grid, tpb, (x, a, b, c)), sync, launches, reps)
    yield "numba kernel[grid, block], 4 arrays, no stream", time_launches(
        lambda: add3_kernel[grid, tpb](x, a, b, c), sync, launches, reps)


def cupy_rows(n, launches, reps):
    import cupy

    add_one = cupy.ElementwiseKernel("", "float32 x", "x += 1.0f", "gpunet_bench_add_one")
    add3 = cupy.ElementwiseKernel("float32 a, float32 b, float32 c", "float32 out",
                                  "out = a + b + c", "gpunet_bench_add3")
    x, a, b, c = (cupy.zeros(n, dtype=cupy.float32) for _ in range(4))
    sync = cupy.cuda.get_current_stream().synchronize
    yield "cupy ElementwiseKernel, 1 array", time_launches(lambda: add_one(x), sync, launches, reps)
    yield "cupy ElementwiseKernel, 4 arrays", time_launches(lambda: add3(a, b, c, x), sync,
                                                            launches, reps)


def torch_rows(n, launches, reps, device):
    import torch

    x, a, b, c = (torch.zeros(n, dtype=torch.float32, device=device) for _ in range(4))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    yield f"torch x.add_(1) on {device}", time_launches(lambda: x.add_(1), sync, launches, reps)
    yield f"torch torch.add(a, b, out=c) on {device}", time_launches(
        lambda: torch.add(a, b, out=c), sync, launches, reps)
    yield f"torch torch.addcmul(a, b, c, out=x) on {device}", time_launches(
        lambda: torch.addcmul(a, b, c, out=x), sync, launches, reps)


def worker(args) -> None:
    if args.worker == "gpunet":
        rows = gpunet_rows(args.n, args.launches, args.reps)
    elif args.worker == "cupy":
        rows = cupy_rows(args.n, args.launches, args.reps)
    else:
        rows = torch_rows(args.n, args.launches, args.reps, "cpu" if args.dry_run else "cuda")
    print(json.dumps(dict(rows)))


def run_worker(framework, args) -> dict:
    return run_json_worker([__file__, "--worker", framework, "--n", str(args.n), "--launches",
                            str(args.launches), "--reps", str(args.reps)], f"{framework} worker",
                           args.dry_run, args.worker_timeout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--launches", type=int, default=5000, help="launches per timed run")
    p.add_argument("--reps", type=int, default=5, help="timed runs per process (median)")
    p.add_argument("--rounds", type=int, default=3, help="processes per framework, alternating")
    p.add_argument("--n", type=int, default=1024, help="float32 elements per array")
    p.add_argument("--dry-run", action="store_true", help="simulator, torch on CPU, no CuPy")
    p.add_argument("--out", type=Path, help="also write the report here")
    p.add_argument("--json", type=Path, help="write every worker's record here")
    p.add_argument("--worker-timeout", type=float, default=120)
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("launches", "reps", "rounds", "n"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.worker:
        return worker(args) or 0
    frameworks = [f for f in FRAMEWORKS if not (args.dry_run and f == "cupy")]
    report = Report()
    say = report.say

    if args.dry_run:
        say("# DRY RUN: Numba's CUDA simulator and PyTorch on the CPU — the figures mean NOTHING "
            "for speed; CuPy skipped (it needs a GPU)")
    say(f"# µs per launch of a trivial kernel on {args.n} float32, {args.launches} launches x "
        f"{args.reps} runs per process, {args.rounds} rounds; median [min–max] over rounds")
    per_round = {f: [] for f in frameworks}
    for r in range(args.rounds):
        for fw in (frameworks if r % 2 == 0 else frameworks[::-1]):
            per_round[fw].append(run_worker(fw, args))
    say(f"{'launch':<48}{'host us/launch':>28}{'synced us/launch':>30}")
    for fw in frameworks:
        for row in per_round[fw][0]:
            host = [rec[row]["host_us"] for rec in per_round[fw]]
            synced = [rec[row]["synced_us"] for rec in per_round[fw]]
            say(f"{row:<48}{spread(host):>28}{spread(synced):>30}")
    report.save(args.out, args.json, per_round)
    return 0


if __name__ == "__main__":
    sys.exit(main())
