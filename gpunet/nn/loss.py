"""Loss modules: thin wrappers over gpunet.functional, each with ``reduction`` ("mean" | "sum" | "none").

Example:
    >>> scores = gn.randn(3, 10, requires_grad=True)
    >>> loss = nn.CrossEntropyLoss()(scores, labels)      # scores (N, C) float, labels (N,) int
    >>> loss.backward()
    >>> scores.grad.shape
    (3, 10)
"""
from __future__ import annotations

from .. import functional as F
from .module import Module


class _Loss(Module):
    _fn = None

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = F._reduction(reduction)

    def forward(self, input, target):
        return type(self)._fn(input, target, reduction=self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from raw logits (N, C) against integer class ids (N,).

    Example:
        >>> nn.CrossEntropyLoss()(gn.zeros(2, 4), gn.tensor([3, 0]))      # log(4)
        tensor(1.3863, backend='numpy')
    """

    _fn = staticmethod(F.softmax_cross_entropy)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) at integer targets (N,).

    Example:
        >>> nn.NLLLoss()(nn.LogSoftmax(dim=1)(gn.zeros(2, 4)), gn.tensor([3, 0]))
        tensor(1.3863, backend='numpy')
    """

    _fn = staticmethod(F.nll_loss)


class MSELoss(_Loss):
    """Mean squared error. Example: ``nn.MSELoss()(prediction, target)``."""

    _fn = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    """Mean absolute error. Example: ``nn.L1Loss(reduction="sum")(prediction, target)``."""

    _fn = staticmethod(F.l1_loss)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1]. Example: ``nn.BCELoss()(sigmoid(z), t)``."""

    _fn = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores (sigmoid fused, stable). Example: ``nn.BCEWithLogitsLoss()(z, t)``."""

    _fn = staticmethod(F.binary_cross_entropy_with_logits)
