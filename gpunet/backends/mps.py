"""``gn.backends.mps``: PyTorch's questions about Apple's Metal backend, which gpunet has not.

Example:
    >>> gn.backends.mps.is_available(), gn.backends.mps.is_built()
    (False, False)
"""
from __future__ import annotations


def is_available() -> bool:
    """False: gpunet runs on NVIDIA GPUs (``cuda``) or the CPU (``numpy``), never on Metal."""
    return False


def is_built() -> bool:
    """False: gpunet has no Metal (MPS) backend at all."""
    return False
