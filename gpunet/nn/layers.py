"""Layers: Linear, Conv2d, pooling (adaptive too), activations, Flatten, Embedding (and, from
``nn/dropout.py``, Dropout and Dropout2d).

Forward passes call gpunet.functional; Embedding's backward is the backends' deterministic
``embedding_bwd`` kernel.

Defaults follow PyTorch: Linear and Conv2d weights are kaiming_uniform(a=sqrt(5)), biases
U(-1/sqrt(fan_in), 1/sqrt(fan_in)); parameters are float32 unless ``dtype=`` says otherwise
and live on the default backend unless ``backend=`` says otherwise.

Example:
    >>> conv = nn.Conv2d(1, 6, kernel_size=5, padding=2)
    >>> conv(x).shape                       # x (N, 1, 28, 28) -> (N, 6, 28, 28)
    gpunet.Size([4, 6, 28, 28])
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import backends
from ..tensor import Tensor
from . import init
from .dropout import Dropout, Dropout2d, dropout2d  # noqa: F401  (re-exported: their old home)
from .module import Module, Parameter


def _positive_int(layer, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _empty(shape, dtype, backend):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating-point type (float32 or float64), got {dtype}")
    be = backends.resolve(backend)
    return Parameter(Tensor._wrap(be.asarray(np.zeros(shape, dtype)), be))


def _conv_geometry(layer, module, in_channels, out_channels, kernel_size, stride, padding, dilation,
                   groups):
    """Check and set a conv layer's channels, kernel_size, stride, padding, dilation and groups."""
    module.in_channels = _positive_int(layer, "in_channels", in_channels)
    module.out_channels = _positive_int(layer, "out_channels", out_channels)
    module.kernel_size = F._pair("kernel_size", kernel_size, 1)
    module.stride = F._pair("stride", stride, 1)
    module.padding = F._pair("padding", padding, 0)
    module.dilation = F._pair("dilation", dilation, 1)
    module.groups = _positive_int(layer, "groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: groups={groups} must divide in_channels ({in_channels}) "
                         f"and out_channels ({out_channels})")


def _conv_repr(module, optional):
    """PyTorch's conv extra_repr: channels, kernel and stride, then each of ``optional``
    (name, default) that differs, then groups and bias."""
    s = (f"{module.in_channels}, {module.out_channels}, kernel_size={module.kernel_size}, "
         f"stride={module.stride}")
    for name, default in optional:
        if getattr(module, name) != default:
            s += f", {name}={getattr(module, name)}"
    if module.groups != 1:
        s += f", groups={module.groups}"
    return s + ("" if module.bias is not None else ", bias=False")


def _reset_like_pytorch(weight, bias):
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight.shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x @ W.T + b with W (out_features, in_features).

    Example:
        >>> fc = nn.Linear(784, 10)
        >>> fc(gn.tensor(np.zeros((32, 784), np.float32))).shape
        gpunet.Size([32, 10])
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, backend=None):
        super().__init__()
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        self.weight = _empty((self.out_features, self.in_features), dtype, backend)
        if bias:
            self.bias = _empty((self.out_features,), dtype, backend)
        else:
            self.register_parameter("bias", None)
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x):
        """``relu(self(x))`` in one fused epilogue (what ``nn.Sequential`` calls for Linear, ReLU)."""
        return F.linear_relu(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) with weight (out_channels, in_channels, kH, kW).

    Example:
        >>> conv = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, backend=None):
        super().__init__()
        _conv_geometry("Conv2d", self, in_channels, out_channels, kernel_size, stride, padding,
                       dilation, groups)
        self.weight = _empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size,
                             dtype, backend)
        if bias:
            self.bias = _empty((self.out_channels,), dtype, backend)
        else:
            self.register_parameter("bias", None)
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, x):
        if isinstance(x, Tensor) and x.ndim != 4:
            hint = " (add a batch axis with x.reshape((1,) + x.shape))" if x.ndim == 3 else ""
            raise ValueError(f"Conv2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}{hint}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def forward_relu(self, x):
        """``relu(self(x))`` in one fused epilogue (what ``nn.Sequential`` calls for Conv2d, ReLU)."""
        if isinstance(x, Tensor) and x.ndim != 4:
            return self.forward(x)  # raises the clear error
        return F.conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             self.groups)

    def forward_relu_max_pool(self, x, pool):
        """``max_pool2d(relu(self(x)), pool)`` as one op (what ``nn.Sequential`` calls for
        Conv2d, ReLU, MaxPool2d(pool) when the conv has no groups or dilation)."""
        if isinstance(x, Tensor) and x.ndim != 4:
            return self.forward(x)  # raises the clear error
        return F.conv2d_relu_max_pool2d(x, self.weight, self.bias, self.stride, self.padding, pool)

    def extra_repr(self):
        return _conv_repr(self, (("padding", (0, 0)), ("dilation", (1, 1))))


class _Pool2d(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        F._pair("kernel_size", kernel_size, 1)  # fail early on nonsense
        if stride is not None:
            F._pair("stride", stride, 1)
        F._pair("padding", padding, 0)

    def forward(self, x):
        if isinstance(x, Tensor) and x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kernel windows (stride defaults to kernel_size).

    Example:
        >>> nn.MaxPool2d(2)(x).shape            # (N, C, H, W) -> (N, C, H//2, W//2)
        gpunet.Size([4, 1, 14, 14])
    """

    _fn = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding)
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, bool(ceil_mode)
        if dilation not in (1, (1, 1)) or return_indices:  # refused now, not at the first call
            F.max_pool2d(Tensor(np.zeros((1, 1, 1, 1), np.float32)), 1, dilation=dilation,
                         return_indices=return_indices)

    def forward(self, x):
        if isinstance(x, Tensor) and x.ndim != 4:
            raise ValueError(f"MaxPool2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_Pool2d):
    """Mean over kernel windows (stride defaults to kernel_size; padded zeros counted).

    Example:
        >>> nn.AvgPool2d(2, stride=2)(gn.tensor([[[[1., 2.], [3., 6.]]]]))
        tensor([[[[3.]]]])
    """

    _fn = staticmethod(F.avg_pool2d)


class ReLU(Module):
    """max(x, 0), as PyTorch's ``nn.ReLU(inplace=False)``.

    ``inplace=True`` (``nn.ReLU(True)``) is accepted and gives the same values and gradients,
    but gpunet returns a new tensor: the input keeps its values (an in-place write would
    corrupt what other ops saved for backward, which PyTorch guards with version counters).

    Example:
        >>> nn.ReLU(True)
        ReLU(inplace=True)
        >>> nn.ReLU()(gn.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """1 / (1 + exp(-x)). Example: ``nn.Sigmoid()(x)``."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x). Example: ``nn.Tanh()(x)``."""

    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    """softmax along ``dim`` (default the last). Example: ``nn.Softmax(dim=1)(logits)``."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, axis=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably. Example: ``nn.LogSoftmax(dim=1)(logits)``."""

    def forward(self, x):
        return F.log_softmax(x, axis=self.dim)


class Flatten(Module):
    """Merge the dimensions from ``start_dim`` (default 1): (N, C, H, W) -> (N, C*H*W).

    Example:
        >>> nn.Flatten()(x).shape
        gpunet.Size([4, 784])
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        if self.end_dim in (-1, x.ndim - 1):
            return F.flatten(x, self.start_dim)
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder layer)."""

    def forward(self, x):
        return x


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size whatever the input size. Example: ``nn.AdaptiveAvgPool2d((1, 1))``."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise ValueError(f"AdaptiveAvgPool2d: input must be a 4-D (N, C, H, W) Tensor, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of ``embedding_dim``, initialised N(0, 1).

    Example:
        >>> emb = nn.Embedding(1000, 64, padding_idx=0)
        >>> emb(gn.tensor([[5, 9, 0]])).shape
        gpunet.Size([1, 3, 64])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32,
                 backend=None):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx must be in [-{num_embeddings}, "
                             f"{num_embeddings}), got {padding_idx}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        from .. import random as _random

        table = _random.host_rng().standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if self.padding_idx is not None:
            table[self.padding_idx] = 0
        self.weight = Parameter(backends.resolve(backend).asarray(table))

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
