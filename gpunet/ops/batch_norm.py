"""Batch normalisation: the fused Function over the backend's ``batch_norm`` kernels, and
``F.batch_norm``; SyncBatchNorm (``nn/sync_batchnorm.py``) reuses the helpers below."""
from __future__ import annotations

import numpy as np

from ..function import Function, is_grad_enabled
from ..tensor import Tensor
from .._arg_checks import _tensor


def _channel_shape(x):
    """(1, C, 1, ...) so a per-channel vector broadcasts against x (N, C, ...)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    """Normalise x (N, C, ...) per channel with the batch's statistics, then scale and shift,
    in the backend's fused kernels (``batch_norm_fwd``/``_bwd``: a few passes over x, not one
    array op per term).

    ``running`` = (running_mean, running_var, factor) arrays are updated in place:
    ``r = (1 - factor) * r + factor * batch_stat``, with the unbiased variance (as PyTorch).
    """

    @staticmethod
    def forward(ctx, x, *affine, eps=1e-5, running=None, relu=False):
        weight, bias = affine if affine else (None, None)
        y, mean, var, inv_std = ctx.backend.batch_norm_fwd(x, weight, bias, eps, relu)
        update_running(running, mean, var, x.size // x.shape[1])
        ctx.affine = bool(affine)
        ctx.save_for_backward(x, mean, inv_std, weight, y if relu else None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, mean, inv_std, weight, y = ctx.saved
        gx, gweight, gbias = ctx.backend.batch_norm_bwd(gy, x, mean, inv_std, weight,
                                                        ctx.needs_input_grad[0], y)
        if not ctx.affine:
            return (gx,)
        return (gx, gweight if ctx.needs_input_grad[1] else None,
                gbias if ctx.needs_input_grad[2] else None)


class BatchNormReLUMaxPool(Function):
    """``max_pool2d(relu(batch_norm(x)), pool)`` with the batch's statistics (x (N, C, H, W),
    ``pool``-square windows with stride ``pool``): the values of the three ops, and their
    gradients up to summation order (the NumPy backend pools x itself and normalises only the
    pooled quarter; the ReLU's mask and the statistics' sums work at the pooled size)."""

    @staticmethod
    def forward(ctx, x, *affine, eps=1e-5, running=None, pool=2):
        weight, bias = affine if affine else (None, None)
        grads = is_grad_enabled() and any(ctx.needs_input_grad)
        pooled, mean, var, inv_std, saved = ctx.backend.batch_norm_relu_max_pool_fwd(
            x, weight, bias, eps, pool, grads)
        update_running(running, mean, var, x.size // x.shape[1])
        ctx.affine = bool(affine)
        # x at the top level too, so that an in-place change to it is caught (saved is opaque)
        ctx.save_for_backward(x, mean, inv_std, weight, saved)
        return pooled

    @staticmethod
    def backward(ctx, gp):
        _, mean, inv_std, weight, saved = ctx.saved
        need = ctx.needs_input_grad
        gx, gweight, gbias = ctx.backend.batch_norm_relu_max_pool_bwd(gp, saved, mean, inv_std,
                                                                      weight, need[0])
        if not ctx.affine:
            return (gx,)
        return gx, (gweight if need[1] else None), (gbias if need[2] else None)


def scale_shift(xhat, affine):
    """``xhat * gamma + beta`` per channel (``xhat`` itself without ``affine``)."""
    if not affine:
        return xhat
    gamma, beta = affine
    return xhat * gamma.reshape(_channel_shape(xhat)) + beta.reshape(_channel_shape(xhat))


def update_running(running, mean, var, count):
    """``running`` = (running_mean, running_var, factor), updated in place (None: nothing)."""
    if running is None:
        return
    r_mean, r_var, factor = running
    r_mean *= 1 - factor
    r_mean += factor * mean.reshape(-1).astype(r_mean.dtype, copy=False)
    # NOTE: the running variance is the unbiased estimate n/(n-1) * var, as in PyTorch.
    r_var *= 1 - factor
    r_var += (factor * count / (count - 1)) * var.reshape(-1).astype(r_var.dtype, copy=False)


def batch_norm_backward(ctx, gy, sum_over_ranks=None):
    """Batch norm's backward from ``ctx.saved`` = (xhat, inv_std, gamma or None).

    ``sum_over_ranks(array)`` (SyncBatchNorm) adds the per-channel sums the input gradient
    needs across every process, in place, before they are used.
    """
    xhat, inv_std, gamma = ctx.saved
    axes, n = ctx.axes, ctx.count
    gxhat = gy if gamma is None else gy * gamma.reshape(_channel_shape(gy))
    # NOTE: the batch statistics depend on x too, hence the two mean terms:
    # dx = inv_std * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)).
    gx = None
    if ctx.needs_input_grad[0]:
        s1, s2 = gxhat.sum(axis=axes), (gxhat * xhat).sum(axis=axes)
        if sum_over_ranks is not None:
            c = s1.shape[0]
            sums = ctx.backend.xp.concatenate([s1, s2])
            sum_over_ranks(sums)
            s1, s2 = sums[:c], sums[c:]
        m1 = (s1 / n).reshape(_channel_shape(gy))
        m2 = (s2 / n).reshape(_channel_shape(gy))
        gx = inv_std * (gxhat - m1 - xhat * m2)
    if gamma is None:
        return (gx,)
    # With SyncBatchNorm these are per-rank sums: DataParallel's averaging makes them global.
    ggamma = (gy * xhat).sum(axis=axes) if ctx.needs_input_grad[1] else None
    gbeta = gy.sum(axis=axes) if ctx.needs_input_grad[2] else None
    return gx, ggamma, gbeta


# --- the functions users call (gpunet.functional re-exports them) ---------------
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, _relu=False, _pool=0):
    """Batch normalisation over x (N, C, ...) per channel, as PyTorch's ``F.batch_norm``.

    Training: normalise with the batch mean and biased variance, and (when running stats
    are given) update them in place with ``momentum``. Eval: use the running statistics.

    Example:
        >>> x = gn.randn(8, 3, 5, 5)
        >>> rm, rv = gn.zeros(3), gn.ones(3)                 # running mean and variance
        >>> y = F.batch_norm(x, rm, rv, gn.ones(3), gn.zeros(3), training=True)
        >>> abs(float(y.mean())) < 1e-6, rm.shape          # rm moved 10% toward the batch mean
        (True, gpunet.Size([3]))
    """
    _tensor("x", x, (2, 3, 4))
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and _tensor(name, t, 1).shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)}, needs ({c},) for x {tuple(x.shape)}")
    if (weight is None) != (bias is None):  # as PyTorch: the missing one is the identity
        ref = weight if weight is not None else bias
        const = ref.backend.asarray((np.zeros if bias is None else np.ones)(c, ref.dtype))
        const = Tensor._wrap(const, ref.backend)
        weight, bias = (weight, const) if bias is None else (const, bias)
    affine = [weight, bias] if weight is not None else []
    if training or running_mean is None:
        if x.numel() // c <= 1:
            raise ValueError(f"batch_norm: training needs more than 1 value per channel, got input "
                             f"shape {tuple(x.shape)}; use a batch larger than 1 or call model.eval()")
        running = None
        if training and running_mean is not None:
            running = (running_mean._data, running_var._data, momentum)
        if _pool:  # nn.Sequential's BatchNorm2d, ReLU, MaxPool2d(_pool), as one op
            return BatchNormReLUMaxPool.apply(x, *affine, eps=eps, running=running, pool=_pool)
        return BatchNorm.apply(x, *affine, eps=eps, running=running, relu=_relu)
    shape = _channel_shape(x)
    scale = ((running_var + eps) ** -0.5).reshape(shape)
    y = (x - running_mean.reshape(shape)) * scale
    if affine:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y.relu() if _relu else y
