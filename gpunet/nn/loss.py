"""Loss modules: thin wrappers over gpunet.functional, each with ``reduction`` ("mean" | "sum" | "none").

Example:
    >>> scores = gn.randn(3, 10, requires_grad=True)
    >>> loss = nn.CrossEntropyLoss()(scores, labels)      # scores (N, C) float, labels (N,) int
    >>> loss.backward()
    >>> scores.grad.shape
    gpunet.Size([3, 10])
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


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        from ..ops.softmax_ce import _legacy_reduction

        if isinstance(weight, str):
            raise TypeError(f"{type(self).__name__}: the first argument is weight, as in PyTorch; "
                            f"pass the reduction by keyword: {type(self).__name__}(reduction={weight!r})")
        super().__init__(_legacy_reduction(size_average, reduce, reduction))
        self.ignore_index = ignore_index
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return type(self)._fn(input, target, weight=self.weight, ignore_index=self.ignore_index,
                              reduction=self.reduction, **self._extra())

    def _extra(self):
        return {}


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy from raw logits (N, C) against integer class ids (N,), with
    PyTorch's ``weight``, ``ignore_index``, ``reduction`` and ``label_smoothing``.

    Example:
        >>> nn.CrossEntropyLoss()(gn.zeros(2, 4), gn.tensor([3, 0]))      # log(4)
        tensor(1.3863)
        >>> nn.CrossEntropyLoss(ignore_index=0)(gn.zeros(2, 4), gn.tensor([3, 0]))
        tensor(1.3863)
    """

    _fn = staticmethod(F.cross_entropy)

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self.label_smoothing = label_smoothing

    def _extra(self):
        return {"label_smoothing": self.label_smoothing}


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C) at integer targets (N,), with
    PyTorch's ``weight``, ``ignore_index`` and ``reduction``.

    Example:
        >>> nn.NLLLoss()(nn.LogSoftmax(dim=1)(gn.zeros(2, 4)), gn.tensor([3, 0]))
        tensor(1.3863)
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
