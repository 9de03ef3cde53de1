"""Batch normalisation layers with running statistics (used in eval mode), and layer
normalisation (on the backends' fused ``layer_norm_fwd`` / ``layer_norm_bwd`` kernels), as in PyTorch.

Training mode normalises with the batch mean and biased variance and updates
``running_mean`` / ``running_var`` (unbiased) with ``momentum``; eval mode uses them.

Example:
    >>> bn = nn.BatchNorm2d(1)
    >>> y = bn(x)                 # x (N, 1, H, W); updates bn.running_mean
    >>> y.shape, bool(bn.running_mean.abs().sum() > 0)
    (gpunet.Size([4, 1, 28, 28]), True)
    >>> y = bn.eval()(x)          # normalises with the running statistics
"""
from __future__ import annotations

import numpy as np

from .. import backends
from .. import functional as F
from ..tensor import Tensor
from .module import Module, Parameter


def _const(values, dtype, be):
    return Tensor._wrap(be.asarray(np.asarray(values, dtype=dtype)), be)


class _BatchNorm(Module):
    _ndims: tuple = ()
    _layout: str = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32, backend=None, *, bias=True):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"{name}: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None (cumulative average), got {momentum!r}")
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"{name}: dtype must be floating point, got {np.dtype(dtype)}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        be = backends.resolve(backend)
        c = self.num_features
        if affine:  # bias=False (PyTorch 2.13's keyword): a scale without a shift
            self.weight = Parameter(_const(np.ones(c), dtype, be))
            if bias:
                self.bias = Parameter(_const(np.zeros(c), dtype, be))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _const(np.zeros(c), dtype, be))
            self.register_buffer("running_var", _const(np.ones(c), dtype, be))
            self.register_buffer("num_batches_tracked", _const(0, np.int64, be))
        else:
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buf, None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def _check_input(self, x):
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a gpunet Tensor, got {type(x).__name__}")
        if x.ndim not in self._ndims:
            raise ValueError(f"{name}: input must be {self._layout}, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {x.shape[1]} channels (shape {tuple(x.shape)}) but the layer "
                             f"was built for num_features={self.num_features}")

    def forward(self, x):
        return self._normalise(x, relu=False)

    def forward_relu(self, x):
        """``relu(self(x))`` in the same pass (what ``nn.Sequential`` calls for BatchNorm, ReLU)
        where the batch's statistics are used; with the running ones, the two ops."""
        if not self.training and self.track_running_stats:  # eval: no fused kernel to gain
            return F.relu(self(x))
        return self._normalise(x, relu=True)

    def forward_relu_max_pool(self, x, pool):
        """``max_pool2d(relu(self(x)), pool)`` as one op (what ``nn.Sequential`` calls for
        BatchNorm2d, ReLU, MaxPool2d(pool)) where the batch's statistics are used and the
        planes are at least ``pool`` square; otherwise the ops in turn."""
        if ((not self.training and self.track_running_stats) or not isinstance(x, Tensor)
                or x.ndim != 4 or min(x.shape[2:]) < pool):
            return F.max_pool2d(self.forward_relu(x), pool)
        return self._normalise(x, relu=True, pool=pool)

    def _normalise(self, x, relu, pool=0):
        self._check_input(x)
        use_batch = self.training or not self.track_running_stats
        factor = self.momentum
        if self.training and self.track_running_stats:
            count = self.num_batches_tracked._data
            count += 1  # in place: a CUDA-graph capture replays the add on this buffer
            if factor is None:  # cumulative moving average: needs the count on the host
                factor = 1.0 / float(self.num_batches_tracked.item())
        stats = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        return F.batch_norm(x, *stats, self.weight, self.bias, training=use_batch,
                            momentum=factor, eps=self.eps, _relu=relu, _pool=pool)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per feature C.

    Example:
        >>> nn.BatchNorm1d(64)(gn.tensor(np.random.randn(8, 64).astype("float32"))).shape
        gpunet.Size([8, 64])
    """

    _ndims, _layout = (2, 3), "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C.

    Example:
        >>> nn.BatchNorm2d(6)(gn.randn(2, 6, 5, 5)).shape
        gpunet.Size([2, 6, 5, 5])
    """

    _ndims, _layout = (4,), "4-D (N, C, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its last dims; learnable ``weight`` (ones) and ``bias`` (zeros).

    Example:
        >>> ln = nn.LayerNorm(64)          # PyTorch's names: weight, bias; eps=1e-5
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float32, backend=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got {normalized_shape!r}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        be = backends.resolve(backend)
        self.weight = Parameter(be.asarray(np.ones(shape, dtype))) if elementwise_affine else None
        self.bias = (Parameter(be.asarray(np.zeros(shape, dtype)))
                     if elementwise_affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
