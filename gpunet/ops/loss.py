"""Losses that need a fused or stable kernel of their own (the rest are composed in functional)."""
from __future__ import annotations

from ..function import Function


def apply_reduction(per_item, reduction):
    """Mean, sum or none of per-item losses (tensors or arrays alike)."""
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item


def _reduce_grad(gy, shape, reduction, xp):
    """Upstream gradient of the reduced loss -> gradient per item, of ``shape``."""
    if reduction == "none":
        return gy
    if reduction == "mean":
        gy = gy / _count(shape)
    return xp.broadcast_to(gy, shape)


def _count(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class SoftmaxCrossEntropy(Function):
    """-log softmax(logits)[label], fused and stable; backward (softmax - onehot) * g."""

    @staticmethod
    def forward(ctx, logits, labels, reduction="mean"):
        # the reduction happens inside the fused kernel (one launch on cuda)
        loss, probs = ctx.backend.softmax_cross_entropy_fwd(logits, labels, reduction)
        ctx.save_for_backward(probs, labels)
        ctx.reduction = reduction
        return loss

    @staticmethod
    def backward(ctx, gy):
        probs, labels = ctx.saved
        return ctx.backend.softmax_cross_entropy_bwd(probs, labels, gy, ctx.reduction), None


class BinaryCrossEntropyWithLogits(Function):
    """max(x,0) - x*t + log(1 + exp(-|x|)): stable for any logit."""

    @staticmethod
    def forward(ctx, x, t, reduction="mean"):
        xp = ctx.backend.xp
        ctx.save_for_backward(x, t)
        ctx.reduction = reduction
        per = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return apply_reduction(per, reduction)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        x, t = ctx.saved
        g = _reduce_grad(gy, x.shape, ctx.reduction, xp)
        sig = 0.5 * (1 + xp.tanh(0.5 * x))
        return g * (sig - t), (g * -x if ctx.needs_input_grad[1] else None)


class BinaryCrossEntropy(Function):
    """-(t log p + (1-t) log(1-p)) on probabilities, logs clamped at -100 as in PyTorch."""

    @staticmethod
    def forward(ctx, p, t, reduction="mean"):
        xp = ctx.backend.xp
        ctx.save_for_backward(p, t)
        ctx.reduction = reduction
        with _quiet(ctx.backend):
            log_p = xp.maximum(xp.log(p), -100)
            log_q = xp.maximum(xp.log(1 - p), -100)
        return apply_reduction(-(t * log_p + (1 - t) * log_q), reduction)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        p, t = ctx.saved
        g = _reduce_grad(gy, p.shape, ctx.reduction, xp)
        gp = g * (p - t) / xp.maximum(p * (1 - p), 1e-12)
        gt = None
        if ctx.needs_input_grad[1]:
            with _quiet(ctx.backend):
                gt = -g * (xp.maximum(xp.log(p), -100) - xp.maximum(xp.log(1 - p), -100))
        return gp, gt


def _quiet(backend):
    """Silence NumPy's warnings for log(0), which the clamp handles, and for log of a value
    outside [0, 1], which the range check reports (at the next value read on a GPU)."""
    return backend.errstate(divide="ignore", invalid="ignore")
