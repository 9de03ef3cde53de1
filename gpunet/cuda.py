"""``gn.cuda``: PyTorch's ``torch.cuda`` questions, answered for gpunet's GPU backend.

``is_available()`` is True only where the ``cuda`` backend runs on a real GPU (Numba's
simulator does not count, as ``auto`` never picks it), so the usual
``device = "cuda" if gn.cuda.is_available() else "cpu"`` chooses what ``auto`` chooses.

Example:
    >>> dev = gn.device("cuda" if gn.cuda.is_available() else "cpu")
    >>> gn.zeros(2, device=dev).device == dev or gn.cuda.is_available()
    True
"""
from __future__ import annotations

from . import backends as _backends
from . import random as _random


def is_available() -> bool:
    """True when the ``cuda`` backend can run here on a real GPU."""
    if _backends.simulator_on():
        return False
    return _backends.cuda_unavailable_reason() is None


def device_count() -> int:
    """The number of GPUs CuPy sees (0 where the ``cuda`` backend cannot run)."""
    if not is_available():
        return 0
    return _backends.backend("cuda").device_count()


def current_device() -> int:
    """The index of the current GPU (CuPy's current device)."""
    if not is_available():
        raise RuntimeError("gn.cuda.current_device(): no GPU here "
                           f"({_backends.cuda_unavailable_reason() or 'the simulator is on'})")
    return _backends.backend("cuda").current_device()


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op where the cuda backend is not in use)."""
    if is_available():
        _backends.backend("cuda").synchronize()


def manual_seed(seed: int) -> None:
    """Seed every backend's generators, as ``gn.manual_seed`` does (PyTorch seeds the GPU's)."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed
