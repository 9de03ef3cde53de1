"""``gn.accelerator``: PyTorch's device-agnostic questions (``torch.accelerator``).

The only accelerator gpunet drives is an NVIDIA GPU through the ``cuda`` backend.

Example:
    >>> dev = gn.accelerator.current_accelerator() if gn.accelerator.is_available() else gn.device("cpu")
    >>> dev.type in ("cpu", "cuda")
    True
"""
from __future__ import annotations

from . import cuda as _cuda
from .backends.device import device


def is_available() -> bool:
    """True when a GPU is usable (``gn.cuda.is_available()``)."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """``device("cuda")`` where a GPU is usable, else None (as PyTorch with no accelerator)."""
    return device("cuda") if _cuda.is_available() else None


def device_count() -> int:
    """The number of GPUs (0 without one)."""
    return _cuda.device_count()
