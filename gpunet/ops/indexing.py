"""Ops PyTorch users reach for by name: values along a dim, casts, copies, square roots, powers.

Example:
    >>> t = gn.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    >>> values, indices = t.max(1)
    >>> values.tolist(), indices.tolist()
    ([5.0, 7.0], [1, 0])
"""
from __future__ import annotations

from ..function import Function


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


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        y = ctx.backend.xp.sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (gy / (2 * ctx.saved[0]),)


class PowTensor(Function):
    """``a ** b`` elementwise for two tensors, with PyTorch's gradients.

    d/da = b * a**(b-1) (0 where b == 0); d/db = a**b * log(a), 0 where a == 0 and b >= 0.
    """

    @staticmethod
    def forward(ctx, a, b):
        xp = ctx.backend.xp
        y = xp.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        a, b, y = ctx.saved
        ga = gb = None
        zero = xp.zeros((), dtype=gy.dtype)
        with ctx.backend.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                ga = xp.where(b == 0, zero, gy * b * xp.power(a, b - 1))
            if ctx.needs_input_grad[1]:
                gb = xp.where((a == 0) & (b >= 0), zero, gy * y * xp.log(a))
        return ga, gb


class Embedding(Function):
    """Rows of ``weight`` at integer ``indices``; the backward sums gradients per row through the
    backend's deterministic ``embedding_bwd`` (no atomics, the same order on every backend)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        ctx.save_for_backward(indices)
        ctx.num, ctx.padding_idx = weight.shape[0], padding_idx
        # the ids were range-checked (on a GPU the error surfaces at the next read): clipping
        # keeps an out-of-range id from reading outside the table meanwhile
        return weight[ctx.backend.xp.clip(indices, 0, weight.shape[0] - 1)]

    @staticmethod
    def backward(ctx, gy):
        (indices,) = ctx.saved
        g = ctx.backend.embedding_bwd(gy, indices, ctx.num)
        if ctx.padding_idx is not None:
            g[ctx.padding_idx] = 0  # PyTorch: the padding row gets no gradient
        return (g,)
