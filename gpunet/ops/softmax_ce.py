"""Softmax cross-entropy, fused: the Function over the backend's one-pass kernels, and
``cross_entropy`` (PyTorch's signature: ``weight``, ``ignore_index``, ``label_smoothing``,
(N, C, d1, ...) inputs, unbatched (C,) inputs and class-probability targets)."""
from __future__ import annotations

from ..function import Function
from .._arg_checks import _reduction, _tensor
from ..tensor import Tensor


class SoftmaxCrossEntropy(Function):
    """-log softmax(logits)[label] (weighted, smoothed, ignoring a label), fused and stable."""

    @staticmethod
    def forward(ctx, logits, labels, reduction="mean", weight=None, ignore_index=-100,
                label_smoothing=0.0):
        # the reduction happens inside the fused kernel (one launch on cuda)
        loss, probs, wsum = ctx.backend.softmax_cross_entropy_fwd(
            logits, labels, reduction, weight, ignore_index, label_smoothing)
        ctx.save_for_backward(probs, labels)
        ctx.reduction, ctx.weight = reduction, weight
        ctx.rest = (ignore_index, label_smoothing, wsum)
        return loss

    @staticmethod
    def backward(ctx, gy):
        probs, labels = ctx.saved
        ignore_index, label_smoothing, wsum = ctx.rest
        return ctx.backend.softmax_cross_entropy_bwd(probs, labels, gy, ctx.reduction, ctx.weight,
                                                     ignore_index, label_smoothing, wsum), None


def class_weight(name, weight, n_classes, ref):
    """``weight`` (C,) as an array on ``ref``'s backend and dtype, or None."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{name}: weight must be a Tensor of shape ({n_classes},) or None, got "
                        f"{type(weight).__name__}")
    if tuple(weight.shape) != (n_classes,):
        raise RuntimeError(f"{name}: weight tensor should be defined either for all {n_classes} "
                           f"classes or no classes but got weight tensor of shape: {list(weight.shape)}")
    return weight.to(ref.backend)._data.astype(ref.dtype, copy=False)


def class_rows(name, input, target):
    """(N, C) rows and (N,) targets from PyTorch's layouts: (C,) with a 0-d target, (N, C), and
    (N, C, d1, ...) with (N, d1, ...) targets; plus the shape a "none" loss comes back in."""
    if input.ndim == 1:
        return input.reshape(1, -1), target.reshape(1), ()
    if input.ndim == 2:
        return input, target, None
    if target.ndim != input.ndim - 1 or target.shape[0] != input.shape[0] or \
            tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise ValueError(f"{name}: for input of shape {tuple(input.shape)} (N, C, d1, ...) the target "
                         f"must have shape {(input.shape[0],) + tuple(input.shape[2:])}, got "
                         f"{tuple(target.shape)}")
    rows = input.permute(0, *range(2, input.ndim), 1).reshape(-1, input.shape[1])
    return rows, target.reshape(-1), (input.shape[0],) + tuple(input.shape[2:])


def _labels(name, input, target):
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.backend)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must be integer class ids (or, for cross_entropy, class "
                        f"probabilities of the input's shape), got dtype {target.dtype}")
    want = () if input.ndim == 1 else (input.shape[0],) if input.ndim == 2 else None
    if want is not None and tuple(target.shape) != want:
        raise ValueError(f"{name}: target must have shape {want} to match input {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    return target


def check_labels(name, rows, labels, ignore_index):
    """Labels outside [0, C) that are not ``ignore_index`` raise (on the GPU: flagged)."""
    n_classes = rows.shape[1]
    if rows.backend.checks_labels_on_device:  # the softmax-CE kernel flags them itself
        return
    ids = labels._data
    kept = ids if ignore_index is None else ids[ids != ignore_index]
    rows.backend.check_range(kept, 0, n_classes - 1,
                             f"{name}: labels must be in [0, {n_classes}) for logits with "
                             f"{n_classes} classes (or equal ignore_index={ignore_index})")


# --- the functions users call (gpunet.functional re-exports them) ---------------
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of softmax(input) against class ids or class probabilities, as
    ``F.cross_entropy``: ``weight`` per class, rows labelled ``ignore_index`` left out (of the
    mean too), ``label_smoothing`` mixing in the uniform distribution.

    Example:
        >>> F.cross_entropy(gn.zeros(3, 4), gn.tensor([3, -100, 0])).item()   # log(4)
        1.3862943649291992
        >>> F.cross_entropy(gn.zeros(2, 4), gn.tensor([1, -1]), ignore_index=-1,
        ...                 label_smoothing=0.1).item()
        1.3862943649291992
    """
    _tensor("input", input, None)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    target = _labels("cross_entropy", input, target)
    rows, labels, shape = class_rows("cross_entropy", input, target)
    w = class_weight("cross_entropy", weight, rows.shape[1], rows)
    check_labels("cross_entropy", rows, labels, ignore_index)
    loss = SoftmaxCrossEntropy.apply(rows, labels, reduction=reduction, weight=w,
                                     ignore_index=int(ignore_index), label_smoothing=float(label_smoothing))
    return loss.reshape(shape) if reduction == "none" and shape is not None else loss


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """PyTorch's soft-target cross-entropy: -sum_c w_c t_c log softmax(x)_c; a mean over rows."""
    from .activation import log_softmax

    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: a {target.dtype} target is read as class probabilities, "
                         f"which must have the input's shape {tuple(input.shape)}, got "
                         f"{tuple(target.shape)}; class ids need an integer dtype (target.long())")
    dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[dim]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    per = log_softmax(input, dim=dim) * target
    if weight is not None:
        w = Tensor._wrap(class_weight("cross_entropy", weight, n_classes, input), input.backend)
        per = per * w.reshape((n_classes,) + (1,) * (input.ndim - dim - 1))
    loss = -per.sum(dim)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / max(input.numel() // n_classes, 1)


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated ``size_average``/``reduce`` flags, mapped as PyTorch maps them."""
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    return _reduction(reduction)


def softmax_cross_entropy(logits, labels, reduction="mean", **kwargs):
    """gpunet's first name for ``cross_entropy`` (same arguments).

    Example:
        >>> loss = F.softmax_cross_entropy(logits, gn.tensor([3, 0, 9]))   # logits (3, 10)
    """
    return cross_entropy(logits, labels, reduction=reduction, **kwargs)
