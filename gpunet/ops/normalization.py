"""Batch normalisation: one fused Function, forward and backward side by side (plain ``xp`` code)."""
from __future__ import annotations

from ..function import Function


def _channel_shape(x):
    """(1, C, 1, ...) so a per-channel vector broadcasts against x (N, C, ...)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    """Normalise x (N, C, ...) per channel with the batch's statistics, then scale and shift.

    ``running`` = (running_mean, running_var, factor) arrays are updated in place:
    ``r = (1 - factor) * r + factor * batch_stat``, with the unbiased variance (as PyTorch).
    """

    @staticmethod
    def forward(ctx, x, *affine, eps=1e-5, running=None):
        xp = ctx.backend.xp
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)  # biased: used to normalise
        inv_std = 1 / xp.sqrt(var + eps)
        xhat = centred * inv_std
        y = xhat
        if affine:
            gamma, beta = affine
            y = xhat * gamma.reshape(_channel_shape(x)) + beta.reshape(_channel_shape(x))
        if running is not None:
            r_mean, r_var, factor = running
            r_mean *= 1 - factor
            r_mean += factor * mean.reshape(-1).astype(r_mean.dtype, copy=False)
            # NOTE: the running variance is the unbiased estimate n/(n-1) * var, as in PyTorch.
            r_var *= 1 - factor
            r_var += (factor * count / (count - 1)) * var.reshape(-1).astype(r_var.dtype, copy=False)
        ctx.axes, ctx.count = axes, count
        ctx.save_for_backward(xhat, inv_std, affine[0] if affine else None)
        return y

    @staticmethod
    def backward(ctx, gy):
        xhat, inv_std, gamma = ctx.saved
        axes, n = ctx.axes, ctx.count
        gxhat = gy if gamma is None else gy * gamma.reshape(_channel_shape(gy))
        # NOTE: the batch statistics depend on x too, hence the two mean terms:
        # dx = inv_std * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)).
        gx = None
        if ctx.needs_input_grad[0]:
            m1 = gxhat.sum(axis=axes, keepdims=True) / n
            m2 = (gxhat * xhat).sum(axis=axes, keepdims=True) / n
            gx = inv_std * (gxhat - m1 - xhat * m2)
        if gamma is None:
            return (gx,)
        ggamma = (gy * xhat).sum(axis=axes) if ctx.needs_input_grad[1] else None
        gbeta = gy.sum(axis=axes) if ctx.needs_input_grad[2] else None
        return gx, ggamma, gbeta


class LayerNorm(Function):
    """Normalise over the trailing ``len(normalized_shape)`` dims; the backend's fused kernels
    do the (R, D) row work, R the leading dims and D the normalised ones."""

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, normalized=1, eps=1e-5):
        d = 1
        for n in x.shape[x.ndim - normalized:]:
            d *= n
        rows = x.reshape(-1, d)
        w = None if weight is None else weight.reshape(d)
        b = None if bias is None else bias.reshape(d)
        y, saved = ctx.backend.layer_norm_fwd(rows, w, b, eps)
        ctx.save_for_backward(rows, w, saved)
        ctx.shape, ctx.param_shape = x.shape, None if weight is None else weight.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, gy):
        rows, w, saved = ctx.saved
        gx, gw, gb = ctx.backend.layer_norm_bwd(gy.reshape(rows.shape), rows, w, saved)
        gx = gx.reshape(ctx.shape)
        if ctx.param_shape is None:
            return (gx,)
        return gx, gw.reshape(ctx.param_shape), gb.reshape(ctx.param_shape)
