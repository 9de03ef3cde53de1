"""Activations and dropout, one Function each."""
from __future__ import annotations

from ..function import Function


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.relu_fwd(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.relu_bwd(gy, ctx.saved[0]),)


class Sigmoid(Function):
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
