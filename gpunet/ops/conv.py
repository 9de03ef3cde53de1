"""Linear and 2-D convolution: GEMM-based, the backend does the heavy lifting."""
from __future__ import annotations

from ..function import Function, is_grad_enabled


class Linear(Function):
    """y = x @ W.T + b with W of shape (out, in), as in PyTorch."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        y = ctx.backend.matmul(x, w.T)
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved
        mm, need = ctx.backend.matmul, ctx.needs_input_grad
        gx = mm(gy, w) if need[0] else None
        gw = None
        if need[1]:
            g2, x2 = gy.reshape(-1, gy.shape[-1]), x.reshape(-1, x.shape[-1])
            gw = mm(g2.T, x2)
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if len(need) > 2 and need[2] else None
        return gx, gw, gb


class Conv2d(Function):
    """Cross-correlation of x (N,C,H,W) with w (K,C,kH,kW), plus bias b (K,)."""

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        keep = is_grad_enabled() and ctx.needs_input_grad[1]  # columns feed the weight grad
        ctx.extra = {} if (dilation, groups) == ((1, 1), 1) else {"dilation": dilation, "groups": groups}
        y, saved = ctx.backend.conv2d_fwd(x, w, b, stride, padding, keep_cols=keep, **ctx.extra)
        ctx.save_for_backward(x, w, saved)
        ctx.stride, ctx.padding = stride, padding
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, saved = ctx.saved
        be, need = ctx.backend, ctx.needs_input_grad
        args = (ctx.stride, ctx.padding, saved)
        gx = be.conv2d_bwd_data(gy, w, x.shape, *args, **ctx.extra) if need[0] else None
        gw = be.conv2d_bwd_weight(gy, x, w.shape, *args, **ctx.extra) if need[1] else None
        gb = be.conv2d_bwd_bias(gy) if len(need) > 2 and need[2] else None
        return gx, gw, gb
