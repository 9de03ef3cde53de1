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
def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C) at integer targets (N,).

    Example:
        >>> a = F.nll_loss(F.log_softmax(logits, dim=1), labels)
        >>> bool(abs(a - F.cross_entropy(logits, labels)) < 1e-6)
        True
    """
    _tensor("input", input, 2)
    if not isinstance(target, Tensor):
        target = Tensor(target, backend=input.backend)
    if target.dtype.kind not in "iu" or target.shape != (input.shape[0],):
        raise ValueError(f"nll_loss: target must be ({input.shape[0]},) integer class ids, got "
                         f"shape {tuple(target.shape)} dtype {target.dtype}")
    input.backend.check_range(target._data, 0, input.shape[1] - 1,
                              f"nll_loss: target must be in [0, {input.shape[1]})")
    picked = input[input.backend.xp.arange(input.shape[0]), target._data]
    return apply_reduction(-picked, _reduction(reduction))


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
