"""Activations on NumPy: relu forward / backward in chunks over threads, leaky_relu, and the bias + ReLU
epilogue of a linear layer (``bias_relu_fwd`` / ``bias_relu_bwd``, as on cuda).

Example:
    >>> relu_fwd(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> relu_bwd(np.ones(3), np.array([0.0, 2.0, np.nan]))
    array([0., 1., 1.])
"""
from __future__ import annotations

import numpy as np

from . import _im2row
from ._parallel import chunk_for, parallel_for, scratch


ZERO_ROW = 1 << 14
_zero_rows: dict = {}


def relu_into(src, out):
    """``out[...] = max(src, 0)`` (NaN propagates; ``out`` may be ``src``).

    NumPy 2.4's ``maximum`` against a scalar runs 3x slower than against a row of zeros
    broadcast down the array (1M float32, one thread: 321 against 97 us), so C-contiguous
    arrays of a row or more are viewed as rows of ``ZERO_ROW`` and compared with a cached row.

    Example:
        >>> relu_into(np.array([-1.0, 0.5, np.nan]), np.empty(3)).tolist()
        [0.0, 0.5, nan]
    """
    n = src.size
    if n < ZERO_ROW or not (src.flags.c_contiguous and out.flags.c_contiguous) or src.dtype != out.dtype:
        return np.maximum(src, 0, out=out)
    zero = _zero_rows.get(src.dtype)
    if zero is None:
        zero = _zero_rows.setdefault(src.dtype, np.zeros(ZERO_ROW, src.dtype))
    whole = n - n % ZERO_ROW
    s, o = src.reshape(-1), out.reshape(-1)
    np.maximum(s[:whole].reshape(-1, ZERO_ROW), zero, out=o[:whole].reshape(-1, ZERO_ROW))
    if whole < n:
        np.maximum(s[whole:], 0, out=o[whole:])
    return out


def _per_thread(size):
    return chunk_for(12, size, 1 << 40)  # one chunk per thread (12 bytes read+written per item)



def _flat(a):
    """``a``'s elements in memory order as a 1-D view (C-contiguous, or a conv's channels-last
    output), else None."""
    if a.flags.c_contiguous:
        return a.reshape(-1)
    last = _im2row.channels_last(a)
    return None if last is None else last.reshape(-1)


def _like(ref, a):
    """``a``'s values in an array laid out as ``ref`` is (a gradient in its forward value's
    layout: a channels-last chain stays channels-last)."""
    out = np.empty_like(ref, dtype=a.dtype)
    np.copyto(out, a)
    return out


def relu_fwd(x):
    """max(x, 0) as a new array in ``x``'s layout (C-contiguous, or channels-last as a conv's
    output); NaN propagates (as in PyTorch)."""
    if _flat(x) is None:
        x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    xf, yf = _flat(x), _flat(y)
    parallel_for(xf.size, _per_thread(xf.size), lambda lo, hi: relu_into(xf[lo:hi], yf[lo:hi]))
    return y


def relu_bwd(gy, y):
    """``gy`` except where the forward output ``y`` <= 0 (so a NaN output passes it, as in PyTorch).

    ``y`` is a ReLU's output (every caller's), so ``y <= 0`` is ``y == 0`` (-0.0 included):
    one comparison instead of a comparison and a negation (1M floats, 2 threads: 308 -> 188 us)."""
    if gy.shape != y.shape:
        raise ValueError(f"relu_bwd: gy {gy.shape} and y {y.shape} differ")
    if _flat(y) is None:
        y = np.ascontiguousarray(y)
    if _flat(gy) is None or gy.strides != y.strides:  # gy in y's memory order (as gx is)
        gy = _like(y, gy)
    gf, yf = _flat(gy), _flat(y)
    gx = np.empty_like(gy)  # in gy's layout
    of = _flat(gx)

    def chunk(lo, hi):
        mask = scratch("relu-mask", (hi - lo,), np.bool_)
        np.not_equal(yf[lo:hi], 0, out=mask)
        np.multiply(gf[lo:hi], mask, out=of[lo:hi])

    parallel_for(gf.size, _per_thread(gf.size), chunk)
    return gx


def leaky_relu_fwd(x, negative_slope):
    """x where x > 0, else ``negative_slope * x``, as a new array (NaN propagates).

    Example:
        >>> leaky_relu_fwd(np.array([-2.0, 3.0]), 0.5)
        array([-1.,  3.])
    """
    slope = x.dtype.type(negative_slope)
    return np.where(x > 0, x, x * slope)


def leaky_relu_bwd(gy, x, negative_slope):
    """``gy`` where the forward input ``x`` > 0, else ``negative_slope * gy`` (PyTorch's rule:
    x = 0 and NaN take the slope).

    Example:
        >>> leaky_relu_bwd(np.ones(3), np.array([-2.0, 0.0, 3.0]), 0.5)
        array([0.5, 0.5, 1. ])
    """
    if gy.shape != x.shape:
        raise ValueError(f"leaky_relu_bwd: gy {gy.shape} and x {x.shape} differ")
    return np.where(x > 0, gy, gy * gy.dtype.type(negative_slope))


def bias_relu_fwd(y, bias, relu):
    """``y`` (M, F): add ``bias`` (or None) and apply a ReLU when ``relu``, in place; returns y.

    Example:
        >>> bias_relu_fwd(np.array([[-2.0, 1.0]]), np.array([1.0, 1.0]), True)
        array([[0., 2.]])
    """
    if y.ndim != 2 or not y.flags.c_contiguous:
        raise ValueError(f"bias_relu_fwd: y must be a C-contiguous (M, F) array, got shape {y.shape}")
    if bias is not None:
        y += bias
    if relu:
        relu_into(y, y)
    return y


def bias_relu_bwd(gy, y, relu, need_bias):
    """``(g, gb)``: ``gy`` masked where ``y`` <= 0 (``gy`` itself unless ``relu``) and its
    column sums (None unless ``need_bias``)."""
    g = relu_bwd(gy, y) if relu else gy
    return g, (g.sum(axis=0) if need_bias else None)
