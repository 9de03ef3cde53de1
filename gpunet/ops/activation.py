"""Activations and dropout, one Function each."""
from __future__ import annotations

import numpy as np

from ..function import Function
from .._arg_checks import _tensor
from .math import dim_index


class ReLU(Function):
    """max(x, 0) on the backend's relu kernels; the backward reads the output."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.relu_fwd(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.relu_bwd(gy, ctx.saved[0]),)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), computed as 0.5 * (1 + tanh(x / 2)) so that no exp overflows."""

    @staticmethod
    def forward(ctx, x):
        xp = ctx.backend.xp
        # NOTE: 0.5 * (1 + tanh(x / 2)) is sigmoid without overflow in exp(-x) for large |x|.
        y = 0.5 * (1 + xp.tanh(0.5 * x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y = ctx.saved[0]
        return (gy * y * (1 - y),)


class Tanh(Function):
    """tanh(x); the backward is gy * (1 - y^2) from the output."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        y = ctx.saved[0]
        return (gy * (1 - y * y),)


class Softmax(Function):
    """exp(x - max) / sum along ``axis``; the backward is y * (gy - sum(gy * y))."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = ctx.backend.xp
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        y = ctx.saved[0]
        return (y * (gy - (gy * y).sum(axis=ctx.axis, keepdims=True)),)


class LogSoftmax(Function):
    """x - max - log(sum(exp(x - max))) along ``axis``; backward gy - softmax * sum(gy)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = ctx.backend.xp
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        y = ctx.saved[0]
        return (gy - xp.exp(y) * gy.sum(axis=ctx.axis, keepdims=True),)


class Dropout(Function):
    """Inverted dropout: zero with probability p, scale the rest by 1/(1-p)."""

    @staticmethod
    def forward(ctx, x, p):
        keep = ctx.backend.rand(x.shape, x.dtype) >= p
        mask = keep * x.dtype.type(1.0 / (1.0 - p))
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, gy):
        return (gy * ctx.saved[0],)


class LeakyReLU(Function):
    """x where x > 0, else negative_slope * x."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return ctx.backend.leaky_relu_fwd(x, negative_slope)

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.leaky_relu_bwd(gy, ctx.saved[0], ctx.negative_slope),)


class ELU(Function):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    @staticmethod
    def forward(ctx, x, alpha):
        xp = ctx.backend.xp
        ctx.alpha = x.dtype.type(alpha)
        y = xp.where(x > 0, x, ctx.alpha * xp.expm1(xp.minimum(x, 0)))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved
        return (ctx.backend.xp.where(x > 0, gy, gy * (y + ctx.alpha)),)


class GELU(Function):
    """x * Phi(x), Phi the normal CDF: exact (erf) or PyTorch's ``approximate='tanh'`` form."""

    @staticmethod
    def forward(ctx, x, approximate):
        xp, be = ctx.backend.xp, ctx.backend
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            c = x.dtype.type(0.7978845608028654)  # sqrt(2/pi)
            inner = c * (x + x.dtype.type(0.044715) * x * x * x)
            ctx.tanh = xp.tanh(inner)
            return x.dtype.type(0.5) * x * (1 + ctx.tanh)
        ctx.cdf = x.dtype.type(0.5) * (1 + be.erf(x * x.dtype.type(0.7071067811865476)))
        return x * ctx.cdf

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        (x,) = ctx.saved
        if ctx.approximate == "tanh":
            c, k = x.dtype.type(0.7978845608028654), x.dtype.type(0.044715)
            t = ctx.tanh
            d_inner = c * (1 + 3 * k * x * x)
            return (gy * (x.dtype.type(0.5) * (1 + t) + x.dtype.type(0.5) * x * (1 - t * t) * d_inner),)
        pdf = xp.exp(x * x * x.dtype.type(-0.5)) * x.dtype.type(0.3989422804014327)
        return (gy * (ctx.cdf + x * pdf),)


# --- the functions users call (gpunet.functional re-exports them) ---------------
def relu(x):
    """max(x, 0)."""
    return ReLU.apply(_tensor("x", x))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid.apply(_tensor("x", x))


def tanh(x):
    """Hyperbolic tangent."""
    return Tanh.apply(_tensor("x", x))


def _softmax_dim(fn, x, dim, axis):
    dim = dim if axis is None else axis
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{fn}(): argument 'dim' must be int, not {type(dim).__name__}")
    return dim_index(int(dim), _tensor("x", x).ndim)


def softmax(x, dim=-1, *, axis=None):
    """exp(x) / sum(exp(x)) along ``dim`` (``axis=`` is an alias), shifted by the max for stability."""
    return Softmax.apply(x, axis=_softmax_dim("softmax", x, dim, axis))


def log_softmax(x, dim=-1, *, axis=None):
    """log(softmax(x)) along ``dim``, computed stably."""
    return LogSoftmax.apply(x, axis=_softmax_dim("log_softmax", x, dim, axis))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else ``negative_slope * x`` (PyTorch's default slope 0.01).

    Example:
        >>> F.leaky_relu(gn.tensor([-2.0, 3.0]), 0.1)
        tensor([-0.2000,  3.0000])
    """
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating)):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got "
                        f"{type(negative_slope).__name__} {negative_slope!r}")
    return LeakyReLU.apply(_tensor("x", x), negative_slope=float(negative_slope))


def elu(x, alpha=1.0):
    """x where x > 0, else ``alpha * (exp(x) - 1)``."""
    return ELU.apply(_tensor("x", x), alpha=float(alpha))


def gelu(x, approximate="none"):
    """x * Phi(x) with the exact normal CDF, or its tanh form with ``approximate="tanh"``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_tensor("x", x), approximate=approximate)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return Dropout.apply(_tensor("x", x), p=p)
