"""``gn.backends.cuda``: PyTorch's ``torch.backends.cuda`` questions for gpunet's GPU backend.

``is_built()`` says whether the GPU stack (CuPy and numba-cuda, ``pip install "gpunet[cuda]"``)
is installed; ``gn.cuda.is_available()`` says whether a GPU can run it, as in PyTorch, where a
CUDA build may still find no GPU. ``matmul.allow_tf32`` is accepted (False, PyTorch's default):
gpunet's float32 GEMMs are full float32 whatever it says.

Example:
    >>> gn.backends.cuda.is_built() in (True, False)
    True
    >>> gn.backends.cuda.matmul.allow_tf32
    False
"""
from __future__ import annotations

import importlib.util
import types


def is_built() -> bool:
    """True when CuPy and numba-cuda are installed (found, not imported), whether or not a GPU
    is present; ``gn.cuda.is_available()`` answers that."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("cupy", "numba"))
    except (ImportError, ValueError):  # a broken install counts as not built
        return False


matmul = types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                               allow_bf16_reduced_precision_reduction=True)
