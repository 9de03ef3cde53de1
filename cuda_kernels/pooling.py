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
from numba import cuda, int32

from kernel_geometry import int_geometry, out_hw

from . import _launch, checks
from ._device import add_channel_split, covering_windows, unravel_plane
from .conv import conv2d_gemm

SHARED = _launch.SHARED_SIZE


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


# --- conv -> ReLU -> max pool, as one primitive: the GEMM and one kernel each way --------

@_launch.cached_jit
def conv2d_relu_max_pool_fwd_kernel(src, bias, has_bias, pooled, argmax, keep_argmax, pool, Wo,
                                    lowest, zero):
    """pooled[n, k, oh, ow] = the max over its pool x pool window of relu(src[k, n, h*Wo + w] +
    bias[k]), read straight from the conv's GEMM output (K, N, Ho*Wo): the epilogue and the pool
    in one pass.  argmax = h * Wo + w of the first maximum (a NaN takes over, as in
    max_pool2d_fwd_kernel), or -1 where the max is <= 0: no gradient passes the ReLU there."""
    N, K, PH, PW = pooled.shape
    for i in range(cuda.grid(1), pooled.size, cuda.gridsize(1)):
        plane = i // (PH * PW)
        r = i - plane * (PH * PW)
        oh = r // PW
        ow = r - oh * PW
        n = plane // K
        k = plane - n * K
        best = lowest
        idx = -1
        for a in range(pool):
            h = oh * pool + a
            for b in range(pool):
                w = ow * pool + b
                v = src[k, n, h * Wo + w]
                if has_bias:
                    v += bias[k]
                if v <= 0:
                    v = zero
                if idx < 0 or v > best or v != v:
                    best = v
                    idx = h * Wo + w
        pooled[n, k, oh, ow] = best
        if keep_argmax:
            argmax[n, k, oh, ow] = -1 if best <= 0 else idx


def _make_pool_bwd(acc_t):
    @_launch.cached_jit
    def conv2d_relu_max_pool_bwd_kernel(gp, argmax, g, gb, write_g, has_bias, pool, Wo, per,
                                        partial, tickets):
        """Block (k, s): g[k, n*P + p] = gp[n, k, oh, ow] where p is its window's argmax, else 0,
        for the ``per`` images n of split s (windows do not overlap: each p has at most one);
        gb[k] = their sum, split by split as conv2d_epilogue_bwd_kernel adds it."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        K, NP = g.shape
        N, _, PH, PW = gp.shape
        P = NP // N
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        s = cuda.blockIdx.y
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            acc = acc_t(0)
            for n in range(s * per, min(N, s * per + per)):
                for p in range(t, P, nt):
                    h = p // Wo
                    oh = h // pool
                    ow = (p - h * Wo) // pool
                    v = acc_t(0)
                    if oh < PH and ow < PW and argmax[n, k, oh, ow] == p:
                        v = gp[n, k, oh, ow]
                    if write_g:
                        g[k, n * P + p] = v
                    acc += v
            if has_bias:
                add_channel_split(sm, last, acc, partial, tickets, gb, k, t, nt, acc_t(0))

    return conv2d_relu_max_pool_bwd_kernel


_pool_bwd_cache: dict = {}


def conv2d_relu_max_pool_bwd_kernel(dtype):
    """The fused pool + ReLU + bias backward kernel specialised for ``dtype``."""
    return _launch.specialised(_pool_bwd_cache, _make_pool_bwd, dtype)


def conv2d_relu_max_pool_fwd(x, w, b, stride, padding, pool, keep_cols=True, keep_argmax=True):
    """``max_pool2d(relu(conv2d(x, w, b)), pool)`` (pool windows ``pool`` square, stride
    ``pool``); returns ``(pooled, cols, saved)``: the pooled output, the conv's columns for
    the weight gradient (or None) and what :func:`conv2d_relu_max_pool_bwd` needs.

    On the GPU this is the conv's GEMM and one kernel that adds the bias, applies the ReLU and
    pools, reading the GEMM output once (the NumPy twin fuses the pool into the conv's chunks).

    Example:
        >>> p, cols, saved = conv2d_relu_max_pool_fwd(x, w, b, (1, 1), (2, 2), 2)  # doctest: +SKIP
    """
    n, k = x.shape[0], w.shape[0]
    ho, wo = out_hw(x.shape, w.shape[2:], stride, padding)
    xp = _launch.xp
    pooled = xp.empty((n, k, ho // pool, wo // pool), x.dtype)
    idx_t = np.int32 if ho * wo < 2**31 else np.int64
    argmax = xp.empty(pooled.shape if keep_argmax else (1, 1, 1, 1), idx_t)
    if n == 0:
        return pooled, None, (argmax, pool, (n, k, ho, wo))
    yt, cols = conv2d_gemm(x, w, stride, padding)
    src = yt.reshape(k, n, ho * wo)
    bias = src.reshape(-1)[:1] if b is None else _launch.contiguous(b).astype(src.dtype, copy=False)
    if pooled.size:
        _launch.launch(conv2d_relu_max_pool_fwd_kernel, _launch.blocks_for(pooled.size),
                       _launch.TPB, src, bias, b is not None, pooled, argmax, bool(keep_argmax),
                       int(pool), int(wo), _launch.scalar(-np.inf, src.dtype),
                       _launch.scalar(0, src.dtype))
    return pooled, (cols if keep_cols else None), (argmax, pool, (n, k, ho, wo))


def conv2d_relu_max_pool_bwd(gp, saved, need_bias=True, write_g=True):
    """``(g, gb)`` from the pooled output's gradient: g is the conv output's gradient (the pool
    routed back, masked by the ReLU) in the (K, N*P) layout the conv's backward GEMMs read, gb
    the bias gradient (None unless ``need_bias``), in one launch.

    Example:
        >>> g, gb = conv2d_relu_max_pool_bwd(gp, saved)   # doctest: +SKIP
    """
    argmax, pool, (n, k, ho, wo) = saved
    gp = _launch.contiguous(gp)
    xp = _launch.xp
    g = xp.empty((k, n * ho * wo), gp.dtype) if write_g else None
    gb = xp.empty((k,), gp.dtype) if need_bias else None
    if n == 0 or ho * wo == 0 or not (write_g or need_bias):
        if gb is not None:
            gb[...] = 0
        return g, gb
    dummy = gp.reshape(-1)[:1]
    splits, per, partial, tickets = checks.split_reduction(n, k if need_bias else 0, gp.dtype, k)
    _launch.launch(conv2d_relu_max_pool_bwd_kernel(gp.dtype), (_launch.blocks_for(k, 1), splits),
                   _launch.reduce_threads(ho * wo), gp, argmax,
                   g if write_g else dummy.reshape(1, 1), gb if need_bias else dummy,
                   bool(write_g), bool(need_bias), int(pool), int(wo), per, partial, tickets)
    return g, gb
