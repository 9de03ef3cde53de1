"""Arithmetic, reductions and shape ops: plain ``xp`` array code written once for every backend."""
from __future__ import annotations

import numpy as np

from ..function import Function


class Add(Function):
    """a + b with broadcasting; each gradient summed back to its input's shape."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    """a - b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, gy):
        return gy, -gy


class Mul(Function):
    """a * b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        # only what backward reads: x.mul_(2) must not count x as saved
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        return a * b

    @staticmethod
    def backward(ctx, gy):
        b, a = ctx.saved
        return (gy * b if ctx.needs_input_grad[0] else None,
                gy * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    """a / b with broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        ga = gy / b if ctx.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """-a."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, gy):
        return (-gy,)


class Pow(Function):
    """a ** p for a constant exponent p."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return a ** p

    @staticmethod
    def backward(ctx, gy):
        (a,) = ctx.saved
        return (gy * ctx.p * a ** (ctx.p - 1),)


class Exp(Function):
    """exp(a); the backward reuses the output."""

    @staticmethod
    def forward(ctx, a):
        y = ctx.backend.xp.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (gy * ctx.saved[0],)


class Log(Function):
    """log(a) (natural)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.log(a)

    @staticmethod
    def backward(ctx, gy):
        return (gy / ctx.saved[0],)


class Abs(Function):
    """|a|; the gradient at 0 is 0, as in PyTorch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.abs(a)

    @staticmethod
    def backward(ctx, gy):
        return (gy * ctx.backend.xp.sign(ctx.saved[0]),)


class Clip(Function):
    """Clamp to [lo, hi]; the gradient passes where the value was inside."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return ctx.backend.xp.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, gy):
        (a,) = ctx.saved
        inside = ctx.backend.xp.ones(a.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= a >= ctx.lo
        if ctx.hi is not None:
            inside &= a <= ctx.hi
        return (gy * inside,)


def dim_index(dim, ndim):
    """``dim`` of a tensor with ``ndim`` dims as a non-negative index, or PyTorch's IndexError.

    Example:
        >>> dim_index(-1, 3)
        2
    """
    span = max(ndim, 1)  # a 0-d tensor takes dim 0 and -1, as in PyTorch
    if not -span <= dim < span:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-span}, "
                         f"{span - 1}], but got {dim})")
    return dim % span


def _norm_axis(axis, ndim):
    """Sorted non-negative axes of ``axis`` (one dim, a sequence of them, or None for all); a
    0-d tensor's dim 0 or -1 reduces nothing, as in PyTorch."""
    if axis is None:
        return tuple(range(ndim))
    dims = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"dim must be an int or a tuple of ints, got {axis!r}")
    axes = tuple(sorted(dim_index(int(d), ndim) for d in dims))
    if ndim == 0:
        return ()
    repeated = [a for a, b in zip(axes, axes[1:]) if a == b]
    if repeated:
        raise RuntimeError(f"dim {repeated[0]} appears multiple times in the list of dims {tuple(axis)}")
    return axes


def _expand(gy, axes, keepdims, shape, xp):
    """Reshape a reduced gradient so it broadcasts against the input of ``shape``."""
    if not keepdims:
        gy = xp.expand_dims(gy, axes) if axes else gy
    return xp.broadcast_to(gy, shape)


class Sum(Function):
    """The sum over ``axes`` (all when None)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = _norm_axis(axis, a.ndim), keepdims, a.shape
        return a.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        return (_expand(gy, ctx.axes, ctx.keepdims, ctx.shape, ctx.backend.xp),)


class Mean(Function):
    """The mean over ``axes`` (all when None)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = _norm_axis(axis, a.ndim), keepdims, a.shape
        ctx.count = 1
        for ax in ctx.axes:
            ctx.count *= a.shape[ax]
        return a.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        return (_expand(gy / ctx.count, ctx.axes, ctx.keepdims, ctx.shape, ctx.backend.xp),)


class Max(Function):
    """Max over axes; tied maxima share the gradient equally."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims = _norm_axis(axis, a.ndim), keepdims
        y = a.max(axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(a, y)
        return y if keepdims else y.reshape([n for i, n in enumerate(a.shape) if i not in ctx.axes])

    @staticmethod
    def backward(ctx, gy):
        a, y = ctx.saved
        mask = (a == y).astype(a.dtype)
        mask /= mask.sum(axis=ctx.axes, keepdims=True)
        return (_expand(gy, ctx.axes, ctx.keepdims, a.shape, ctx.backend.xp) * mask,)


class MatMul(Function):
    """a @ b with NumPy's broadcasting rules, on the backend's matmul (BLAS / cuBLAS)."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least 1 dimension (use * for scalars)")
        if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not line up "
                             f"({a.shape[-1]} != {b.shape[0 if b.ndim == 1 else -2]})")
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        xp, mm = ctx.backend.xp, ctx.backend.matmul
        if a.ndim == 1 and b.ndim == 1:  # a dot product: gy is a scalar
            return (gy * b if ctx.needs_input_grad[0] else None,
                    gy * a if ctx.needs_input_grad[1] else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = gy
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = mm(g2, xp.swapaxes(b2, -1, -2)) if ctx.needs_input_grad[0] else None
        gb = mm(xp.swapaxes(a2, -1, -2), g2) if ctx.needs_input_grad[1] else None
        if ga is not None and a.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]).reshape(-1, a.shape[0]).sum(0)
        if gb is not None and b.ndim == 1:
            gb = gb.reshape(gb.shape[:-1]).reshape(-1, b.shape[0]).sum(0)
        if gb is not None and gb.ndim > b.ndim:
            gb = gb.reshape((-1,) + b.shape).sum(0)
        return ga, gb


class Sqrt(Function):
    """sqrt(a); the backward is gy / (2 sqrt(a))."""

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


# --- the functions users call (gpunet.functional re-exports them) ---------------


class Sin(Function):
    """sin(a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.sin(a)

    @staticmethod
    def backward(ctx, gy):
        return (gy * ctx.backend.xp.cos(ctx.saved[0]),)


class Cos(Function):
    """cos(a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.cos(a)

    @staticmethod
    def backward(ctx, gy):
        return (-gy * ctx.backend.xp.sin(ctx.saved[0]),)


class Maximum(Function):
    """Elementwise max(a, b) (``lower=True``: min); a tie splits the gradient in half, as PyTorch."""

    @staticmethod
    def forward(ctx, a, b, lower=False):
        xp = ctx.backend.xp
        ctx.save_for_backward(a, b)
        ctx.lower = lower
        return xp.minimum(a, b) if lower else xp.maximum(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        wins = (a < b) if ctx.lower else (a > b)
        share = wins + 0.5 * (a == b)
        return gy * share.astype(gy.dtype), gy * (1 - share).astype(gy.dtype)
