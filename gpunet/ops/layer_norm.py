"""Layer normalisation: the Function over the backend's fused row kernels, and ``layer_norm``."""
from __future__ import annotations

from ..function import Function
from .._arg_checks import _tensor
from ..tensor import Tensor


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


# --- the functions users call (gpunet.functional re-exports them) ---------------
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(biased var + eps) * weight + bias over the last len(normalized_shape)
    dims (``nn.LayerNorm`` calls this).

    Example:
        >>> F.layer_norm(gn.ones(2, 3), 3).shape
        gpunet.Size([2, 3])
    """
    _tensor("x", x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dims of the "
                         f"input, got input shape {tuple(x.shape)}")
    if (weight is None) != (bias is None):  # the kernels take both or neither
        weight = weight if weight is not None else Tensor._wrap(x.backend.xp.ones(shape, x.dtype), x.backend)
        bias = bias if bias is not None else Tensor._wrap(x.backend.xp.zeros(shape, x.dtype), x.backend)
    params = [weight, bias] if weight is not None else []
    return LayerNorm.apply(x, *params, normalized=len(shape), eps=float(eps))
