"""Losses that need a fused or stable kernel of their own (the rest are composed in functional)."""
from __future__ import annotations

from ..function import Function
from .._arg_checks import _reduction, _same_shape, _tensor
from ..tensor import Tensor


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


# --- the functions users call (gpunet.functional re-exports them) ---------------
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C) (or (C,), or (N, C, d1, ...)) at
    integer targets, as ``F.nll_loss``: ``weight`` per class, ``ignore_index`` rows left out
    (a "mean" divides by the kept rows' weights).

    Example:
        >>> a = F.nll_loss(F.log_softmax(logits, dim=1), labels)
        >>> bool(abs(a - F.cross_entropy(logits, labels)) < 1e-6)
        True
    """
    from .softmax_ce import _labels, _legacy_reduction, check_labels, class_rows, class_weight

    _tensor("input", input, None)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    target = _labels("nll_loss", input, target)
    rows, labels, shape = class_rows("nll_loss", input, target)
    check_labels("nll_loss", rows, labels, ignore_index)
    xp = rows.backend.xp
    ids = labels._data
    kept = ids != ignore_index
    safe = xp.where(kept, ids, 0)
    w = class_weight("nll_loss", weight, rows.shape[1], rows)
    wy = kept.astype(rows.dtype) if w is None else xp.where(kept, w[safe], 0).astype(rows.dtype)
    wy_t = Tensor._wrap(wy, rows.backend)
    per = -rows[xp.arange(rows.shape[0]), safe] * wy_t
    if reduction == "none":
        return per.reshape(shape) if shape is not None else per
    return per.sum() if reduction == "sum" else per.sum() / wy_t.sum()


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input - target)^2)."""
    target = _same_shape("mse_loss", _tensor("input", input), target)
    diff = input - target
    return apply_reduction(diff * diff, _reduction(reduction))


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error (MAE): mean(|input - target|)."""
    target = _same_shape("l1_loss", _tensor("input", input), target)
    return apply_reduction((input - target).abs(), _reduction(reduction))


def binary_cross_entropy(input, target, reduction="mean"):
    """BCE on probabilities in [0, 1]: -(t log p + (1-t) log(1-p))."""
    target = _same_shape("binary_cross_entropy", _tensor("input", input), target)
    input.backend.check_range(input._data, 0, 1, "binary_cross_entropy: input must be probabilities in [0, 1]",
                              "; use binary_cross_entropy_with_logits for raw scores")
    return BinaryCrossEntropy.apply(input, target, reduction=_reduction(reduction))


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE on raw scores: sigmoid and log fused so that large logits stay finite."""
    target = _same_shape("binary_cross_entropy_with_logits", _tensor("input", input), target)
    return BinaryCrossEntropyWithLogits.apply(input, target, reduction=_reduction(reduction))
