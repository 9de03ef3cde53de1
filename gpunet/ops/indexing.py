"""Ops PyTorch users reach for by name: values along a dim, casts, copies, square roots, powers.

Example:
    >>> t = gn.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    >>> values, indices = t.max(1)
    >>> values.tolist(), indices.tolist()
    ([5.0, 7.0], [1, 0])
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..function import Function
from .._arg_checks import _tensor
from ..tensor import Tensor

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])  # torch.return_types.max


class TakeAlongDim(Function):
    """``a`` at ``index`` (one per slice) along ``dim``: the values of ``max(dim)``/``min(dim)``.

    The gradient goes to the indexed element only, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, a, index, dim, keepdim):
        xp = ctx.backend.xp
        ctx.dim, ctx.keepdim, ctx.shape = dim, keepdim, a.shape
        ctx.save_for_backward(index)
        y = xp.take_along_axis(a, xp.expand_dims(index, dim), axis=dim)
        return y if keepdim else xp.squeeze(y, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        (index,) = ctx.saved
        g = gy if ctx.keepdim else xp.expand_dims(gy, ctx.dim)
        where = [1] * len(ctx.shape)
        where[ctx.dim] = ctx.shape[ctx.dim]
        hit = xp.arange(ctx.shape[ctx.dim]).reshape(where) == xp.expand_dims(index, ctx.dim)
        return (xp.where(hit, g, xp.zeros((), dtype=gy.dtype)),)


class Cast(Function):
    """``a`` as another float dtype, differentiable (``t.float()``, ``t.double()``)."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, gy):
        return (gy.astype(ctx.dtype),)


class Clone(Function):
    """A copy that stays in the graph (``t.clone()``)."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, gy):
        return (gy,)


# --- the functions users call (gpunet.functional re-exports them) ---------------
def one_hot(labels, num_classes=-1):
    """(…,) integer class ids -> (…, num_classes) int64 one-hot, as ``F.one_hot``.

    Example:
        >>> F.one_hot(gn.tensor([0, 2]), 3).tolist()
        [[1, 0, 0], [0, 0, 1]]
    """
    labels = _tensor("labels", labels, float_=False)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    host = labels.numpy()
    n = int(host.max()) + 1 if num_classes == -1 and host.size else int(num_classes)
    if host.size and (host.min() < 0 or host.max() >= n):
        raise ValueError(f"one_hot: labels must be in [0, {n}), got values in "
                         f"[{host.min()}, {host.max()}]")
    out = (host[..., None] == np.arange(max(n, 0))).astype(np.int64)
    return Tensor(out, backend=labels.backend)


class Gather(Function):
    """``out[..., i, ...] = a[..., index[..., i, ...], ...]`` along ``dim`` (``torch.gather``);
    the gradient is scattered back, summing repeated indices."""

    @staticmethod
    def forward(ctx, a, index, dim):
        xp = ctx.backend.xp
        ctx.shape, ctx.dim, ctx.index = a.shape, dim, index
        part = a[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))]
        return xp.take_along_axis(part, index, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        g = xp.zeros(ctx.shape, dtype=gy.dtype)
        nd = len(ctx.index.shape)
        where = [ctx.index if j == ctx.dim else xp.arange(n).reshape([-1 if k == j else 1 for k in range(nd)])
                 for j, n in enumerate(ctx.index.shape)]
        xp.add.at(g, tuple(where), gy)
        return (g,)


def _int_index(name, index, ndim=None):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        got = index.dtype if isinstance(index, Tensor) else type(index).__name__
        raise RuntimeError(f"{name}(): Expected dtype int64 for index, got {got}")
    if ndim is not None and index.ndim != ndim:
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as "
                           f"input tensor ({index.ndim} against {ndim})")
    return index._data.astype(np.int64, copy=False)


def gather(input, dim, index, *, sparse_grad=False):
    """Values of ``input`` picked by ``index`` along ``dim``, as ``torch.gather``.

    Example:
        >>> gn.gather(gn.tensor([[1, 2], [3, 4]]), 1, gn.tensor([[0, 0], [1, 0]])).tolist()
        [[1, 1], [4, 3]]
    """
    from .math import dim_index

    d = dim_index(int(dim), input.ndim)
    idx = _int_index("gather", index, input.ndim)
    for k, (n, m) in enumerate(zip(index.shape, input.shape)):
        if k != d and n > m:
            raise RuntimeError(f"gather(): Size does not match at dimension {k} expected index "
                               f"{list(index.shape)} to be smaller than self {list(input.shape)} "
                               f"apart from dimension {d}")
    try:  # PyTorch: no negative indices; RuntimeError (on the cuda backend: at the next read)
        input.backend.check_range(idx, 0, input.shape[d] - 1,
                                  f"gather(): index out of range for dimension {d} of size {input.shape[d]}")
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    return Gather.apply(input, dim=d, index=idx)


def _scalar_as(name, value, dtype):
    """The number ``value`` as a 0-d array of ``dtype``, or PyTorch's overflow error."""
    import math

    big = float(value) if not isinstance(value, int) or abs(value) < 2 ** 1000 else math.inf
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        bad = not math.isfinite(big) or not info.min <= value <= info.max
    else:
        bad = dtype.kind == "f" and math.isfinite(big) and abs(big) > float(np.finfo(dtype).max)
    if bad:
        raise RuntimeError(f"{name}: value cannot be converted to type {dtype} without overflow "
                           f"(value={value})")
    return np.array(value).astype(dtype)


def masked_fill(input, mask, value):
    """``input`` with ``value`` where the boolean ``mask`` (broadcast) is True.

    Example:
        >>> x = gn.tensor([1.0, 2.0, 3.0])
        >>> x.masked_fill(x > 1.5, float("-inf")).tolist()
        [1.0, -inf, -inf]
    """
    from ..creation import Where

    if not isinstance(mask, Tensor) or mask.dtype != np.bool_:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {got}")
    try:
        np.broadcast_shapes(tuple(mask.shape), tuple(input.shape))
    except ValueError:
        raise RuntimeError(f"masked_fill: the mask of shape {list(mask.shape)} does not broadcast "
                           f"against the input of shape {list(input.shape)}") from None
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s).")
        fill = value if value.dtype == input.dtype else value.to(input.dtype)
    else:
        fill = Tensor._wrap(input.backend.asarray(_scalar_as("masked_fill", value, input.dtype)),
                            input.backend)
    return Where.apply(fill, input, condition=mask._data)


def _sorted_index(xp, a, dim, descending):
    """Stable sort order along ``dim``; descending keeps equal values in their first order."""
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable")
    n = a.shape[dim]
    flipped = xp.flip(a, axis=dim)
    return (n - 1) - xp.flip(xp.argsort(flipped, axis=dim, kind="stable"), axis=dim)


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim``, as ``torch.sort``.

    Example:
        >>> gn.sort(gn.tensor([3.0, 1.0, 2.0])).indices.tolist()
        [1, 2, 0]
    """
    from .math import dim_index

    d = dim_index(int(dim), input.ndim)
    if input.ndim == 0:
        return ValuesIndices(input.clone(), Tensor._wrap(input.backend.xp.zeros((), np.int64), input.backend))
    order = _sorted_index(input.backend.xp, input._data, d, descending)
    return ValuesIndices(Gather.apply(input, dim=d, index=order), Tensor._wrap(order, input.backend))


def topk(input, k, dim=-1, largest=True, sorted=True):
    """``(values, indices)`` of the ``k`` largest (or smallest) along ``dim``, as ``torch.topk``.

    Example:
        >>> v, i = gn.topk(gn.tensor([1.0, 5.0, 3.0]), 2)
        >>> v.tolist(), i.tolist()
        ([5.0, 3.0], [1, 2])
    """
    from .math import dim_index

    d = dim_index(int(dim), max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk(): argument 'k' must be int, not {type(k).__name__}")
    if not 0 <= int(k) <= n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, the dim has {n})")
    if input.ndim == 0:
        return ValuesIndices(input.clone(), Tensor._wrap(input.backend.xp.zeros((), np.int64), input.backend))
    order = _sorted_index(input.backend.xp, input._data, d, largest)
    order = order[(slice(None),) * d + (slice(0, int(k)),)]
    return ValuesIndices(Gather.apply(input, dim=d, index=order), Tensor._wrap(order, input.backend))


def install(cls):
    """Attach gather/masked_fill/sort/topk as methods."""
    cls.gather = lambda a, dim, index, *, sparse_grad=False: gather(a, dim, index)
    cls.masked_fill = masked_fill
    cls.sort = lambda a, dim=-1, descending=False, stable=False: sort(a, dim, descending, stable)
    cls.topk = lambda a, k, dim=-1, largest=True, sorted=True: topk(a, k, dim, largest, sorted)


class Pad(Function):
    """``a`` with constant ``value`` borders, ``widths`` (lo, hi) per dim; negative widths
    crop, as in PyTorch.  The gradient is the part of ``gy`` over ``a``'s elements."""

    @staticmethod
    def forward(ctx, a, widths, value):
        xp = ctx.backend.xp
        grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        padded = xp.pad(a, grow, mode="constant", constant_values=value)
        ctx.padded = padded.shape
        ctx.crop = tuple(slice(max(-lo, 0), m - max(-hi, 0)) for (lo, hi), m in zip(widths, padded.shape))
        ctx.inner = tuple(slice(g, g + n) for (g, _), n in zip(grow, a.shape))
        return padded[ctx.crop]

    @staticmethod
    def backward(ctx, gy):
        g = ctx.backend.xp.zeros(ctx.padded, dtype=gy.dtype)
        g[ctx.crop] = gy
        return (g[ctx.inner],)


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative widths, crop) the last dims, as ``F.pad``: ``pad`` lists
    (left, right) widths from the last dim backwards; only ``mode="constant"``.

    Example:
        >>> F.pad(gn.ones(1, 2), (1, 2)).tolist()
        [[0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input must be a gpunet Tensor, got {type(input).__name__}")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode={mode!r} is not in gpunet; only 'constant'")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"Padding length must be divisible by 2 and at most twice the number of "
                         f"dimensions of the input ({input.ndim}), got {len(pad)}")
    widths = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        widths[input.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return Pad.apply(input, widths=widths, value=0 if value is None else value)
