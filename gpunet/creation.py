"""Making tensors the way PyTorch does: ``gn.zeros(2, 3)``, ``gn.arange(5)``, ``gn.randn(4, 4)``…

Signatures and defaults follow PyTorch: sizes as separate ints or one tuple, float32 by
default, ``device=`` names the backend ("cpu" is the NumPy backend, "cuda" the GPU),
``requires_grad=`` as in ``torch.zeros``.  ``rand``/``randn`` draw from the backend's seeded
generator (``gn.manual_seed``).

Example:
    >>> gn.zeros(2, 3).shape, gn.ones((2,)).tolist(), gn.arange(3).dtype
    (gpunet.Size([2, 3]), [1.0, 1.0], dtype('int64'))
"""
from __future__ import annotations

import numpy as np

from . import backends
from .function import Function
from .tensor import DEFAULT_FLOAT, Tensor, as_tensor_like


def _size(size, name):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in size):
        raise ValueError(f"{name}: sizes must be non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def _make(host, device, requires_grad):
    be = backends.resolve(device)
    return Tensor._wrap(be.asarray(host), be, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros of ``size`` (float32 by default)."""
    return _make(np.zeros(_size(size, "zeros"), dtype or DEFAULT_FLOAT), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones of ``size`` (float32 by default)."""
    return _make(np.ones(_size(size, "ones"), dtype or DEFAULT_FLOAT), device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``."""
    dtype = dtype or (DEFAULT_FLOAT if isinstance(fill_value, float) else None)
    return _make(np.full(_size((size,), "full"), fill_value, dtype), device, requires_grad)


def _like(t, host, dtype, device, requires_grad):
    return _make(host.astype(dtype or t.dtype), t.backend if device is None else device, requires_grad)


def zeros_like(input, dtype=None, requires_grad=False, *, device=None, memory_format=None) -> Tensor:
    """Zeros with ``input``'s shape, dtype and backend (unless ``dtype``/``device`` say otherwise)."""
    return _like(input, np.zeros(input.shape), dtype, device, requires_grad)


def ones_like(input, dtype=None, requires_grad=False, *, device=None, memory_format=None) -> Tensor:
    """Ones with ``input``'s shape, dtype and backend."""
    return _like(input, np.ones(input.shape), dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    """``fill_value`` with ``input``'s shape, dtype and backend.

    Example:
        >>> gn.full_like(gn.zeros(2), 7).tolist()
        [7.0, 7.0]
    """
    return _like(input, np.full(input.shape, fill_value), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    """A tensor of ``size`` whose values are not set (PyTorch's ``empty``; gpunet fills zeros)."""
    return _make(np.zeros(_size(size, "empty"), dtype or DEFAULT_FLOAT), device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    """An unset tensor with ``input``'s shape, dtype and backend (gpunet fills zeros)."""
    return _like(input, np.zeros(input.shape), dtype, device, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    """U[0, 1) samples with ``input``'s shape, dtype and backend."""
    return rand(*input.shape, dtype=dtype or input.dtype, device=device or input.backend,
                requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    """Standard-normal samples with ``input``'s shape, dtype and backend.

    Example:
        >>> gn.randn_like(gn.zeros(2, 3, dtype=gn.float64)).dtype
        dtype('float64')
    """
    return randn(*input.shape, dtype=dtype or input.dtype, device=device or input.backend,
                 requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``[start, end)`` by ``step``; int64 when all three are ints, else float32 (as PyTorch)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_FLOAT
    return _make(np.arange(start, end, step, dtype=dtype), device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1) from the backend's seeded generator."""
    be = backends.resolve(device)
    data = be.rand(_size(size, "rand"), np.dtype(dtype or DEFAULT_FLOAT))
    return Tensor._wrap(data, be, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard-normal samples from the backend's seeded generator."""
    be = backends.resolve(device)
    data = be.randn(_size(size, "randn"), np.dtype(dtype or DEFAULT_FLOAT))
    return Tensor._wrap(data, be, requires_grad)


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers drawn uniformly from ``[low, high)``: ``randint(high, size)`` or
    ``randint(low, high, size)``, int64 by default, as ``torch.randint``.

    Example:
        >>> gn.manual_seed(0)
        >>> r = gn.randint(0, 10, (3,))
        >>> r.dtype, r.shape, 0 <= r.min().item() and r.max().item() < 10
        (dtype('int64'), gpunet.Size([3]), True)
    """
    from .random import host_rng

    if size is None and args and isinstance(args[-1], (tuple, list)):
        args, size = args[:-1], args[-1]
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint(): expected randint(high, size) or randint(low, high, size) with size "
                        f"a tuple, got args={args!r}, size={size!r}")
    low, high = (0, args[0]) if len(args) == 1 else args
    if high <= low:
        raise ValueError(f"randint(): high must be greater than low, got low={low}, high={high}")
    shape = _size((size,), "randint")
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"randint(): generator must be a numpy.random.Generator or None (as DataLoader's), "
                        f"got {type(generator).__name__}")
    rng = generator if generator is not None else host_rng()
    host = rng.integers(int(low), int(high), size=shape).astype(np.dtype(dtype) if dtype else np.int64)
    return _make(host, device, requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False,
                 memory_format=None) -> Tensor:
    """``randint`` with ``input``'s shape, dtype and backend (``randint_like(x, high)`` or
    ``randint_like(x, low, high)``)."""
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=input.backend if device is None else device, requires_grad=requires_grad)


def _legacy_constructor(name, dtype):
    def constructor(*args, device=None):
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):  # LongTensor([1, 2]): data
            return _make(np.asarray(args[0], dtype), device, False)
        return _make(np.zeros(_size(args, name), dtype), device, False)  # LongTensor(3, 4): a size

    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = (f"PyTorch's legacy ``torch.{name}(*size)`` or ``torch.{name}(data)``: a {dtype} "
                           "tensor (gpunet fills a size with zeros).\n\n    Example:\n        >>> "
                           f"gn.{name}(2, 3).shape\n        gpunet.Size([2, 3])\n")
    return constructor


FloatTensor = _legacy_constructor("FloatTensor", np.float32)
DoubleTensor = _legacy_constructor("DoubleTensor", np.float64)
LongTensor = _legacy_constructor("LongTensor", np.int64)
IntTensor = _legacy_constructor("IntTensor", np.int32)
ByteTensor = _legacy_constructor("ByteTensor", np.uint8)
BoolTensor = _legacy_constructor("BoolTensor", np.bool_)


class Where(Function):
    """``x`` where ``condition`` holds, else ``y``; each gradient flows to the side it took."""

    @staticmethod
    def forward(ctx, x, y, condition):
        xp = ctx.backend.xp
        ctx.save_for_backward(condition)
        return xp.where(condition, x, y)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        (cond,) = ctx.saved
        zero = xp.zeros((), dtype=gy.dtype)
        return xp.where(cond, gy, zero), xp.where(cond, zero, gy)


def where(condition, x, y) -> Tensor:
    """Elementwise choice between ``x`` and ``y`` (tensors or numbers), as ``torch.where``.

    Example:
        >>> t = gn.tensor([-1.0, 2.0])
        >>> gn.where(t > 0, t, 0.0).tolist()
        [0.0, 2.0]
    """
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a boolean Tensor, got {type(condition).__name__}")
    ref = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else condition
    if not isinstance(x, Tensor):
        x = as_tensor_like(x, ref if ref.dtype.kind == "f" else zeros(1, device=ref.backend))
    if not isinstance(y, Tensor):
        y = as_tensor_like(y, x)
    return Where.apply(x, y, condition=condition._data.astype(bool))
