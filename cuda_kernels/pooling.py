"""Pooling kernels on NCHW arrays: max pooling (argmax saved) and average pooling.

Kernels see NCHW arrays as ``(N*C, H, W)`` planes, so a flat index splits into
(plane, h, w) with two integer divisions.  Forward kernels run one thread per output element.
Backward kernels run one thread per *input* element and gather over the output windows that
cover it, so overlapping windows (kernel > stride) need no atomics and the sums are
deterministic.

Example:
    >>> from cuda_kernels import pooling                           # doctest: +SKIP
    >>> y, am = pooling.max_pool2d_fwd(x, (3, 3), (2, 2), (1, 1))  # doctest: +SKIP
    >>> gx = pooling.max_pool2d_bwd(gy, am, x.shape, (3, 3), (2, 2), (1, 1))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from kernel_geometry import int_geometry, out_hw

from . import _launch
from ._device import covering_windows, unravel_plane
from .conv import conv2d_bwd_bias_relu, conv2d_fwd


@_launch.cached_jit
def max_pool2d_fwd_kernel(x, y, argmax, kh, kw, sh, sw, ph, pw, lowest):
    """y = window max; argmax = h * W + w of the first maximum in row-major window order.

    ``lowest`` is -inf typed like x (keeps float32 kernels free of float64 arithmetic).
    """
    H, W = x.shape[1], x.shape[2]
    Ho, Wo = y.shape[1], y.shape[2]
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        pl, oh, ow = unravel_plane(i, Ho, Wo)
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        best = lowest
        idx = -1
        for a in range(kh):
            h = h0 + a
            if h >= 0 and h < H:
                for b in range(kw):
                    w = w0 + b
                    if w >= 0 and w < W:
                        v = x[pl, h, w]
                        # Padding is -inf and never wins; a strict '>' keeps the first
                        # maximum on ties; a NaN always takes over, so the last NaN wins
                        # (PyTorch's rule).
                        if idx < 0 or v > best or v != v:
                            best = v
                            idx = h * W + w
        y[pl, oh, ow] = best
        argmax[pl, oh, ow] = idx


@_launch.cached_jit
def max_pool2d_bwd_kernel(gy, argmax, gx, kh, kw, sh, sw, ph, pw, zero):
    """gx[h, w] = sum of gy over the windows covering (h, w) whose argmax is (h, w)."""
    H, W = gx.shape[1], gx.shape[2]
    Ho, Wo = gy.shape[1], gy.shape[2]
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        pl, h, w = unravel_plane(i, H, W)
        oh_lo, oh_hi = covering_windows(h, ph, kh, sh, Ho)
        ow_lo, ow_hi = covering_windows(w, pw, kw, sw, Wo)
        me = h * W + w
        acc = zero
        for oh in range(oh_lo, oh_hi + 1):
            for ow in range(ow_lo, ow_hi + 1):
                if argmax[pl, oh, ow] == me:
                    acc += gy[pl, oh, ow]
        gx[pl, h, w] = acc


@_launch.cached_jit
def avg_pool2d_fwd_kernel(x, y, kh, kw, sh, sw, ph, pw, zero, inv):
    """y = window sum * inv, inv = 1 / (kh * kw): padded zeros count in the divisor."""
    H, W = x.shape[1], x.shape[2]
    Ho, Wo = y.shape[1], y.shape[2]
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        pl, oh, ow = unravel_plane(i, Ho, Wo)
        h0 = oh * sh - ph
        w0 = ow * sw - pw
        acc = zero
        for a in range(kh):
            h = h0 + a
            if h >= 0 and h < H:
                for b in range(kw):
                    w = w0 + b
                    if w >= 0 and w < W:
                        acc += x[pl, h, w]
        y[pl, oh, ow] = acc * inv


@_launch.cached_jit
def avg_pool2d_bwd_kernel(gy, gx, kh, kw, sh, sw, ph, pw, zero, inv):
    """gx[h, w] = sum of gy * inv over the windows covering (h, w), inv = 1 / (kh * kw)."""
    H, W = gx.shape[1], gx.shape[2]
    Ho, Wo = gy.shape[1], gy.shape[2]
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        pl, h, w = unravel_plane(i, H, W)
        oh_lo, oh_hi = covering_windows(h, ph, kh, sh, Ho)
        ow_lo, ow_hi = covering_windows(w, pw, kw, sw, Wo)
        acc = zero
        for oh in range(oh_lo, oh_hi + 1):
            for ow in range(ow_lo, ow_hi + 1):
                acc += gy[pl, oh, ow] * inv
        gx[pl, h, w] = acc


def _out_shape(x_shape, kernel, stride, padding, ceil_mode=False):
    return tuple(x_shape[:2]) + out_hw(x_shape, kernel, stride, padding, ceil_mode=ceil_mode)


def _planes(a):
    """A C-contiguous NCHW array viewed as (N*C, H, W) planes."""
    return a.reshape(-1, a.shape[-2], a.shape[-1])


def max_pool2d_fwd(x, kernel, stride, padding, keep_argmax=True, ceil_mode=False):
    """Max pooling of NCHW ``x``; returns ``(y, argmax)`` (argmax: per-plane flat index).

    Example:
        >>> y, am = max_pool2d_fwd(x, (2, 2), (2, 2), (0, 0))   # doctest: +SKIP
    """
    x = _launch.contiguous(x)
    shape = _out_shape(x.shape, kernel, stride, padding, ceil_mode)  # windows past the edge skip it
    y = _launch.xp.empty(shape, dtype=x.dtype)
    idx_t = np.int32 if x.shape[2] * x.shape[3] < 2**31 else np.int64
    argmax = _launch.xp.empty(shape, dtype=idx_t)
    _launch.launch(max_pool2d_fwd_kernel, _launch.blocks_for(y.size), _launch.TPB,
                   _planes(x), _planes(y), _planes(argmax), *int_geometry(kernel, stride, padding),
                   _launch.scalar(-np.inf, x.dtype))
    return y, argmax


def max_pool2d_bwd(gy, saved, x_shape, kernel, stride, padding, ceil_mode=False):
    """Route ``gy`` to the argmax positions, summing where windows overlap.

    Example:
        >>> gx = max_pool2d_bwd(gy, am, x.shape, (2, 2), (2, 2), (0, 0))   # doctest: +SKIP
    """
    argmax = saved  # the forward's per-plane flat argmax
    gy = _launch.contiguous(gy)
    gx = _launch.xp.empty(tuple(x_shape), dtype=gy.dtype)
    _launch.launch(max_pool2d_bwd_kernel, _launch.blocks_for(gx.size), _launch.TPB,
                   _planes(gy), _planes(_launch.contiguous(argmax)), _planes(gx),
                   *int_geometry(kernel, stride, padding),
                   _launch.scalar(0, gy.dtype))
    return gx


def avg_pool2d_fwd(x, kernel, stride, padding):
    """Average pooling of NCHW ``x`` (count_include_pad=True).

    Example:
        >>> y = avg_pool2d_fwd(x, (2, 2), (2, 2), (0, 0))   # doctest: +SKIP
    """
    x = _launch.contiguous(x)
    y = _launch.xp.empty(_out_shape(x.shape, kernel, stride, padding), dtype=x.dtype)
    _launch.launch(avg_pool2d_fwd_kernel, _launch.blocks_for(y.size), _launch.TPB,
                   _planes(x), _planes(y), *int_geometry(kernel, stride, padding),
                   _launch.scalar(0, x.dtype),
                   _launch.scalar(1.0 / (kernel[0] * kernel[1]), x.dtype))
    return y


def avg_pool2d_bwd(gy, x_shape, kernel, stride, padding):
    """Spread ``gy / (kh * kw)`` over every window, summing where windows overlap.

    Example:
        >>> gx = avg_pool2d_bwd(gy, x.shape, (2, 2), (2, 2), (0, 0))   # doctest: +SKIP
    """
    gy = _launch.contiguous(gy)
    gx = _launch.xp.empty(tuple(x_shape), dtype=gy.dtype)
    _launch.launch(avg_pool2d_bwd_kernel, _launch.blocks_for(gx.size), _launch.TPB,
                   _planes(gy), _planes(gx), *int_geometry(kernel, stride, padding),
                   _launch.scalar(0, gy.dtype),
                   _launch.scalar(1.0 / (kernel[0] * kernel[1]), gy.dtype))
    return gx


# --- conv -> ReLU -> max pool, as one primitive (on the GPU: the kernels above, composed) ---
def conv2d_relu_max_pool_fwd(x, w, b, stride, padding, pool, keep_cols=True, keep_argmax=True):
    """``max_pool2d(relu(conv2d(x, w, b)), pool)`` (pool windows ``pool`` square, stride
    ``pool``); returns ``(pooled, cols, saved)``: the pooled output, the conv's columns for
    the weight gradient (or None) and what :func:`conv2d_relu_max_pool_bwd` needs.

    On the GPU this is the conv (its epilogue adds the bias and applies the ReLU) and the pool
    kernel: the NumPy twin fuses the pool into the conv's chunks, to save memory passes.

    Example:
        >>> p, cols, saved = conv2d_relu_max_pool_fwd(x, w, b, (1, 1), (2, 2), 2)  # doctest: +SKIP
    """
    y, cols = conv2d_fwd(x, w, b, stride, padding, keep_cols=keep_cols, relu=True)
    pooled, argmax = max_pool2d_fwd(y, (pool, pool), (pool, pool), (0, 0), keep_argmax=keep_argmax)
    return pooled, cols, (y, argmax, pool)


def conv2d_relu_max_pool_bwd(gp, saved, need_bias=True, write_g=True):
    """``(g, gb)`` from the pooled output's gradient: g is the conv output's gradient (the pool
    routed back, masked by the ReLU) in the layout the conv's backward GEMMs read, gb the bias
    gradient (None unless ``need_bias``); see ``conv.conv2d_bwd_bias_relu``.

    Example:
        >>> g, gb = conv2d_relu_max_pool_bwd(gp, saved)   # doctest: +SKIP
    """
    y, argmax, pool = saved
    gy = max_pool2d_bwd(gp, argmax, y.shape, (pool, pool), (pool, pool), (0, 0))
    return conv2d_bwd_bias_relu(gy, y, True, need_bias, write_g)
