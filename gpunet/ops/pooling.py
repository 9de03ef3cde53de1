"""Max and average pooling over 2-D windows."""
from __future__ import annotations

from ..function import Function, is_grad_enabled


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode=False):
        keep = is_grad_enabled() and ctx.needs_input_grad[0]
        ctx.extra = {"ceil_mode": True} if ceil_mode else {}
        y, argmax = ctx.backend.max_pool2d_fwd(x, kernel, stride, padding, keep_argmax=keep,
                                               **ctx.extra)
        ctx.save_for_backward(argmax)
        ctx.args = (x.shape, kernel, stride, padding)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.max_pool2d_bwd(gy, ctx.saved[0], *ctx.args, **ctx.extra),)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.args = (x.shape, kernel, stride, padding)
        return ctx.backend.avg_pool2d_fwd(x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.avg_pool2d_bwd(gy, *ctx.args),)
