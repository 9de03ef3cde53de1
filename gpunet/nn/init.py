"""Weight initialisers, drawn on the host from ``gpunet.random.host_rng()``.

Values are sampled in NumPy float64 and then cast and copied to the tensor's backend, so
``gn.manual_seed(n)`` gives the same initial model on every backend. The in-place forms
(``kaiming_uniform_(t)``) fill a tensor; the shape forms (``kaiming_uniform((6, 1, 5, 5))``)
return a new float32 tensor on the default backend.

Example:
    >>> gn.manual_seed(0)
    >>> layer = nn.Conv2d(1, 6, 5)
    >>> w = nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    >>> w is layer.weight, w.shape
    (True, gpunet.Size([6, 1, 5, 5]))
"""
from __future__ import annotations

import math

import numpy as np

from ..random import host_rng
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch recommends for ``nonlinearity`` (leaky_relu's slope is ``param``, default 0.01).

    The names are PyTorch's: linear, conv1d/2d/3d, conv_transpose1d/2d/3d, sigmoid (1), tanh
    (5/3), relu (sqrt 2), leaky_relu (sqrt(2 / (1 + slope^2))), selu (3/4); "identity" is 1 too.

    Example:
        >>> nn.init.calculate_gain("relu")
        1.4142135623730951
        >>> nn.init.calculate_gain("leaky_relu", 0.2) == (2 / 1.04) ** 0.5
        True
    """
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float, np.integer, np.floating)):
            raise ValueError(f"negative_slope {param} not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"nonlinearity must be one of {sorted(_GAINS) + ['leaky_relu']}, got {nonlinearity!r}")
    return _GAINS[nonlinearity]


def calculate_fan_in_and_fan_out(shape):
    """(fan_in, fan_out) of a weight: Linear (out, in); Conv (out, in, kH, kW) times the kernel area."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, host):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: tensor must be a gpunet Tensor, got {type(tensor).__name__}")
    tensor._data = tensor.backend.asarray(np.asarray(host).astype(tensor.dtype))
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    return _fill(tensor, host_rng().uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    return _fill(tensor, host_rng().normal(mean, std, tensor.shape))


def constant_(tensor, value):
    """Fill with ``value``."""
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan); PyTorch's Linear/Conv use a=sqrt(5).

    Example:
        >>> nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")    # doctest: +SKIP
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor.shape, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor.shape, mode)))


def xavier_uniform_(tensor, gain=1.0):
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def lecun_normal_(tensor):
    """LeCun normal: N(0, 1 / fan_in) (the plain, untruncated normal), for SELU-style nets."""
    return normal_(tensor, 0.0, 1.0 / math.sqrt(_fan(tensor.shape, "fan_in")))


def orthogonal_(tensor, gain=1.0):
    """Fill with a (semi-)orthogonal matrix times ``gain``, as PyTorch: the QR factor of a
    standard-normal (rows, numel // rows) draw, signs fixed by R's diagonal; trailing dims are
    flattened.  Rows <= cols gives W W^T = gain^2 I, rows > cols W^T W = gain^2 I.

    Example:
        >>> w = nn.init.orthogonal_(gn.zeros(3, 5), gain=2.0).numpy()
        >>> bool(np.allclose(w @ w.T, 4 * np.eye(3), atol=1e-5))
        True
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: tensor must be a gpunet Tensor, got {type(tensor).__name__}")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = host_rng().normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


def _shape_form(fill):
    def make(shape, *args, dtype=np.float32, backend=None, **kwargs):
        from ..tensor_factories import tensor as new_tensor

        return fill(new_tensor(np.zeros(tuple(shape), dtype), backend=backend), *args, **kwargs)

    make.__name__ = fill.__name__.rstrip("_")
    make.__doc__ = f"A new tensor of ``shape`` filled by ``{fill.__name__}`` (float32 unless ``dtype``)."
    return make


kaiming_uniform = _shape_form(kaiming_uniform_)
kaiming_normal = _shape_form(kaiming_normal_)
xavier_uniform = _shape_form(xavier_uniform_)
xavier_normal = _shape_form(xavier_normal_)
lecun_normal = _shape_form(lecun_normal_)
orthogonal = _shape_form(orthogonal_)

__all__ = [
    "calculate_fan_in_and_fan_out", "calculate_gain", "constant_", "kaiming_normal", "kaiming_normal_",
    "kaiming_uniform", "kaiming_uniform_", "lecun_normal", "lecun_normal_", "normal_", "ones_",
    "orthogonal", "orthogonal_",
    "uniform_", "xavier_normal", "xavier_normal_", "xavier_uniform", "xavier_uniform_", "zeros_",
]
