"""The ``cuda`` backend: CuPy arrays, hand-written Numba kernels from ``cuda_kernels``, cuBLAS GEMMs.

Imported lazily by ``gpunet.backends`` (never at ``import gpunet``).  Two modes:

* a real NVIDIA GPU: ``xp`` is CuPy (its memory pool), kernels launch on CuPy's current stream;
* ``NUMBA_ENABLE_CUDASIM=1``: the same kernels run in Numba's CUDA simulator and ``xp`` is
  NumPy.  This is how CI proves the kernels without a GPU (slow: keep shapes tiny).

Example:
    >>> import gpunet as gn
    >>> gn.set_backend("cuda")              # doctest: +SKIP
    >>> gn.get_backend().name               # doctest: +SKIP
    'cuda'
"""
from __future__ import annotations

import os

import numpy as np

from .base import Backend

_INSTALL = 'pip install "gpunet[cuda]"'
_FLAG_SLOTS = 16
_BAD_LABEL = "softmax_cross_entropy: a label was outside [0, number of classes); the loss of that row is NaN"


def _simulator_requested() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def unavailable_reason() -> str | None:
    """None when the cuda backend can run here, else what is missing and how to fix it.

    Never raises.  Example:
        >>> unavailable_reason() is None or isinstance(unavailable_reason(), str)
        True
    """
    try:
        return _unavailable_reason()
    except Exception as exc:  # a broken driver or install must not break import gpunet
        return f"checking for a GPU failed ({type(exc).__name__}: {exc})"


def _unavailable_reason() -> str | None:
    if _simulator_requested():
        try:
            from numba import cuda  # noqa: F401  (the simulator needs no GPU and no CuPy)
        except ImportError as exc:
            return (f"NUMBA_ENABLE_CUDASIM=1 is set but numba-cuda cannot be imported ({exc}); "
                    f"{_INSTALL}")
        return None
    try:
        import cupy
    except ImportError:
        return f"CuPy is not installed; {_INSTALL} (CUDA 12) on a machine with an NVIDIA GPU"
    except Exception as exc:
        return f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall with {_INSTALL}"
    if not cupy.is_available():
        return ("CuPy is installed but sees no usable NVIDIA GPU (no device, or no/too old NVIDIA "
                "driver: check `nvidia-smi`)")
    try:
        from numba import cuda
    except ImportError as exc:
        return f"numba-cuda is not installed or broken ({exc}); {_INSTALL}"
    if not cuda.is_available():
        return ("Numba cannot use the GPU that CuPy sees (check the driver and that numba-cuda "
                f"matches CUDA 12: {_INSTALL})")
    return None


class CudaBackend(Backend):
    """GPU backend (or its simulator twin): every primitive is a ``cuda_kernels`` launch.

    Example:
        >>> be = CudaBackend()                             # doctest: +SKIP
        >>> y = be.relu_fwd(be.asarray([-1.0, 2.0]))       # doctest: +SKIP
    """

    name = "cuda"
    checks_labels_on_device = True

    def __init__(self, seed=None):
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"the 'cuda' backend cannot run here: {reason}")
        from cuda_kernels import _launch, activation, checks, conv, optim, pooling, random, softmax_ce

        self.simulated = _launch.SIMULATOR
        self.xp = _launch.xp
        # Errors found on the device: slot i is set to 1 by a kernel, and _flag_messages[i]
        # is raised at the next value read.  Slot 0 belongs to the softmax-CE kernel.
        self._flags = self.xp.zeros(_FLAG_SLOTS, dtype=np.int32)
        self._flag_messages = [_BAD_LABEL]
        self._k_act, self._k_checks, self._k_conv, self._k_optim = activation, checks, conv, optim
        self._k_pool, self._k_random, self._k_sce = pooling, random, softmax_ce
        self.seed(seed)

    # --- arrays and transfers -------------------------------------------------
    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    def to_host(self, array):
        if self.simulated or isinstance(array, np.ndarray):
            host = np.asarray(array)
        else:
            host = self.xp.asnumpy(array)  # waits for the stream: a value is being read
        self.check_device_errors()
        return host

    def synchronize(self) -> None:
        if not self.simulated:
            self.xp.cuda.get_current_stream().synchronize()
        self.check_device_errors()

    def check_device_errors(self) -> None:
        """Raise for errors that kernels flagged since the last check (a value is read anyway).

        Checking inputs on the host would synchronise every training step; kernels flag them
        instead (see ``check_range``), and the error surfaces at the next ``.item()``,
        ``.numpy()`` or synchronise.  The flags are cleared, so the next call starts clean.
        """
        flags = np.array(self._flags) if self.simulated else self._flags.get()  # a copy
        if flags.any():
            self._flags[...] = 0
            raise ValueError("; ".join(self._flag_messages[i] for i in np.flatnonzero(flags)) +
                             " (checked on the device, reported at the first value read after it)")

    def check_range(self, array, lo, hi, what, hint=""):
        """Flag values outside ``[lo, hi]`` on the device; raised at the next value read."""
        message = f"{what}, got a value outside it{hint}"
        if message not in self._flag_messages:
            if len(self._flag_messages) == _FLAG_SLOTS:  # out of slots: check now, on the host
                return super().check_range(array, lo, hi, what, hint)
            self._flag_messages.append(message)
        slot = self._flag_messages.index(message)
        self._k_checks.flag_outside_range(array, lo, hi, self._flags, slot)

    # --- random numbers -------------------------------------------------------
    # A counter-based generator (cuda_kernels.random): its state is (seed, offset), so a
    # checkpoint restores it exactly, on a GPU as in the simulator.
    def seed(self, seed):
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        self._seed, self._offset = int(seed), 0

    def rng_state(self):
        return {"seed": self._seed, "offset": self._offset}

    def set_rng_state(self, state) -> None:
        if state is not None:
            self._seed, self._offset = int(state["seed"]), int(state["offset"])

    def _draw(self, sample, shape, dtype, counters_per_item):
        out = sample(shape, dtype, self._seed, self._offset)
        self._offset += counters_per_item * out.size
        return out

    def rand(self, shape, dtype):
        return self._draw(self._k_random.uniform, shape, dtype, 1)

    def randn(self, shape, dtype):
        return self._draw(self._k_random.normal, shape, dtype, 2)

    # --- conv2d ---------------------------------------------------------------
    def conv2d_fwd(self, x, w, b, stride, padding):
        k = w.shape[0]
        cols = self._k_conv.im2col(x, w.shape[2:], stride, padding)  # (Q, N*P)
        ho, wo = self._k_conv.out_size(x.shape, w.shape[2:], stride, padding)
        yt = self.xp.matmul(w.reshape(k, -1).astype(cols.dtype, copy=False), cols)  # (K, N*P)
        y = self._k_conv.bias_add(yt, b, x.shape[0])  # (N, K, P), bias added
        return y.reshape(x.shape[0], k, ho, wo), cols

    def _gy_t(self, gy):
        n, k = gy.shape[:2]
        return self.xp.ascontiguousarray(gy.reshape(n, k, -1).transpose(1, 0, 2)).reshape(k, -1)

    def conv2d_bwd_data(self, gy, w, x_shape, stride, padding, saved):
        k = w.shape[0]
        gcols = self.xp.matmul(w.reshape(k, -1).T, self._gy_t(gy))  # (Q, N*P)
        return self._k_conv.col2im(gcols, x_shape, w.shape[2:], stride, padding)

    def conv2d_bwd_weight(self, gy, x, w_shape, stride, padding, saved):
        cols = saved if saved is not None else self._k_conv.im2col(x, w_shape[2:], stride, padding)
        gw = self.xp.matmul(self._gy_t(gy), cols.T)  # (K, Q); cuBLAS reads cols transposed
        return gw.reshape(w_shape)

    def conv2d_bwd_bias(self, gy):
        return self._k_conv.bias_grad(gy)

    # --- pooling --------------------------------------------------------------
    def max_pool2d_fwd(self, x, kernel, stride, padding):
        return self._k_pool.max_pool2d_fwd(x, kernel, stride, padding)

    def max_pool2d_bwd(self, gy, argmax, x_shape, kernel, stride, padding):
        return self._k_pool.max_pool2d_bwd(gy, argmax, x_shape, kernel, stride, padding)

    def avg_pool2d_fwd(self, x, kernel, stride, padding):
        return self._k_pool.avg_pool2d_fwd(x, kernel, stride, padding)

    def avg_pool2d_bwd(self, gy, x_shape, kernel, stride, padding):
        return self._k_pool.avg_pool2d_bwd(gy, x_shape, kernel, stride, padding)

    # --- activations ----------------------------------------------------------
    def relu_fwd(self, x):
        return self._k_act.relu_fwd(x)

    def relu_bwd(self, gy, y):
        return self._k_act.relu_bwd(gy, y)

    # --- fused softmax cross-entropy -----------------------------------------
    def softmax_cross_entropy_fwd(self, logits, labels):
        return self._k_sce.softmax_ce_fwd(logits, labels, self._flags[:1])

    def softmax_cross_entropy_bwd(self, probs, labels, gloss):
        return self._k_sce.softmax_ce_bwd(probs, labels, gloss)

    # --- optimiser updates (in place) ----------------------------------------
    def sgd_update(self, param, grad, buf, lr, momentum, dampening, weight_decay,
                   nesterov, first_step):
        self._k_optim.sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay,
                                 nesterov, first_step)

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                    step, decoupled):
        self._k_optim.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                                  step, decoupled)
