"""Tensors made from outside data: ``gn.tensor`` (always a copy, as ``torch.tensor``), and
``from_numpy`` and ``from_dlpack`` (sharing the array's memory)."""
from __future__ import annotations

import numpy as np

from . import backends
from .tensor import Tensor


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False, *,
           backend=None) -> Tensor:
    """Make a Tensor from data (a NumPy array, list, number or Tensor), always a copy, as
    ``torch.tensor``; ``device=`` ("cpu", "cuda", a ``gn.device``) or ``backend=`` places it.

    Example:
        >>> x = gn.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
        >>> gn.tensor([1, 2], dtype=gn.float64, device="cpu").dtype
        dtype('float64')
    """
    if isinstance(dtype, bool):  # the old positional order: tensor(data, requires_grad)
        raise TypeError("tensor(): the second argument is dtype, as in PyTorch; pass "
                        "requires_grad=True by keyword")
    return Tensor(data, requires_grad=requires_grad, backend=device if backend is None else backend,
                  dtype=dtype)


def from_numpy(array) -> Tensor:
    """A NumPy-backend tensor sharing ``array``'s memory, as ``torch.from_numpy``.

    Example:
        >>> a = np.zeros(3, np.float32)
        >>> t = gn.from_numpy(a)
        >>> a[0] = 5
        >>> t.tolist()
        [5.0, 0.0, 0.0]
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: dtype {array.dtype} is not supported; use float, int or bool")
    t = Tensor._wrap(array, backends.backend("numpy"))
    t._shared = True
    return t


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with any DLPack array (PyTorch, JAX, CuPy, NumPy…), zero-copy.

    CPU arrays land on the NumPy backend, CUDA arrays on the cuda backend.

    Example:
        >>> t = gn.from_dlpack(torch.arange(3.0))     # doctest: +SKIP
    """
    if not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: expected an array with __dlpack__ (a PyTorch, JAX, CuPy or "
                        f"NumPy array), got {type(obj).__name__}")
    device_type = int(obj.__dlpack_device__()[0])
    if device_type in (1, 3):  # kDLCPU, kDLCUDAHost
        t = Tensor._wrap(np.from_dlpack(obj), backends.backend("numpy"))
        t._shared = True
        return t
    if device_type in (2, 13):  # kDLCUDA, kDLCUDAManaged
        be = backends.backend("cuda")
        return Tensor._wrap(be.xp.from_dlpack(obj), be)
    raise ValueError(f"from_dlpack: DLPack device type {device_type} is neither the CPU nor CUDA")
