"""Layer normalisation, adaptive average pooling and embeddings, as PyTorch defines them.

Layer norm runs the backends' fused ``layer_norm_fwd`` / ``layer_norm_bwd`` kernels and the
embedding's backward the ``embedding_bwd`` kernel; adaptive pooling is written with
differentiable tensor ops (slicing and means), so autograd derives its gradient.

Example:
    >>> nn.LayerNorm(16)(x).shape             # x (..., 16): each row normalised on its own
    >>> nn.AdaptiveAvgPool2d(1)(x).shape      # (N, C, H, W) -> (N, C, 1, 1)
"""
from __future__ import annotations

import math

import numpy as np

from .. import backends
from .. import functional as F
from ..tensor import Tensor
from .module import Module, Parameter


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(biased var + eps) * weight + bias over the last len(normalized_shape) dims."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dims of the "
                         f"input, got input shape {x.shape}")
    from ..ops.normalization import LayerNorm as LayerNormOp

    if (weight is None) != (bias is None):  # the kernels take both or neither
        weight = weight if weight is not None else Tensor._wrap(x.backend.xp.ones(shape, x.dtype), x.backend)
        bias = bias if bias is not None else Tensor._wrap(x.backend.xp.zeros(shape, x.dtype), x.backend)
    params = [weight, bias] if weight is not None else []
    return LayerNormOp.apply(x, *params, normalized=len(shape), eps=float(eps))


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
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins: bin i of n over length L spans
    [floor(i*L/n), ceil((i+1)*L/n)).  Evenly dividing sizes take one avg_pool2d."""
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    h, w = x.shape[2:]
    oh, ow = oh or h, ow or w  # None keeps that size
    if h % oh == 0 and w % ow == 0:
        return F.avg_pool2d(x, (h // oh, w // ow))
    rows = []
    for i in range(oh):
        h0, h1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
        cols = [x[:, :, h0:h1, (j * w) // ow:math.ceil((j + 1) * w / ow)].mean(dim=(2, 3))
                for j in range(ow)]
        rows.append(F.stack(cols, dim=-1))
    return F.stack(rows, dim=-2)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size whatever the input size. Example: ``nn.AdaptiveAvgPool2d((1, 1))``."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise ValueError(f"AdaptiveAvgPool2d: input must be a 4-D (N, C, H, W) Tensor, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of ``embedding_dim``, initialised N(0, 1).

    Example:
        >>> emb = nn.Embedding(1000, 64, padding_idx=0)
        >>> emb(gn.tensor([[5, 9, 0]])).shape        # (1, 3, 64)
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
