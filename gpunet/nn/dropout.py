"""Dropout layers: ``nn.Dropout`` (elements) and ``nn.Dropout2d`` with its functional form
``dropout2d`` (whole channels), each the identity in eval mode, as in PyTorch."""
from __future__ import annotations

import warnings

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p)); identity in eval.

    Example:
        >>> drop = nn.Dropout(0.5).eval()
        >>> drop(x) is x
        True
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.inplace = bool(inplace)  # accepted as in PyTorch; the result is a new tensor

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels ``input[n, c]`` with probability p and scale the rest by 1/(1-p),
    as ``torch.nn.functional.dropout2d`` (identity when not training).

    A 3-D input is read as (N, C, L), as PyTorch does (it warns); other ranks warn too.
    ``inplace`` is accepted; the result is a new tensor.

    Example:
        >>> y = nn.functional.dropout2d(gn.ones(2, 3, 4, 4), p=0.5)
        >>> rows = y.numpy().reshape(6, 16).tolist()      # one row per (n, c) channel
        >>> all(len(set(r)) == 1 and r[0] in (0.0, 2.0) for r in rows)
        True
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout2d: input must be a gpunet Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"dropout2d: input needs a batch and a channel dim (N, C, ...), got "
                         f"shape {tuple(input.shape)}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated; use dropout instead (dropout2d is for 3-D or 4-D inputs)",
                      stacklevel=2)
    elif input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim (PyTorch's behaviour)", stacklevel=2)
    if not training or p == 0:
        return input
    be, dtype = input.backend, input.dtype
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    if p == 1:
        mask = be.asarray(np.zeros(shape, dtype))
    else:
        mask = (be.rand(shape, dtype) >= p) * dtype.type(1.0 / (1.0 - p))
    return input * Tensor._wrap(mask.astype(dtype), be)


class Dropout2d(Module):
    """Zero whole channels (N, C, H, W) -> each (n, c) map with probability p while training,
    scaling the rest by 1/(1-p); identity in eval, as ``torch.nn.Dropout2d``.

    Example:
        >>> drop = nn.Dropout2d(0.25)
        >>> drop
        Dropout2d(p=0.25, inplace=False)
        >>> drop.eval()(x) is x
        True
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = bool(inplace)  # accepted as in PyTorch; the result is a new tensor

    def forward(self, input):
        return dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
