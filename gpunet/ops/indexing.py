"""Ops PyTorch users reach for by name: values along a dim, casts, copies, square roots, powers.

Example:
    >>> t = gn.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    >>> values, indices = t.max(1)
    >>> values.tolist(), indices.tolist()
    ([5.0, 7.0], [1, 0])
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from .._arg_checks import _tensor
from ..tensor import Tensor


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
