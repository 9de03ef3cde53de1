"""The functions users call: ``F.conv2d``, ``F.relu``, ``F.softmax_cross_entropy``…

Arguments follow PyTorch (NCHW images, linear weight ``(out, in)``). Bad input
raises ``ValueError``/``TypeError`` naming the argument, what it got and what it needs.

Example:
    >>> from gpunet import functional as F
    >>> y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), kernel_size=2)
"""
from __future__ import annotations

import math

import numpy as np

from . import ops  # the Functions, as ops.<family>.<Op>: the family names the kernel files
from .tensor import Tensor

from kernel_geometry import out_hw
from ._arg_checks import (REDUCTIONS, _conv2d_args, _pair, _reduction,  # noqa: F401
                          _same_shape, _tensor)


# --- layers -------------------------------------------------------------------
def linear(x, weight, bias=None, *, _relu=False):
    """x @ weight.T + bias, weight of shape (out_features, in_features).

    Example:
        >>> y = F.linear(x, w, b)      # x (N, 784), w (10, 784), b (10,) -> (N, 10)
    """
    _tensor("x", x)
    _tensor("weight", weight, 2)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) "
                         f"but weight (out, in) = {weight.shape} expects {weight.shape[1]}")
    if bias is not None and _tensor("bias", bias, 1).shape[0] != weight.shape[0]:
        raise ValueError(f"linear: bias has shape {bias.shape}, needs ({weight.shape[0]},)")
    return ops.conv.Linear.apply(x, weight, *([bias] if bias is not None else []), relu=_relu)


def linear_relu(x, weight, bias=None):
    """``relu(linear(x, weight, bias))`` with the bias and ReLU fused into one pass after the
    GEMM (and one pass back): the same values, fewer memory passes and kernel launches.

    Example:
        >>> y = F.linear_relu(x, w, b)  # == F.relu(F.linear(x, w, b))
    """
    return linear(x, weight, bias, _relu=True)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, _relu=False):
    """2-D cross-correlation: x (N,C,H,W), weight (K,C/groups,kH,kW), bias (K,) -> (N,K,Ho,Wo).

    ``dilation`` spaces the kernel taps; ``groups`` splits the channels into independent
    convolutions (``groups=C`` with K = C is a depthwise convolution), as in PyTorch.

    Example:
        >>> y = F.conv2d(x, w, b, stride=1, padding=2)
    """
    stride, padding, dilation = _conv2d_args(x, weight, bias, stride, padding, dilation, groups)
    extra = [bias] if bias is not None else []
    return ops.conv.Conv2d.apply(x, weight, *extra, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, relu=_relu)


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv2d(...))`` with the bias and ReLU fused into the conv's output pass (and the
    ReLU's backward into the bias-gradient pass): the same values, fewer passes and launches.

    Example:
        >>> y = F.conv2d_relu(x, w, b, padding=2)  # == F.relu(F.conv2d(x, w, b, padding=2))
    """
    return conv2d(x, weight, bias, stride, padding, dilation, groups, _relu=True)


def conv2d_relu_max_pool2d(x, weight, bias=None, stride=1, padding=0, pool=2):
    """``max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool)`` as one op (a plain
    conv; pool windows ``pool`` square with stride ``pool``): the same values, and on the NumPy
    backend the pooling runs on each chunk of the conv's output while it is in cache.

    Example:
        >>> y = F.conv2d_relu_max_pool2d(x, w, b, padding=2)  # LeNet's first block
    """
    stride, padding, _ = _conv2d_args(x, weight, bias, stride, padding, 1, 1)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f"conv2d_relu_max_pool2d: pool must be an int >= 1, got {pool!r}")
    conv_hw = out_hw(x.shape, weight.shape[2:], stride, padding)
    if min(conv_hw) < pool:
        raise ValueError(f"conv2d_relu_max_pool2d: the conv's output {conv_hw} is smaller than "
                         f"the pool window {pool}x{pool}")
    extra = [bias] if bias is not None else []
    return ops.conv.Conv2dReLUMaxPool.apply(x, weight, *extra, stride=stride, padding=padding, pool=pool)


def _pool_args(x, kernel_size, stride, padding):
    _tensor("x", x, 4)
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    for axis in (0, 1):
        if padding[axis] * 2 > kernel[axis]:
            raise ValueError(f"padding {padding} must be at most half of kernel_size {kernel}")
        if kernel[axis] > x.shape[2 + axis] + 2 * padding[axis]:
            raise ValueError(f"kernel_size {kernel} is larger than the padded input "
                             f"{x.shape[2:]} + 2*{padding}")
    return {"kernel": kernel, "stride": stride, "padding": padding}


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over kH×kW windows (stride defaults to the kernel size); ties go to the first maximum.

    ``ceil_mode=True`` rounds the output size up, so a partial last window counts (PyTorch's rule).

    Example:
        >>> F.max_pool2d(x, kernel_size=2).shape    # (N, C, H//2, W//2)
    """
    return ops.pooling.MaxPool2d.apply(x, **_pool_args(x, kernel_size, stride, padding),
                             ceil_mode=bool(ceil_mode))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over kH×kW windows (padded zeros counted, as PyTorch's default)."""
    return ops.pooling.AvgPool2d.apply(x, **_pool_args(x, kernel_size, stride, padding))


def flatten(x, start_dim=1):
    """Merge the dimensions from start_dim on: (N, C, H, W) -> (N, C*H*W) (also for N = 0)."""
    size = 1
    for s in x.shape[start_dim:]:
        size *= s
    return x.reshape(x.shape[:start_dim] + (size,))


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return ops.activation.Dropout.apply(_tensor("x", x), p=p)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over x (N, C, ...) per channel, as PyTorch's ``F.batch_norm``.

    Training: normalise with the batch mean and biased variance, and (when running stats
    are given) update them in place with ``momentum``. Eval: use the running statistics.

    Example:
        >>> y = F.batch_norm(x, rm, rv, gamma, beta, training=True)   # x (N, C, H, W)
    """
    _tensor("x", x, (2, 3, 4))
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and _tensor(name, t, 1).shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, needs ({c},) for x {x.shape}")
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias, or neither")
    affine = [weight, bias] if weight is not None else []
    if training or running_mean is None:
        if x.numel() // c <= 1:
            raise ValueError(f"batch_norm: training needs more than 1 value per channel, got input "
                             f"shape {x.shape}; use a batch larger than 1 or call model.eval()")
        running = None
        if training and running_mean is not None:
            running = (running_mean.data, running_var.data, momentum)
        return ops.normalization.BatchNorm.apply(x, *affine, eps=eps, running=running)
    shape = (1, c) + (1,) * (x.ndim - 2)
    scale = ((running_var + eps) ** -0.5).reshape(shape)
    y = (x - running_mean.reshape(shape)) * scale
    if affine:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y


def _tensor_list(fn, tensors):
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{fn}: tensors must be a non-empty list or tuple of gpunet Tensors")
    return tensors


def stack(tensors, dim=0, *, axis=None):
    """Join same-shaped tensors along a new dim (``axis=`` is an alias).

    Example:
        >>> F.stack([a, b], dim=0).shape     # a, b (2, 3) -> (2, 2, 3)
    """
    axis = dim if axis is None else axis
    tensors = _tensor_list("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return ops.math.Stack.apply(*tensors, axis=axis)


def concat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dim (their other dims must match); ``gn.cat`` too.

    Example:
        >>> F.concat([a, b], dim=1).shape    # a (2, 3), b (2, 5) -> (2, 8)
    """
    axis = dim if axis is None else axis
    tensors = _tensor_list("concat", tensors)
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated; stack them, "
                         "or reshape them to (1,) first")
    ax = ops.math._norm_axis(axis, ref.ndim)[0]
    for t in tensors:
        if t.ndim != ref.ndim or t.shape[:ax] + t.shape[ax + 1:] != ref.shape[:ax] + ref.shape[ax + 1:]:
            raise ValueError(f"concat: shapes {[u.shape for u in tensors]} differ outside axis {axis}")
    return ops.math.Concat.apply(*tensors, axis=ax)


cat = concat


# --- activations ----------------------------------------------------------------
def relu(x):
    """max(x, 0)."""
    return ops.activation.ReLU.apply(_tensor("x", x))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return ops.activation.Sigmoid.apply(_tensor("x", x))


def tanh(x):
    """Hyperbolic tangent."""
    return ops.activation.Tanh.apply(_tensor("x", x))


def _softmax_dim(fn, x, dim, axis):
    dim = dim if axis is None else axis
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{fn}(): argument 'dim' must be int, not {type(dim).__name__}")
    return ops.math.dim_index(int(dim), _tensor("x", x).ndim)


def softmax(x, dim=-1, *, axis=None):
    """exp(x) / sum(exp(x)) along ``dim`` (``axis=`` is an alias), shifted by the max for stability."""
    return ops.activation.Softmax.apply(x, axis=_softmax_dim("softmax", x, dim, axis))


def log_softmax(x, dim=-1, *, axis=None):
    """log(softmax(x)) along ``dim``, computed stably."""
    return ops.activation.LogSoftmax.apply(x, axis=_softmax_dim("log_softmax", x, dim, axis))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else ``negative_slope * x`` (PyTorch's default slope 0.01)."""
    return ops.activation.LeakyReLU.apply(_tensor("x", x), negative_slope=float(negative_slope))


def elu(x, alpha=1.0):
    """x where x > 0, else ``alpha * (exp(x) - 1)``."""
    return ops.activation.ELU.apply(_tensor("x", x), alpha=float(alpha))


def gelu(x, approximate="none"):
    """x * Phi(x) with the exact normal CDF, or its tanh form with ``approximate="tanh"``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return ops.activation.GELU.apply(_tensor("x", x), approximate=approximate)


def one_hot(labels, num_classes=-1):
    """(…,) integer class ids -> (…, num_classes) int64 one-hot, as ``F.one_hot``.

    Example:
        >>> F.one_hot(gn.tensor([0, 2]), 3).tolist()
        [[1, 0, 0], [0, 0, 1]]
    """
    labels = _tensor("labels", labels, float_=False)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    host = labels.numpy()
    n = int(host.max()) + 1 if num_classes == -1 and host.size else int(num_classes)
    if host.size and (host.min() < 0 or host.max() >= n):
        raise ValueError(f"one_hot: labels must be in [0, {n}), got values in "
                         f"[{host.min()}, {host.max()}]")
    out = (host[..., None] == np.arange(max(n, 0))).astype(np.int64)
    return Tensor(out, backend=labels.backend)


# --- losses -----------------------------------------------------------------------
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
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits {logits.shape}, "
                         f"got {labels.shape}")
    n_classes = logits.shape[1]
    if not logits.backend.checks_labels_on_device:  # the softmax-CE kernel flags them itself
        logits.backend.check_range(labels.data, 0, n_classes - 1,
                                   f"labels must be in [0, {n_classes}) for logits with {n_classes} classes")
    return ops.loss.SoftmaxCrossEntropy.apply(logits, labels, reduction=reduction)


cross_entropy = softmax_cross_entropy  # PyTorch's name


def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C) at integer targets (N,).

    Example:
        >>> F.nll_loss(F.log_softmax(logits, dim=1), labels)   # == F.cross_entropy(logits, labels)
    """
    _tensor("input", input, 2)
    if not isinstance(target, Tensor):
        target = Tensor(target, backend=input.backend)
    if target.dtype.kind not in "iu" or target.shape != (input.shape[0],):
        raise ValueError(f"nll_loss: target must be ({input.shape[0]},) integer class ids, got "
                         f"shape {target.shape} dtype {target.dtype}")
    input.backend.check_range(target.data, 0, input.shape[1] - 1,
                              f"nll_loss: target must be in [0, {input.shape[1]})")
    picked = input[input.backend.xp.arange(input.shape[0]), target.data]
    return ops.loss.apply_reduction(-picked, _reduction(reduction))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input - target)^2)."""
    target = _same_shape("mse_loss", _tensor("input", input), target)
    diff = input - target
    return ops.loss.apply_reduction(diff * diff, _reduction(reduction))


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error (MAE): mean(|input - target|)."""
    target = _same_shape("l1_loss", _tensor("input", input), target)
    return ops.loss.apply_reduction((input - target).abs(), _reduction(reduction))


def binary_cross_entropy(input, target, reduction="mean"):
    """BCE on probabilities in [0, 1]: -(t log p + (1-t) log(1-p))."""
    target = _same_shape("binary_cross_entropy", _tensor("input", input), target)
    input.backend.check_range(input.data, 0, 1, "binary_cross_entropy: input must be probabilities in [0, 1]",
                              "; use binary_cross_entropy_with_logits for raw scores")
    return ops.loss.BinaryCrossEntropy.apply(input, target, reduction=_reduction(reduction))


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE on raw scores: sigmoid and log fused so that large logits stay finite."""
    target = _same_shape("binary_cross_entropy_with_logits", _tensor("input", input), target)
    return ops.loss.BinaryCrossEntropyWithLogits.apply(input, target, reduction=_reduction(reduction))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(biased var + eps) * weight + bias over the last len(normalized_shape)
    dims (``nn.LayerNorm`` calls this).

    Example:
        >>> F.layer_norm(gn.ones(2, 3), 3).shape
        (2, 3)
    """
    _tensor("x", x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dims of the "
                         f"input, got input shape {x.shape}")
    if (weight is None) != (bias is None):  # the kernels take both or neither
        weight = weight if weight is not None else Tensor._wrap(x.backend.xp.ones(shape, x.dtype), x.backend)
        bias = bias if bias is not None else Tensor._wrap(x.backend.xp.zeros(shape, x.dtype), x.backend)
    params = [weight, bias] if weight is not None else []
    return ops.normalization.LayerNorm.apply(x, *params, normalized=len(shape), eps=float(eps))


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins: bin i of n over length L spans
    [floor(i*L/n), ceil((i+1)*L/n)).  Evenly dividing sizes take one avg_pool2d.

    Example:
        >>> F.adaptive_avg_pool2d(gn.ones(1, 2, 5, 7), (2, 3)).shape
        (1, 2, 2, 3)
    """
    _tensor("x", x, 4)
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    h, w = x.shape[2:]
    oh, ow = oh or h, ow or w  # None keeps that size
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    rows = []
    for i in range(oh):
        h0, h1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
        cols = [x[:, :, h0:h1, (j * w) // ow:math.ceil((j + 1) * w / ow)].mean(dim=(2, 3))
                for j in range(ow)]
        rows.append(stack(cols, dim=-1))
    return stack(rows, dim=-2)


def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, D) at the integer ids in ``input`` -> input.shape + (D,).

    Example:
        >>> F.embedding(gn.tensor([[1, 2]]), table).shape     # table (10, 4) -> (1, 2, 4)
    """
    from .ops.indexing import Embedding

    _tensor("weight", weight, 2)
    ids = input if isinstance(input, Tensor) else Tensor(input, backend=weight.backend)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer ids, got dtype {ids.dtype}")
    weight.backend.check_range(ids.data, 0, weight.shape[0] - 1,
                               f"embedding: ids must be in [0, {weight.shape[0]})")
    return Embedding.apply(weight, indices=ids.data, padding_idx=padding_idx)
