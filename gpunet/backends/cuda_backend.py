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

import contextlib
import importlib

import numpy as np

from . import primitives
from .base import Backend, simulator_on

_INSTALL = 'pip install "gpunet[cuda]"'
_BAD_LABEL = "softmax_cross_entropy: a label was outside [0, number of classes); the loss of that row is NaN"


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
    from . import cuda_versions as cv

    either = 'pip install "gpunet[cuda12]" or "gpunet[cuda13]"'
    if simulator_on():
        try:
            from numba import cuda  # noqa: F401  (the simulator needs no GPU and no CuPy)
        except ImportError as exc:
            return (f"NUMBA_ENABLE_CUDASIM=1 is set but numba-cuda cannot be imported ({exc}); "
                    f"{_INSTALL}")
        return None
    try:
        import cupy
    except ImportError as exc:
        mismatch = cv.cupy_import_error_reason(exc)
        if mismatch:
            return mismatch
        return (f"CuPy is not installed; {either}, the one matching `nvidia-smi`'s \"CUDA "
                f"Version\" ({_INSTALL} is CUDA 12), on a machine with an NVIDIA GPU")
    except Exception as exc:
        mismatch = cv.cupy_import_error_reason(exc)
        if mismatch:
            return mismatch
        return f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall with {_INSTALL}"
    if not cupy.is_available():
        mismatch = cv.cupy_unusable_reason(cupy)
        if mismatch:
            return mismatch
        return ("CuPy is installed but sees no usable NVIDIA GPU (no device, or no/too old NVIDIA "
                "driver: check `nvidia-smi`)")
    try:
        from numba import cuda
    except ImportError as exc:
        return f"numba-cuda is not installed or broken ({exc}); {_INSTALL}"
    if not cuda.is_available():
        try:
            driver = int(cupy.cuda.runtime.driverGetVersion())
        except Exception:
            driver = 0
        mismatch = cv.numba_bindings_mismatch(cv.installed_version("cuda-bindings"), driver)
        if mismatch:
            return mismatch
        return ("Numba cannot use the GPU that CuPy sees (check the driver and that numba-cuda's "
                f"CUDA major matches the driver's: {either})")
    return nvvm_missing_reason()


def nvvm_missing_reason() -> str | None:
    """None when numba-cuda can load libNVVM, which compiles every kernel; else why, and the fix.

    Without it the GPU and CuPy work but the first kernel launch fails, so the backend counts as
    unavailable.  Example:
        >>> nvvm_missing_reason() is None or "libNVVM" in nvvm_missing_reason()
        True
    """
    try:
        nvvm = importlib.import_module("numba.cuda.cudadrv.nvvm")
        nvvm.NVVM().get_version()
    except Exception as exc:
        return (f"numba-cuda cannot load libNVVM, so no kernel can be compiled ({type(exc).__name__}: "
                f"{exc}); install it with the CUDA toolkit's pip wheels (pip install \"numba-cuda[cu13]\" "
                f"or [cu12], matching the driver) or set CUDA_HOME to a CUDA toolkit that has nvvm/")
    return None


class CudaBackend(Backend):
    """GPU backend (or its simulator twin): the primitives of ``primitives.py`` bound from
    ``cuda_kernels/<family>.py`` when the backend is made (importing numba then, not at import).

    Example:
        >>> be = CudaBackend()                             # doctest: +SKIP
        >>> y = be.relu_fwd(be.asarray([-1.0, 2.0]))       # doctest: +SKIP
    """

    name = "cuda"
    checks_labels_on_device = True
    reads_are_free = False

    def __init__(self, seed=None):
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"the 'cuda' backend cannot run here: {reason}")
        from cuda_kernels import _launch, checks, random

        self.simulated = _launch.SIMULATOR
        self.xp = _launch.xp
        # Errors found on the device: slot i of checks.device_flags() is set to 1 by a kernel,
        # and _flag_messages[i] is raised at the next value read (slot 0: the softmax-CE kernel).
        self._flag_messages = [_BAD_LABEL]
        # allocated now, never inside a step
        checks.device_flags(), checks.reduction_ticket(), checks.split_tickets(0)
        self._k_checks, self.random_kernels = checks, random
        self._launch = self.launcher = _launch  # launcher: launch and gemm, which the profiler counts
        primitives.bind(self, primitives.kernel_modules("cuda_kernels", primitives.FAMILIES))
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

    def errstate(self, **settings):
        return np.errstate(**settings) if self.simulated else contextlib.nullcontext()

    def timer(self):
        if self.simulated:
            return None
        return _EventTimer(self.xp)

    def device_count(self) -> int:
        """GPUs CuPy sees (1 in the simulator, which simulates one)."""
        return 1 if self.simulated else int(self.xp.cuda.runtime.getDeviceCount())

    def current_device(self) -> int:
        """CuPy's current GPU (0 in the simulator)."""
        return 0 if self.simulated else int(self.xp.cuda.runtime.getDevice())

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
        flags = self._k_checks.read_and_clear_flags()
        if flags.any():
            raise ValueError("; ".join(self._flag_messages[i] for i in np.flatnonzero(flags)) +
                             " (checked on the device, reported at the first value read after it)")

    def check_range(self, array, lo, hi, what, hint=""):
        """Flag values outside ``[lo, hi]`` on the device; raised at the next value read."""
        message = f"{what}, got a value outside it{hint}"
        if message not in self._flag_messages:
            if len(self._flag_messages) == self._k_checks.FLAG_SLOTS:  # out of slots: check now, on the host
                return super().check_range(array, lo, hi, what, hint)
            self._flag_messages.append(message)
        slot = self._flag_messages.index(message)
        self._k_checks.flag_outside_range(array, lo, hi, self._k_checks.device_flags(), slot)

    def erf(self, array):
        if self.simulated:
            return super().erf(array)
        from cupyx.scipy.special import erf

        return erf(array)


class _EventTimer:
    """Two CUDA events on the current stream: ``start()``, ``stop()``, then ``seconds()``
    (which waits for the stop event)."""

    def __init__(self, cupy):
        self._cupy = cupy
        self._start, self._end = cupy.cuda.Event(), cupy.cuda.Event()

    def start(self):
        self._start.record()

    def stop(self):
        self._end.record()

    def seconds(self) -> float:
        self._end.synchronize()
        return self._cupy.cuda.get_elapsed_time(self._start, self._end) / 1e3
