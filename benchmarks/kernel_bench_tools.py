"""The op-independent parts of bench_cuda_kernels.py: timers, references, result checks, rows.

Both of its modes use them: the GPU run (CUDA events, PyTorch on CUDA) and ``--smoke`` (wall
clock plus ``synchronize()``, Numba's CUDA simulator, PyTorch on the CPU).  Nothing here imports
numba or cupy, so ``--smoke`` can still switch the simulator on after importing this module.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

# float32 keeps about 7 significant digits, and a float32 sum of n terms drifts by about
# sqrt(n) units in the last place of its partial sums: ~4e-5 of the result for the 4e5-term
# sums of the GPU run's conv weight and bias gradients.  Each error is judged against its own
# value and against the result's largest value (a value that cancels to ~0 keeps the absolute
# error of its big terms).  A wrong kernel is off by the size of the values themselves.
RTOL = 1e-4
NAME_WIDTH = 46  # "conv2d bwd data+weight+bias 128x64x56x56 k3"


def error_vs_tolerance(got, want) -> float:
    """max |got - want| / (RTOL * (|want| + max |want|)): at most 1 when the results match."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    size = np.abs(want)
    tolerance = RTOL * (size + size.max(initial=0.0)) + np.finfo(np.float32).tiny
    return float(np.max(np.abs(got - want) / tolerance, initial=0.0))  # NaN when got has NaN


class Timer:
    """Median milliseconds of ``fn()`` over ``reps`` runs after ``warmup`` runs.

    ``mark()`` stamps a point in time; ``ms(start, end)`` waits for ``end`` and returns the
    milliseconds between two stamps.
    """

    def __init__(self, mark, ms, reps, warmup):
        self.mark, self.ms, self.reps, self.warmup = mark, ms, reps, warmup

    def __call__(self, fn) -> float:
        for _ in range(self.warmup):
            fn()
        times = []
        for _ in range(self.reps):
            start = self.mark()
            fn()
            times.append(self.ms(start, self.mark()))
        return statistics.median(times)


def event_timer(make_event, elapsed_ms, reps, warmup=3) -> Timer:
    """Timing by CUDA events (CuPy's or PyTorch's) recorded on the current stream."""

    def mark():
        event = make_event()
        event.record()
        return event

    def ms(start, end):
        end.synchronize()
        return elapsed_ms(start, end)

    return Timer(mark, ms, reps, warmup)


def wall_timer(synchronize, reps, warmup=1) -> Timer:
    """Timing by time.perf_counter, waiting for queued work with ``synchronize()`` at each stamp."""

    def mark():
        synchronize()
        return time.perf_counter()

    return Timer(mark, lambda start, end: (end - start) * 1e3, reps, warmup)


class TorchReference:
    """PyTorch's results for gpunet's inputs, and the torch calls to time.

    Each op family returns ``{row: (expected host result(s), torch call to time or None)}``.
    Inputs are viewed with ``torch.from_dlpack`` (CuPy arrays on the GPU, NumPy arrays in
    ``--smoke``).  ReLU and max pooling only select values, so torch's float32 results are
    exact; the softmax-CE and conv results are computed in float64 from the same inputs, so
    no float32 algorithm of cuDNN's (Winograd, FFT, TF32) stands in for the exact answer.
    The timed torch calls are the float32 ones, with torch's defaults.
    """

    def __init__(self, torch, timer, device):
        self.torch, self.timer = torch, timer
        self.name = f"torch {torch.__version__} on the {device}"

    def _view(self, array):
        return self.torch.from_dlpack(array)

    def _host(self, tensor):
        return tensor.detach().cpu().numpy()

    def relu(self, x, gy):
        torch, tx, tgy = self.torch, self._view(x), self._view(gy)
        ty = torch.relu(tx)

        def fwd():
            return torch.relu(tx)

        def bwd():
            return torch.ops.aten.threshold_backward(tgy, ty, 0)

        return {"fwd": (self._host(fwd()), fwd), "bwd": (self._host(bwd()), bwd)}

    def max_pool2d(self, x, gy, kernel, stride, padding):
        torch, tx, tgy = self.torch, self._view(x), self._view(gy)
        k, s, p = list(kernel), list(stride), list(padding)

        def fwd():
            return torch.nn.functional.max_pool2d(tx, k, s, p, return_indices=True)

        ty, indices = fwd()

        def bwd():
            return torch.ops.aten.max_pool2d_with_indices_backward(
                tgy, tx, k, s, p, [1, 1], False, indices)

        return {"fwd": (self._host(ty), fwd), "bwd": (self._host(bwd()), bwd)}

    def softmax_ce(self, logits, labels, gloss):
        torch = self.torch
        tl = self._view(logits).clone().requires_grad_(True)
        tlab, tg = self._view(labels), self._view(gloss)

        def fwd():
            return torch.nn.functional.cross_entropy(tl, tlab, reduction="none")

        def fwd_bwd():
            return torch.autograd.grad(fwd(), tl, tg)[0]

        exact = tl.detach().double().requires_grad_(True)
        exact_loss = torch.nn.functional.cross_entropy(exact, tlab, reduction="none")
        loss = self._host(exact_loss)
        grad = self._host(torch.autograd.grad(exact_loss, exact, tg.double())[0])
        return {"fwd": (loss, fwd), "bwd": (grad, None), "fwd+bwd": ((loss, grad), fwd_bwd)}

    def conv2d(self, x, w, b, gy, stride, padding):
        torch = self.torch
        conv = torch.nn.functional.conv2d
        tx, tw, tb = (self._view(a).clone().requires_grad_(True) for a in (x, w, b))
        tgy = self._view(gy)

        def fwd():
            return conv(tx.detach(), tw.detach(), tb.detach(), stride, padding)

        def fwd_bwd():
            return torch.autograd.grad(conv(tx, tw, tb, stride, padding), (tx, tw, tb), tgy)

        # the expected results in float64: cuDNN's float32 algorithms (Winograd, FFT, TF32 on
        # Ampere and later) differ from the exact answer by more than float32 summation does
        ex, ew, eb = (t.detach().double().requires_grad_(True) for t in (tx, tw, tb))
        exact = conv(ex, ew, eb, stride, padding)
        y = self._host(exact)
        grads = tuple(self._host(g) for g in torch.autograd.grad(exact, (ex, ew, eb), tgy.double()))
        cols = torch.nn.functional.unfold(tx.detach(), tuple(w.shape[2:]), padding=padding,
                                          stride=stride)  # (N, C*kh*kw, Ho*Wo)
        cols = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # gpunet's (C*kh*kw, N*Ho*Wo)
        return {"im2col": (self._host(cols), None), "fwd": (y, fwd), "bwd": (grads, None),
                "fwd+bwd": ((y, *grads), fwd_bwd)}


class NumpyReference:
    """gpunet's NumPy backend on host copies of the inputs: the check where torch is missing.

    Returns the same ``{row: (expected, None)}`` as TorchReference, with nothing to time.
    """

    timer = None
    name = "gpunet's numpy backend"

    def __init__(self, to_host):
        from gpunet.backends import backend

        self.np_be, self.host = backend("numpy"), to_host

    def relu(self, x, gy):
        x, gy = self.host(x), self.host(gy)
        y = self.np_be.relu_fwd(x)
        return {"fwd": (y, None), "bwd": (self.np_be.relu_bwd(gy, y), None)}

    def max_pool2d(self, x, gy, kernel, stride, padding):
        x, gy = self.host(x), self.host(gy)
        y, saved = self.np_be.max_pool2d_fwd(x, kernel, stride, padding)
        gx = self.np_be.max_pool2d_bwd(gy, saved, x.shape, kernel, stride, padding)
        return {"fwd": (y, None), "bwd": (gx, None)}

    def softmax_ce(self, logits, labels, gloss):
        labels = self.host(labels)
        loss, probs, _ = self.np_be.softmax_cross_entropy_fwd(self.host(logits), labels)
        grad = self.np_be.softmax_cross_entropy_bwd(probs, labels, self.host(gloss))
        return {"fwd": (loss, None), "bwd": (grad, None), "fwd+bwd": ((loss, grad), None)}

    def conv2d(self, x, w, b, gy, stride, padding):
        x, w, b, gy = (self.host(a) for a in (x, w, b, gy))
        be = self.np_be
        y, cols = be.conv2d_fwd(x, w, b, stride, padding)  # saved = its (N, C*kh*kw, Ho*Wo) im2col
        grads = (be.conv2d_bwd_data(gy, w, x.shape, stride, padding, cols),
                 be.conv2d_bwd_weight(gy, x, w.shape, stride, padding, cols),
                 be.conv2d_bwd_bias(gy))
        cols_cuda_layout = cols.transpose(1, 0, 2).reshape(cols.shape[1], -1)  # (Q, N*Ho*Wo)
        return {"im2col": (cols_cuda_layout, None), "fwd": (y, None), "bwd": (grads, None),
                "fwd+bwd": ((y, *grads), None)}


class Bench:
    """What every row builder shares: the backend under test, its timer, reference and report."""

    def __init__(self, be, timer, reference):
        self.be, self.timer, self.reference = be, timer, reference
        be.seed(0)
        self.lines: list[str] = []
        self.failures: list[str] = []
        self.copy_gbs = None

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def randn(self, shape, scale=1.0):
        return self.be.randn(shape, np.float32) * np.float32(scale)

    def labels(self, n, classes):
        return (self.be.rand((n,), np.float64) * classes).astype(np.int64)

    def copy_bandwidth(self, n_floats) -> None:
        """Time ``xp.copyto`` (read + write) of ``n_floats`` float32: the bandwidth rows compare to.

        CuPy on the GPU (device memory), NumPy in the simulator (host memory).
        """
        xp = self.be.xp
        where = "host" if getattr(self.be, "simulated", False) else "device"
        src = xp.ones(n_floats, dtype=np.float32)
        dst = xp.empty_like(src)
        ms = self.timer(lambda: xp.copyto(dst, src))
        self.copy_gbs = 2 * src.nbytes / (ms * 1e-3) / 1e9
        name = f"{where} copy ({xp.__name__}.copyto, {src.nbytes // 2**20} MiB)"
        self.say(f"{name:<{NAME_WIDTH}} {ms:9.3f} ms  {self.copy_gbs:9.1f} GB/s")

    def row(self, name, fn, amount, unit, expected) -> None:
        """Check ``fn()`` against the expected result(s), time it and torch's call, print a line."""
        want, torch_call = expected
        got = fn()
        pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
        error = max(error_vs_tolerance(self.be.to_host(g), w) for g, w in pairs)
        ok = error <= 1.0  # False for NaN
        ms = self.timer(fn)
        rate = amount / (ms * 1e-3) / (1e12 if unit == "TFLOP/s" else 1e9)
        text = f"{name:<{NAME_WIDTH}} {ms:9.3f} ms  {rate:9.1f} {unit:<7}"
        text += f"  {100 * rate / self.copy_gbs:5.1f}% of copy" if unit == "GB/s" else " " * 17
        text += f"  {'match' if ok else 'MISMATCH':<8}"
        if torch_call is not None and self.reference.timer is not None:
            torch_ms = self.reference.timer(torch_call)
            text += f"  torch {torch_ms:9.3f} ms  (gpunet/torch {ms / torch_ms:5.2f}x)"
        if not ok:
            text += f"  (error {error:.3g}x the float32 tolerance vs {self.reference.name})"
            self.failures.append(name)
        self.say(text.rstrip())
