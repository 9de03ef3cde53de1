"""Benchmark gpunet's hand-written CUDA kernels against the device's copy bandwidth and PyTorch.

For each op it prints the median time of >= 7 CUDA-event-timed runs (after warm-up), the
achieved bandwidth (memory-bound kernels) or FLOP rate (conv2d), that bandwidth as a share of
the measured device-to-device copy bandwidth, and PyTorch's time for the same op in the same
run when ``torch`` is importable with CUDA.  Targets: memory-bound kernels >= 80% of copy
bandwidth, conv2d within 2x of PyTorch (cuDNN).

Run on a machine with an NVIDIA GPU and ``pip install "gpunet[cuda]"`` (``gpunet[bench]`` adds
PyTorch)::

    python benchmarks/bench_cuda_kernels.py [--reps 9] [--out benchmarks/results/<device>.txt]

Without a usable GPU it prints why and exits with status 0.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def gpu_or_exit():
    """The cuda backend on a real GPU, or print why not and exit 0."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        print("no GPU benchmark: NUMBA_ENABLE_CUDASIM is set (the simulator is not a GPU)")
        sys.exit(0)
    from gpunet import backends

    reason = backends.cuda_unavailable_reason()
    if reason is not None:
        print(f"no GPU: {reason}; nothing to benchmark")
        sys.exit(0)
    return backends.backend("cuda")


def timed(fn, reps, warmup=3, stream_events=None):
    """Median milliseconds of ``fn()`` over ``reps`` runs, bracketed by CUDA events."""
    make_event, elapsed = stream_events
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = make_event(), make_event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(elapsed(start, end))
    return statistics.median(times)


def cupy_events():
    import cupy

    return cupy.cuda.Event, cupy.cuda.get_elapsed_time


def torch_events():
    import torch

    return (lambda: torch.cuda.Event(enable_timing=True)), (lambda s, e: s.elapsed_time(e))


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.benchmark = True
    return torch


def row(name, ms, amount, unit, copy_gbs=None, torch_ms=None):
    """One result line: time, rate, share of copy bandwidth, PyTorch time and ratio."""
    rate = amount / (ms * 1e-3) / (1e12 if unit == "TFLOP/s" else 1e9)
    text = f"{name:<34} {ms:9.3f} ms  {rate:9.1f} {unit:<7}"
    if copy_gbs is not None:
        text += f"  {100 * rate / copy_gbs:5.1f}% of copy"
    else:
        text += " " * 17
    if torch_ms is not None:
        text += f"  torch {torch_ms:9.3f} ms  (gpunet/torch {ms / torch_ms:5.2f}x)"
    say(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9, help="timed runs per op (>= 7)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    reps = max(7, args.reps)

    be = gpu_or_exit()
    import cupy
    import numba

    torch = load_torch()
    ev, tev = cupy_events(), torch_events() if torch else None
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    say(f"# gpunet cuda kernels on {props['name'].decode()} — "
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    say(f"# cupy {cupy.__version__}, numba {numba.__version__}, "
        f"torch {torch.__version__ if torch else 'not available'}; median of {reps} runs")

    rs = cupy.random.RandomState(0)
    f32 = cupy.float32

    # Device copy bandwidth: read + write of 1 GiB.
    src = cupy.ones(256 * 2**20, dtype=f32)
    dst = cupy.empty_like(src)
    copy_ms = timed(lambda: cupy.copyto(dst, src), reps, stream_events=ev)
    copy_gbs = 2 * src.nbytes / (copy_ms * 1e-3) / 1e9
    say(f"{'device copy (cupy.copyto, 1 GiB)':<34} {copy_ms:9.3f} ms  {copy_gbs:9.1f} GB/s")
    del src, dst

    def tt(fn):
        return timed(fn, reps, stream_events=tev) if torch else None

    def tview(a):
        return torch.from_dlpack(a) if torch else None

    # relu on 256x64x56x56.
    x = rs.standard_normal((256, 64, 56, 56), dtype=f32)
    y = be.relu_fwd(x)
    gy = rs.standard_normal(x.shape, dtype=f32)
    tx, ty, tgy = tview(x), tview(y), tview(gy)
    row("relu fwd 256x64x56x56", timed(lambda: be.relu_fwd(x), reps, stream_events=ev),
        2 * x.nbytes, "GB/s", copy_gbs, tt(lambda: torch.relu(tx)))
    row("relu bwd 256x64x56x56", timed(lambda: be.relu_bwd(gy, y), reps, stream_events=ev),
        3 * x.nbytes, "GB/s", copy_gbs,
        tt(lambda: torch.ops.aten.threshold_backward(tgy, ty, 0)))
    del y, gy, ty, tgy

    # max_pool2d 3x3 stride 2 padding 1 (the ResNet stem pool) on the same tensor.
    k, s, p = (3, 3), (2, 2), (1, 1)
    y, am = be.max_pool2d_fwd(x, k, s, p)
    gy = rs.standard_normal(y.shape, dtype=f32)
    fwd_bytes = x.nbytes + y.nbytes + am.nbytes
    bwd_bytes = gy.nbytes + am.nbytes + x.nbytes
    t_fwd = t_bwd = None
    if torch:
        ty, tidx = torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=True)
        tgy = tview(gy)
        t_fwd = tt(lambda: torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=True))
        t_bwd = tt(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            tgy, tx, [3, 3], [2, 2], [1, 1], [1, 1], False, tidx))
    row("max_pool2d fwd k3 s2 p1", timed(lambda: be.max_pool2d_fwd(x, k, s, p), reps,
                                          stream_events=ev), fwd_bytes, "GB/s", copy_gbs, t_fwd)
    row("max_pool2d bwd k3 s2 p1", timed(lambda: be.max_pool2d_bwd(gy, am, x.shape, k, s, p),
                                          reps, stream_events=ev), bwd_bytes, "GB/s", copy_gbs,
        t_bwd)
    del x, y, am, gy, tx
    if torch:
        del ty, tidx, tgy

    # softmax cross-entropy on 4096x1000.
    logits = rs.standard_normal((4096, 1000), dtype=f32)
    labels = rs.randint(0, 1000, size=4096).astype(cupy.int64)
    gloss = cupy.full((4096,), 1.0 / 4096, dtype=f32)
    loss, probs = be.softmax_cross_entropy_fwd(logits, labels)
    t_fwd = t_all = None
    if torch:
        tl, tlab, tg = tview(logits).clone().requires_grad_(True), tview(labels), tview(gloss)
        t_fwd = tt(lambda: torch.nn.functional.cross_entropy(tl, tlab, reduction="none"))
        t_all = tt(lambda: torch.nn.functional.cross_entropy(
            tl, tlab, reduction="none").backward(tg))
    row("softmax-CE fwd 4096x1000", timed(lambda: be.softmax_cross_entropy_fwd(logits, labels),
                                           reps, stream_events=ev),
        logits.nbytes + probs.nbytes + loss.nbytes + labels.nbytes, "GB/s", copy_gbs, t_fwd)
    row("softmax-CE bwd 4096x1000", timed(lambda: be.softmax_cross_entropy_bwd(probs, labels, gloss),
                                           reps, stream_events=ev),
        2 * probs.nbytes + labels.nbytes + gloss.nbytes, "GB/s", copy_gbs)

    def sce_both():
        l_, p_ = be.softmax_cross_entropy_fwd(logits, labels)
        be.softmax_cross_entropy_bwd(p_, labels, gloss)

    row("softmax-CE fwd+bwd 4096x1000", timed(sce_both, reps, stream_events=ev),
        3 * logits.nbytes + probs.nbytes, "GB/s", copy_gbs, t_all)
    del logits, probs

    # conv2d 128x64x56x56 with 64x64x3x3, stride 1, padding 1.
    x = rs.standard_normal((128, 64, 56, 56), dtype=f32)
    w = rs.standard_normal((64, 64, 3, 3), dtype=f32) * 0.05
    b = rs.standard_normal((64,), dtype=f32)
    st, pd = (1, 1), (1, 1)
    y, cols = be.conv2d_fwd(x, w, b, st, pd)
    gy = rs.standard_normal(y.shape, dtype=f32)
    flops = 2 * y.size * w[0].size  # one GEMM's multiply-adds

    def conv_bwd():
        be.conv2d_bwd_data(gy, w, x.shape, st, pd, cols)
        be.conv2d_bwd_weight(gy, x, w.shape, st, pd, cols)
        be.conv2d_bwd_bias(gy)

    def conv_all():
        _, c = be.conv2d_fwd(x, w, b, st, pd)
        be.conv2d_bwd_data(gy, w, x.shape, st, pd, c)
        be.conv2d_bwd_weight(gy, x, w.shape, st, pd, c)
        be.conv2d_bwd_bias(gy)

    t_fwd = t_all = None
    if torch:
        txx = tview(x).clone().requires_grad_(True)
        tw = tview(w).clone().requires_grad_(True)
        tb = tview(b).clone().requires_grad_(True)
        tgy = tview(gy)
        conv = torch.nn.functional.conv2d
        t_fwd = tt(lambda: conv(txx.detach(), tw.detach(), tb.detach(), 1, 1))
        t_all = tt(lambda: torch.autograd.grad(conv(txx, tw, tb, 1, 1), (txx, tw, tb), tgy))
    from cuda_kernels import conv as kconv

    row("  im2col alone (cols write)", timed(lambda: kconv.im2col(x, (3, 3), st, pd), reps,
                                               stream_events=ev),
        x.nbytes + cols.nbytes, "GB/s", copy_gbs)
    row("conv2d fwd 128x64x56x56 k3", timed(lambda: be.conv2d_fwd(x, w, b, st, pd), reps,
                                             stream_events=ev), flops, "TFLOP/s", None, t_fwd)
    row("conv2d bwd (data+weight+bias)", timed(conv_bwd, reps, stream_events=ev),
        2 * flops, "TFLOP/s")
    row("conv2d fwd+bwd", timed(conv_all, reps, stream_events=ev), 3 * flops, "TFLOP/s", None,
        t_all)

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(LINES) + "\n")
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
