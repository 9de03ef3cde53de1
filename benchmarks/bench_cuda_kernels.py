"""Benchmark gpunet's hand-written CUDA kernels against the device's copy bandwidth and PyTorch.

For each op it prints the median time of >= 7 CUDA-event-timed runs (after warm-up), the
achieved bandwidth (memory-bound kernels) or FLOP rate (conv2d), that bandwidth as a share of
the measured device-to-device copy bandwidth, and PyTorch's time for the same op in the same
run when ``torch`` is importable with CUDA.  Targets: memory-bound kernels >= 80% of copy
bandwidth, conv2d within 2x of PyTorch (cuDNN).  Every row also checks gpunet's result against
PyTorch's (or, without torch, gpunet's NumPy backend) at float32 tolerance and prints "match";
any mismatch makes the exit status 1.

Run on a machine with an NVIDIA GPU and ``pip install "gpunet[cuda]"`` (``gpunet[bench]`` adds
PyTorch)::

    python benchmarks/bench_cuda_kernels.py [--reps 9] [--out benchmarks/results/<device>.txt]

Without a usable GPU it prints why and exits with status 0.  ``--smoke`` runs the same code on
tiny shapes in Numba's CUDA simulator on the CPU (it sets NUMBA_ENABLE_CUDASIM=1 itself), timed
by the wall clock, against PyTorch on the CPU where torch is importable: it proves the script
and the results, and its times mean nothing for speed.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from benchmarks.kernel_bench_tools import (  # noqa: E402
    Bench, NumpyReference, TorchReference, event_timer, wall_timer)


class Shapes(NamedTuple):
    """The problem sizes of one mode."""

    relu: tuple            # NCHW
    pool: tuple            # NCHW, pooled with a 3x3 window, stride 2, padding 1
    softmax_ce: list       # [(rows, classes), ...]
    conv: tuple            # (x NCHW, w KCkk), stride 1, padding 1
    copy_floats: int       # float32 elements of the copy-bandwidth run


GPU_SHAPES = Shapes((256, 64, 56, 56), (256, 64, 56, 56), [(4096, 1000)],
                    ((128, 64, 56, 56), (64, 64, 3, 3)), 256 * 2**20)
# The simulator runs one Python thread per CUDA thread: keep every launch tiny.  3x300 makes
# each softmax-CE thread stride over its row more than once.
SMOKE_SHAPES = Shapes((2, 3, 9, 9), (2, 3, 9, 9), [(5, 7), (3, 300)],
                      ((2, 3, 7, 7), (4, 3, 3, 3)), 2**20)


def dims(shape) -> str:
    return "x".join(map(str, shape))


def relu_rows(b: Bench, shape) -> None:
    x, gy = b.randn(shape), b.randn(shape)
    y = b.be.relu_fwd(x)
    expected = b.reference.relu(x, gy)
    b.row(f"relu fwd {dims(shape)}", lambda: b.be.relu_fwd(x), 2 * x.nbytes, "GB/s",
          expected["fwd"])
    b.row(f"relu bwd {dims(shape)}", lambda: b.be.relu_bwd(gy, y), 3 * x.nbytes, "GB/s",
          expected["bwd"])


def max_pool_rows(b: Bench, shape, k=(3, 3), s=(2, 2), p=(1, 1)) -> None:
    """The ResNet stem pool: 3x3 window, stride 2, padding 1."""
    x = b.randn(shape)
    y, am = b.be.max_pool2d_fwd(x, k, s, p)
    gy = b.randn(y.shape)
    expected = b.reference.max_pool2d(x, gy, k, s, p)
    name = f"max_pool2d {{}} k{k[0]} s{s[0]} p{p[0]} {dims(shape)}"
    b.row(name.format("fwd"), lambda: b.be.max_pool2d_fwd(x, k, s, p)[0],
          x.nbytes + y.nbytes + am.nbytes, "GB/s", expected["fwd"])
    b.row(name.format("bwd"), lambda: b.be.max_pool2d_bwd(gy, am, x.shape, k, s, p),
          gy.nbytes + am.nbytes + x.nbytes, "GB/s", expected["bwd"])


def softmax_ce_rows(b: Bench, n, classes) -> None:
    logits, labels = b.randn((n, classes)), b.labels(n, classes)
    gloss = b.be.asarray(np.full(n, 1.0 / n, dtype=np.float32))
    loss, probs, _ = b.be.softmax_cross_entropy_fwd(logits, labels)
    expected = b.reference.softmax_ce(logits, labels, gloss)

    def fwd_bwd():
        loss_, probs_, _ = b.be.softmax_cross_entropy_fwd(logits, labels)
        return loss_, b.be.softmax_cross_entropy_bwd(probs_, labels, gloss)

    b.row(f"softmax-CE fwd {n}x{classes}",
          lambda: b.be.softmax_cross_entropy_fwd(logits, labels)[0],
          logits.nbytes + probs.nbytes + loss.nbytes + labels.nbytes, "GB/s", expected["fwd"])
    b.row(f"softmax-CE bwd {n}x{classes}",
          lambda: b.be.softmax_cross_entropy_bwd(probs, labels, gloss),
          2 * probs.nbytes + labels.nbytes + gloss.nbytes, "GB/s", expected["bwd"])
    b.row(f"softmax-CE fwd+bwd {n}x{classes}", fwd_bwd, 3 * logits.nbytes + probs.nbytes,
          "GB/s", expected["fwd+bwd"])


def conv_rows(b: Bench, x_shape, w_shape, st=(1, 1), pd=(1, 1)) -> None:
    from cuda_kernels import conv as kconv

    be = b.be
    x, w, bias = b.randn(x_shape), b.randn(w_shape, scale=0.05), b.randn(w_shape[:1])
    y, cols = be.conv2d_fwd(x, w, bias, st, pd)
    gy = b.randn(y.shape)
    expected = b.reference.conv2d(x, w, bias, gy, st, pd)
    flops = 2 * y.size * w[0].size  # one GEMM's multiply-adds

    def bwd(saved):
        return (be.conv2d_bwd_data(gy, w, x.shape, st, pd, saved),
                be.conv2d_bwd_weight(gy, x, w.shape, st, pd, saved),
                be.conv2d_bwd_bias(gy))

    def fwd_bwd():
        y_, saved = be.conv2d_fwd(x, w, bias, st, pd)
        return (y_, *bwd(saved))

    name = f"conv2d {{}} {dims(x_shape)} k{w_shape[2]}"  # "conv2d im2col alone" writes cols
    b.row(name.format("im2col alone"), lambda: kconv.im2col_wide(x, w_shape[2:], st, pd),
          x.nbytes + cols.nbytes, "GB/s", expected["im2col"])
    b.row(name.format("fwd"), lambda: be.conv2d_fwd(x, w, bias, st, pd)[0], flops, "TFLOP/s",
          expected["fwd"])
    b.row(name.format("bwd data+weight+bias"), lambda: bwd(cols), 2 * flops, "TFLOP/s",
          expected["bwd"])
    b.row(name.format("fwd+bwd"), fwd_bwd, 3 * flops, "TFLOP/s", expected["fwd+bwd"])


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def gpu_bench(reps, use_torch) -> Bench | None:
    """The cuda backend on a GPU, CUDA-event timing, PyTorch on CUDA; None (says why) if no GPU."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        print("no GPU benchmark: NUMBA_ENABLE_CUDASIM is set (the simulator is not a GPU; "
              "--smoke runs it)")
        return None
    from gpunet import backends

    reason = backends.cuda_unavailable_reason()
    if reason is not None:
        print(f"no GPU: {reason}; nothing to benchmark")
        return None
    be = backends.backend("cuda")
    import cupy
    import numba

    torch = import_torch() if use_torch else None
    if torch is not None and not torch.cuda.is_available():
        torch = None
    if torch is not None:
        torch.backends.cudnn.benchmark = True
        # Like for like: gpunet's cuBLAS GEMMs are full float32, so cuDNN may not use TF32.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        reference = TorchReference(torch, event_timer(
            lambda: torch.cuda.Event(enable_timing=True), lambda s, e: s.elapsed_time(e), reps),
            "GPU")
    else:
        reference = NumpyReference(be.to_host)
    b = Bench(be, event_timer(cupy.cuda.Event, cupy.cuda.get_elapsed_time, reps), reference)
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    b.say(f"# gpunet cuda kernels on {props['name'].decode()} — {now()}")
    b.say(f"# cupy {cupy.__version__}, numba {numba.__version__}, "
          f"torch {torch.__version__ if torch else 'not available'}; median of {reps} runs; "
          f"results checked against {reference.name}")
    if torch is not None:
        b.say(f"# torch convs: cudnn.benchmark, TF32 allowed: {torch.backends.cudnn.allow_tf32} "
              "(off: gpunet's GEMMs are full float32 too)")
    return b


def smoke_bench(reps, use_torch) -> Bench:
    """The cuda backend in Numba's CUDA simulator, wall-clock timing, PyTorch on the CPU."""
    from gpunet import backends

    reason = backends.cuda_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"--smoke cannot run the cuda backend in the simulator: {reason}")
    be = backends.backend("cuda")
    if not be.simulated:
        raise SystemExit("--smoke: the cuda backend is not simulated (numba was imported "
                         "before NUMBA_ENABLE_CUDASIM=1 was set)")
    import numba

    torch = import_torch() if use_torch else None
    reference = (TorchReference(torch, wall_timer(lambda: None, reps), "CPU") if torch
                 else NumpyReference(be.to_host))
    b = Bench(be, wall_timer(be.synchronize, reps), reference)
    b.say("# SMOKE TEST: Numba's CUDA simulator on the CPU, tiny shapes, wall-clock times — "
          f"the figures mean NOTHING for speed; only the results are checked — {now()}")
    b.say(f"# numpy {np.__version__}, numba {numba.__version__}, "
          f"torch {torch.__version__ if torch else 'not used'}; 1 warm-up + median of {reps} "
          f"runs; results checked against {reference.name}")
    return b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help="timed runs per op (GPU: >= 7, default 9; "
                        "--smoke: default 3)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes in Numba's CUDA simulator on the CPU: checks the "
                             "script and the results, not the speed")
    parser.add_argument("--no-torch", action="store_true",
                        help="check against gpunet's NumPy backend even where torch is importable")
    args = parser.parse_args(argv)

    if args.smoke:
        if "numba" in sys.modules and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            raise SystemExit("--smoke must set NUMBA_ENABLE_CUDASIM=1 before numba is imported")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        # Each simulated CUDA thread is a Python thread: a short GIL switch interval makes
        # cuda.syncthreads() cheap (as tests/conftest.py does).
        sys.setswitchinterval(5e-4)
        shapes, b = SMOKE_SHAPES, smoke_bench(args.reps or 3, not args.no_torch)
    else:
        shapes, b = GPU_SHAPES, gpu_bench(max(7, args.reps or 9), not args.no_torch)
        if b is None:
            return 0

    b.copy_bandwidth(shapes.copy_floats)
    relu_rows(b, shapes.relu)
    max_pool_rows(b, shapes.pool)
    for n, classes in shapes.softmax_ce:
        softmax_ce_rows(b, n, classes)
    conv_rows(b, *shapes.conv)

    if b.failures:
        b.say(f"# MISMATCH in {len(b.failures)} rows ({', '.join(b.failures)}): gpunet's "
              f"results differ from {b.reference.name}")
    else:
        b.say(f"# every result matches {b.reference.name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(b.lines) + "\n")
        print(f"written to {args.out}")
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
