"""Activation modules beyond ReLU/Sigmoid/Tanh, with PyTorch's names and defaults.

Example:
    >>> nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): GELU(approximate='none')
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
"""
from __future__ import annotations

from .. import functional as F
from .module import Module


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``. Example: ``nn.LeakyReLU(0.1)(x)``.

    ``inplace`` is accepted as in PyTorch (see ``nn.ReLU``)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x where x > 0, else ``alpha * (exp(x) - 1)``. Example: ``nn.ELU()(x)``.

    ``inplace`` is accepted as in PyTorch (see ``nn.ReLU``)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x) (exact), or its tanh form with ``approximate="tanh"``. Example: ``nn.GELU()(x)``."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"
