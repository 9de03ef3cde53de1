"""Resizing images: ``F.interpolate`` (nearest, bilinear) as one separable linear map.

Each output row (column) is a fixed mix of input rows (columns), so the op is
``y = A_h @ x @ A_w^T`` with small interpolation matrices built on the host from PyTorch's
source-index rules, and the backward is ``A_h^T @ gy @ A_w``: plain ``xp`` code, every backend.

Example:
    >>> F.interpolate(gn.arange(4.0).reshape(1, 1, 2, 2), scale_factor=2).shape
    gpunet.Size([1, 1, 4, 4])
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..function import Function
from ..tensor import Tensor


@functools.lru_cache(maxsize=64)  # an Upsample layer asks for the same few every step
def interpolation_matrix(n_in, n_out, mode, align_corners, scale):
    """(n_out, n_in) weights: which input rows each output row mixes, as PyTorch computes them
    (``scale`` is 1 / scale_factor when one was given, else n_in / n_out).  Cached: callers
    copy it (``astype``) and never write into it."""
    a = np.zeros((n_out, n_in))
    dst = np.arange(n_out)
    if mode == "nearest":
        a[dst, np.minimum(np.floor(dst * scale).astype(np.int64), n_in - 1)] = 1
        a.setflags(write=False)
        return a
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    np.add.at(a, (dst, lo), 1 - frac)
    np.add.at(a, (dst, hi), frac)
    a.setflags(write=False)
    return a


class Interpolate(Function):
    """``A_h @ x @ A_w^T`` over the last two dims of (N, C, H, W)."""

    @staticmethod
    def forward(ctx, x, a_h, a_w):
        xp = ctx.backend.xp
        ctx.a = (a_h, a_w)
        return xp.matmul(xp.matmul(a_h, x), a_w.T)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        a_h, a_w = ctx.a
        return (xp.matmul(xp.matmul(a_h.T, gy), a_w),)


def _pair(name, value, n):
    if value is None:
        return None
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n:
        raise ValueError(f"interpolate: {name} must be one number or {n} of them for a {n + 2}-D "
                         f"input, got {value!r}")
    return values


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, H, W) images to ``size`` or by ``scale_factor``, as ``F.interpolate``
    with ``mode`` "nearest" or "bilinear" (``align_corners`` as in PyTorch).

    Example:
        >>> F.interpolate(gn.tensor([[[[1.0, 2.0]]]]), size=(1, 4), mode="bilinear").tolist()
        [[[[1.0, 1.25, 1.75, 2.0]]]]
    """
    if not isinstance(input, Tensor) or input.ndim != 4:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"interpolate: gpunet resizes 4-D (N, C, H, W) tensors, got {got}")
    if mode not in ("nearest", "bilinear"):
        raise NotImplementedError(f"interpolate: mode={mode!r} is not in gpunet; use 'nearest' or "
                                  "'bilinear'")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not in gpunet")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    hw = input.shape[2:]
    scales = _pair("scale_factor", scale_factor, 2)
    if size is not None:
        out = tuple(int(s) for s in _pair("size", size, 2))
        ratios = [n / o for n, o in zip(hw, out)]
    else:
        out = tuple(int(math.floor(n * s)) for n, s in zip(hw, scales))
        ratios = ([n / o for n, o in zip(hw, out)] if recompute_scale_factor
                  else [1.0 / s for s in scales])
    if min(out) < 1:
        raise ValueError(f"interpolate: the output size {out} must be positive (input {tuple(input.shape)})")
    be = input.backend
    mats = [be.asarray(interpolation_matrix(n, o, mode, bool(align_corners), r).astype(input.dtype))
            for n, o, r in zip(hw, out, ratios)]
    return Interpolate.apply(input, a_h=mats[0], a_w=mats[1])
