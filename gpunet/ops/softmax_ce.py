"""Softmax cross-entropy, fused: the Function over the backend's one-pass kernels, and the
``softmax_cross_entropy`` / ``cross_entropy`` wrapper that checks its arguments."""
from __future__ import annotations

from ..function import Function
from .._arg_checks import _reduction, _tensor
from ..tensor import Tensor


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


# --- the functions users call (gpunet.functional re-exports them) ---------------
def softmax_cross_entropy(logits, labels, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class ids (PyTorch's ``cross_entropy``).

    Example:
        >>> loss = F.softmax_cross_entropy(logits, gn.tensor([3, 0, 9]))   # logits (3, 10)
    """
    _tensor("logits", logits, 2)
    _reduction(reduction)
    if not isinstance(labels, Tensor):
        labels = Tensor(labels, backend=logits.backend)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
                         f"got {tuple(labels.shape)}")
    n_classes = logits.shape[1]
    if not logits.backend.checks_labels_on_device:  # the softmax-CE kernel flags them itself
        logits.backend.check_range(labels._data, 0, n_classes - 1,
                                   f"labels must be in [0, {n_classes}) for logits with {n_classes} classes")
    return SoftmaxCrossEntropy.apply(logits, labels, reduction=reduction)


cross_entropy = softmax_cross_entropy  # PyTorch's name
