"""gpunet against PyTorch, each framework and case in its own process; ratios to benchmarks/results/.

Suites: ``lenet`` (training step at batch 64 and 256, inference at 256), ``conv`` (Conv2d 64→64
3×3 on 32×64×32×32, forward and forward+backward, GFLOP/s), ``scaling`` (the LeNet step for
batch 16…1024), ``lstm`` (one LSTM(128, 128) layer, 50 steps, batch 64, forward+backward;
sequences/s) and ``memory`` (peak RSS of a LeNet training epoch).  Every number comes from
``benchmarks/worker.py`` processes: frameworks alternate within a round, the order flips each
round, both get the same thread count, and the load average is recorded around every process.

Example:
    $ python benchmarks/run.py                              # all suites, 3 rounds, 2 threads
    $ python benchmarks/run.py --suite lenet --rounds 5
    $ python benchmarks/run.py --suite scaling --gpunet-src /tmp/old-checkout --tag baseline
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402
from benchmarks.cases import SCALING_BATCHES  # noqa: E402

SUITES = {
    "lenet": ["lenet-step-b64", "lenet-step-b256", "lenet-infer-b256"],
    "conv": ["conv-fwd", "conv-fwdbwd"],
    "scaling": [f"lenet-step-b{n}" for n in SCALING_BATCHES],
    "lstm": ["lstm-fwdbwd"],
    "models": ["resnet8-step-b64", "resnet8-step-b128", "vgg-step-b32", "lenetbn-step-b64",
               "lstmlm-step-b20", "grulm-step-b20"],
    "conv3x3": [f"conv3x3-c{c}-s{s}" for c in (16, 64, 128) for s in (1, 2)],
}


def memory_probe(framework, backend, threads, batch_size=64):
    """In a fresh process: one LeNet training epoch over the 4,000 embedded digits; print JSON."""
    from benchmarks.worker import THREAD_VARS

    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    from benchmarks.models import GpunetLeNet, TorchLeNet, lenet_weights
    from gpunet import datasets

    (x, y), _ = datasets.digits()
    w = lenet_weights(0)
    model = (GpunetLeNet(w, backend) if framework == "gpunet"
             else TorchLeNet(w, "cuda" if backend == "cuda" else "cpu"))
    t0 = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model.step(*model.tensors(x[i:i + batch_size], y[i:i + batch_size]))
    peak = next(int(line.split()[1]) / 1024 for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"framework": framework, "peak_rss_mb": peak,
                      "epoch_s": time.perf_counter() - t0}))


def suite_memory(args):
    out, lines = {}, []
    for fw in ("gpunet", "torch"):
        cmd = [sys.executable, __file__, "--memory-probe", fw, "--backend", args.backend,
               "--threads", str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        out[fw] = json.loads(res.stdout.strip().splitlines()[-1])
        lines.append(f"memory {fw:<7} peak RSS {out[fw]['peak_rss_mb']:7.1f} MB "
                     f"(one epoch, batch 64, {out[fw]['epoch_s']:.2f} s; import footprint included)")
    out["peak_ratio_gpunet_over_torch"] = out["gpunet"]["peak_rss_mb"] / out["torch"]["peak_rss_mb"]
    lines.append(f"memory peak RSS gpunet/torch = {out['peak_ratio_gpunet_over_torch']:.2f}")
    return out, lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", nargs="+", choices=list(SUITES) + ["memory", "all"], default=["all"])
    p.add_argument("--backend", choices=("numpy", "cuda"), default="numpy")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 3)")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions inside each process")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both sides")
    p.add_argument("--gpunet-src", help="time the gpunet package found in this folder instead")
    p.add_argument("--tag", default="", help="suffix for the results file names")
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--memory-probe", choices=("gpunet", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        return memory_probe(args.memory_probe, args.backend, args.threads)
    if args.rounds < 3:
        p.error(f"--rounds must be at least 3, got {args.rounds}")
    suites = list(SUITES) + ["memory"] if "all" in args.suite else args.suite
    lines = [harness.header(args.threads, args.rounds, args.backend)]
    print(lines[0], flush=True)
    t0, done, doc = time.perf_counter(), {}, {"suites": suites, "rounds": args.rounds,
                                              "threads": args.threads, "backend": args.backend,
                                              "gpunet_src": args.gpunet_src, "results": {}}
    for suite in suites:
        lines.append(f"\n== {suite} ==")
        print(lines[-1], flush=True)
        if suite == "memory":
            doc["results"]["memory"], text = suite_memory(args)
            lines += text
            print("\n".join(text), flush=True)
            continue
        recs = []
        for case in SUITES[suite]:
            if case not in done:
                done[case] = harness.race(case, args.rounds, args.threads, args.backend, args.reps,
                                          args.gpunet_src)
            recs.append(done[case])
            lines.append(harness.format_record(done[case]))
            print(lines[-1], flush=True)
        doc["results"][suite] = recs
    lines.append(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at the end "
                 f"{harness.loadavg()}")
    print(lines[-1])
    if not args.no_save:
        print("wrote", harness.write_results(doc, "\n".join(lines) + "\n", args.backend, args.tag))


if __name__ == "__main__":
    main()
