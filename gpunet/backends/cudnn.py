"""``gn.backends.cudnn``: PyTorch's ``torch.backends.cudnn`` flags, accepted so scripts run unchanged.

gpunet calls no cuDNN: its convolutions, pooling and normalisation are its own kernels (Numba on
the GPU, NumPy on the CPU), so these flags change nothing it computes:

* ``benchmark`` (False), ``benchmark_limit`` (10): there is no per-shape algorithm search;
* ``deterministic`` (False): gpunet's kernels are deterministic already: every sum runs in a
  fixed order, with no floating-point atomics, so a rerun on the same machine, backend and
  thread count (``gn.set_num_threads``) gives the same bits. Noted exceptions: the GEMMs are
  cuBLAS's (reproducible on the same GPU model and CUDA version, cuBLAS's own promise) or
  OpenBLAS's (another BLAS kernel, e.g. ``OPENBLAS_CORETYPE``, may round differently);
* ``enabled`` (True) and ``allow_tf32`` (True): float32 math stays full float32 on every backend.

Example:
    >>> gn.backends.cudnn.benchmark = True       # accepted; gpunet has no algorithm search
    >>> gn.backends.cudnn.deterministic, gn.backends.cudnn.is_available()
    (False, False)
    >>> gn.backends.cudnn.benchmark = False
"""
from __future__ import annotations

import contextlib

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: gpunet never uses cuDNN (as ``torch.backends.cudnn.is_available()`` without it)."""
    return False


def version():
    """None: no cuDNN is loaded (what PyTorch returns where cuDNN is missing)."""
    return None


@contextlib.contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True,
          fp32_precision="none", depthwise_kernel="auto"):
    """Set the flags for a block and restore them after (``torch.backends.cudnn.flags``);
    ``fp32_precision`` and ``depthwise_kernel`` are accepted and ignored.

    Example:
        >>> with gn.backends.cudnn.flags(enabled=True, deterministic=True):
        ...     gn.backends.cudnn.deterministic
        True
        >>> gn.backends.cudnn.deterministic
        False
    """
    module = globals()
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    previous = {name: module[name] for name in names}
    module.update(zip(names, (bool(enabled), bool(benchmark), int(benchmark_limit), bool(deterministic),
                              bool(allow_tf32))))
    try:
        yield
    finally:
        module.update(previous)
