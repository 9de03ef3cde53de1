"""LeNet-5 training step on one GPU: gpunet's ``cuda`` backend vs PyTorch eager, or its profile.

Race (default): for each batch size, every (framework, round) is a fresh ``--worker`` process;
within a round the two frameworks run one after the other and the order flips each round.  Each
worker warms up, calibrates how many steps make a >= 0.1 s repetition, synchronises the device
before every clock read, and reports the median of ``--reps`` repetitions.  Printed: step time
and images/s per framework (median [min–max] over rounds) and ``ratio = gpunet images/s ÷
PyTorch images/s`` per round (> 1: gpunet is faster).  PyTorch runs in full float32 (cuDNN TF32
off), as gpunet's GEMMs do.

``--graphs`` adds the step captured as a CUDA graph and replayed (issue 24): gpunet's
``gn.cuda.graph`` and PyTorch's ``torch.cuda.graph`` (warm-up on a side stream, as its docs
do), four workers a round, and each worker's host µs per step (the time to queue steps,
without synchronising).  A variant that cannot run here is reported with its error.

``--profile``: ``gn.profiler.profile()``'s table of one gpunet step after warm-up.

``--dry-run``: the same code in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) with
PyTorch on the CPU, tiny batches, few repetitions: it proves the script; its figures mean
NOTHING for speed.

Example:
    $ python benchmarks/gpu_step.py --batches 64 256 --rounds 3 --out results/lenet_step.txt
    $ python benchmarks/gpu_step.py --profile --batch 64
    $ python benchmarks/gpu_step.py --dry-run --batches 2 --rounds 2 --reps 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child_env(dry_run: bool) -> dict:
    """The environment of a worker: the simulator on for a dry run, off (a real GPU) otherwise."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    if dry_run:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    return env


def run_json_worker(argv, what, dry_run, timeout) -> dict:
    """Run ``python argv… [--dry-run]`` in its own process and return the JSON record it prints
    last; ``what`` names it in the error when it fails."""
    cmd = [sys.executable, *argv] + (["--dry-run"] if dry_run else [])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env(dry_run),
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{res.stdout}{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


class Report:
    """Lines printed as they come and kept, written at the end with the raw records."""

    def __init__(self):
        self.lines = []

    def say(self, text):
        print(text, flush=True)
        self.lines.append(text)

    def save(self, out, json_path, doc):
        """The printed lines to ``out`` and ``doc`` as JSON to ``json_path`` (each when given)."""
        as_json = None if doc is None else json.dumps(doc, indent=1)
        for path, text in ((out, "\n".join(self.lines)), (json_path, as_json)):
            if path and text is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text + "\n")


def build_model(framework: str, dry_run: bool):
    """The LeNet-5 of benchmarks/models.py on the GPU (gpunet ``cuda``, torch ``cuda``)."""
    from benchmarks.models import GpunetLeNet, TorchLeNet, lenet_weights

    weights = lenet_weights(0)
    if framework == "gpunet":
        model = GpunetLeNet(weights, "cuda")
        if model.be.simulated != dry_run:
            flag = os.environ.get("NUMBA_ENABLE_CUDASIM")
            raise SystemExit(f"gpunet's cuda backend simulated={model.be.simulated}, expected "
                             f"{dry_run} (NUMBA_ENABLE_CUDASIM={flag})")
        return model, "simulator" if dry_run else _cupy_device_name()
    import torch

    torch.backends.cudnn.allow_tf32 = False  # like for like: gpunet is full float32
    torch.backends.cuda.matmul.allow_tf32 = False
    device = "cpu" if dry_run else "cuda"
    return TorchLeNet(weights, device), ("cpu" if dry_run else torch.cuda.get_device_name())


def _cupy_device_name() -> str:
    import cupy

    return cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()


def worker(args) -> None:
    """One framework, one batch size, in this process: print one JSON line."""
    from benchmarks.models import batch
    from benchmarks.worker import time_case

    framework, captured = args.worker.split("-")[0], args.worker.endswith("-graph")
    if captured and framework == "torch" and args.dry_run:
        print(json.dumps({"framework": args.worker, "batch": args.batch,
                          "error": "PyTorch's CUDA graphs need a GPU (dry run: torch on the CPU)"}))
        return
    model, device = build_model(framework, args.dry_run)
    x, y = model.tensors(*batch(args.batch))
    try:
        one_step = (captured_step(model, framework, x, y, 1 if args.dry_run else 3) if captured
                    else (lambda: model.step(x, y)))
    except (NotImplementedError, RuntimeError) as e:  # reported, not fatal: the others still run
        print(json.dumps({"framework": args.worker, "batch": args.batch, "device": device,
                          "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}))
        return

    class StepCase:
        fn, sync = staticmethod(one_step), staticmethod(model.sync)

    if args.dry_run:  # the simulator compiles nothing: no warm-up, one step per repetition
        seconds, inner = [], 1
        for _ in range(args.reps):
            t0 = time.perf_counter()
            StepCase.fn()
            StepCase.sync()
            seconds.append(time.perf_counter() - t0)
    else:
        seconds, inner = time_case(StepCase, args.reps, warmup=5, min_rep_s=0.1)
    model.sync()
    host_s = statistics.median(seconds) / inner  # the simulator: host time is all there is
    if not args.dry_run:
        t0 = time.perf_counter()
        for _ in range(20):  # host time: queueing steps, the device left to catch up after
            StepCase.fn()
        host_s = (time.perf_counter() - t0) / 20
        model.sync()
    print(json.dumps({"framework": args.worker, "batch": args.batch, "device": device,
                      "inner": inner, "seconds": seconds, "host_s": host_s}))


def captured_step(model, framework, x, y, warmup=3):
    """``replay`` of the model's training step captured as a graph, after ``warmup`` eager
    steps (PyTorch's: on a side stream, gradients set to None before the capture)."""
    if framework == "torch":
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model.step(x, y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        model.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            model.step(x, y)
        return graph.replay
    import gpunet as gn

    for _ in range(warmup):
        model.step(x, y)
    graph = gn.cuda.CUDAGraph()
    with gn.cuda.graph(graph):
        model.step(x, y)
    return graph.replay


def run_worker(framework, batch_size, args) -> dict:
    return run_json_worker([__file__, "--worker", framework, "--batch", str(batch_size),
                            "--reps", str(args.reps)], f"{framework} worker (batch {batch_size})",
                           args.dry_run, args.worker_timeout)


def spread(values) -> str:
    return f"{statistics.median(values):.4g} [{min(values):.4g}–{max(values):.4g}]"


RATIOS = (("gpunet", "torch", "ratio gpunet/PyTorch"),
          ("gpunet-graph", "torch", "ratio gpunet captured/PyTorch eager"),
          ("gpunet-graph", "torch-graph", "ratio gpunet captured/PyTorch captured"))


def race(args, say) -> dict:
    """Alternate the worker processes (gpunet, torch, and with ``--graphs`` their captured
    steps), the order turning each round; one text row per framework and batch size."""
    frameworks = ["gpunet", "torch"] + (["gpunet-graph", "torch-graph"] if args.graphs else [])
    results = {}
    for n in args.batches:
        per = {fw: [] for fw in frameworks}
        for r in range(args.rounds):
            for fw in frameworks[r % len(frameworks):] + frameworks[:r % len(frameworks)]:
                per[fw].append(run_worker(fw, n, args))
        med = {fw: [statistics.median(rec["seconds"]) for rec in recs if "error" not in rec]
               for fw, recs in per.items()}
        results[n] = {"runs": per}
        for fw in frameworks:
            if not med[fw]:
                say(f"batch {n:<5} {fw:<12} not run: {per[fw][0]['error']}")
                continue
            ms, per_s = [s * 1e3 for s in med[fw]], [n / s for s in med[fw]]
            host = [rec["host_s"] * 1e6 for rec in per[fw]]
            say(f"batch {n:<5} {fw:<12} on {per[fw][0]['device']}: step ms {spread(ms)}  "
                f"images/s {spread(per_s)}  host us/step {spread(host)}")
        for ours, theirs, label in RATIOS:
            if med.get(ours) and med.get(theirs):
                ratio = [t / g for g, t in zip(med[ours], med[theirs])]
                results[n][label] = ratio
                say(f"batch {n:<5} {label} images/s {spread(ratio)}  (> 1: gpunet faster)")
    return results


def profile(args, say) -> None:
    """``gn.profiler.profile()`` around one synchronised gpunet step, after warm-up."""
    import gpunet as gn
    from benchmarks.models import batch

    model, device = build_model("gpunet", args.dry_run)
    x, y = model.tensors(*batch(args.batch))
    for _ in range(0 if args.dry_run else 3):  # compiles every kernel first (not in the simulator)
        model.step(x, y)
    model.sync()
    with gn.profiler.profile() as prof:
        model.step(x, y)
        model.sync()
    t = prof.totals()
    say(f"# one LeNet-5 SGD step, batch {args.batch}, gpunet cuda backend on {device}")
    say(prof.table())
    say(f"# {t['launches']} kernel launches, {t['gemms']} GEMMs, host {t['host_s'] * 1e3:.3f} ms, "
        f"device {t['device_s'] * 1e3:.3f} ms (device time is 0 in the simulator)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 3; a dry run "
                   "may use fewer)")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions inside each process")
    p.add_argument("--profile", action="store_true", help="the profiler table of one gpunet step")
    p.add_argument("--graphs", action="store_true", help="also the captured steps (CUDA graphs)")
    p.add_argument("--batch", type=int, default=64, help="batch size of --profile / --worker")
    p.add_argument("--dry-run", action="store_true", help="simulator + torch on CPU; no speed")
    p.add_argument("--out", type=Path, help="also write the report here")
    p.add_argument("--json", type=Path, help="write every worker's record here")
    p.add_argument("--worker-timeout", type=float, default=300, help="seconds per worker process")
    p.add_argument("--worker", choices=("gpunet", "torch", "gpunet-graph", "torch-graph"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name, values in (("batches", args.batches), ("batch", [args.batch]), ("reps", [args.reps])):
        if min(values) < 1:
            p.error(f"--{name} must be at least 1, got {min(values)}")
    if args.dry_run:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
    if args.worker:
        return worker(args) or 0
    if args.rounds < (1 if args.dry_run else 3):
        p.error(f"--rounds must be at least 3 (1 with --dry-run), got {args.rounds}")
    report = Report()
    say = report.say
    if args.dry_run:
        say("# DRY RUN: Numba's CUDA simulator and PyTorch on the CPU — the figures mean NOTHING "
            "for speed")
    t0, doc = time.perf_counter(), None
    if args.profile:
        profile(args, say)
    else:
        say(f"# LeNet-5 SGD step, gpunet cuda backend vs PyTorch eager, each (framework, round) "
            f"in its own process, {args.rounds} alternating rounds, median [min–max] over rounds")
        doc = race(args, say)
    say(f"# {time.perf_counter() - t0:.1f} s")
    report.save(args.out, args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
