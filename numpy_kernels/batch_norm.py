"""Batch normalisation on NumPy: per-channel statistics and the normalisation in few passes.

``x`` is viewed as (N, C, S) (S = H*W, or 1 for (N, C) input).  The forward reads ``x`` three
twice, a cache-sized chunk of the batch at a time on gpunet's threads: each (image, channel)
row's mean and centred sum of squares (combined per channel by Chan et al.'s formula, as exact
as two passes), then ``y = x * a + b`` with ``a = weight * inv_std`` and ``b = bias - mean * a``
per channel.  Row sums are added in image order in float64, so results repeat bit for bit.
The backward reads ``gy`` and ``x`` twice: the sums of ``gy`` and of ``gy * (x - mean)``, then

    gx = weight * inv_std * (gy - mean(gy) - xhat * mean(gy * xhat)),  xhat = (x - mean) * inv_std

with the centring done before any product, so no large terms cancel.

Example:
    >>> x = np.arange(8, dtype=np.float32).reshape(2, 2, 2)       # N=2, C=2, S=2
    >>> y, mean, var, inv_std = batch_norm_fwd(x, None, None, 1e-5)
    >>> mean.tolist(), np.round(y[:, 0].astype(float), 3).tolist()    # channel 0: 0, 1, 4, 5
    ([2.5, 4.5], [[-1.213, -0.728], [0.728, 1.213]])
"""
from __future__ import annotations

import numpy as np

from ._parallel import MIN_CHUNK_BYTES, chunk_for, parallel_for, per_channel, scratch

CHUNK_BYTES = 1 << 21  # per chunk: x, and one temporary of its size, stay in the L2 cache


def _as_ncs(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


def _row_dots(a, b, out):
    """out[n, c] = a[n, c] . b[n, c] over the last axis: one BLAS dot per row of at least 64
    values (2.4x faster than einsum at 8 x 16 rows of 1024), einsum on shorter rows (BLAS at
    64 x 120 rows of 1: 24 against 3 us).  Both accumulate in the arrays' dtype."""
    nb, c, s = a.shape
    if s < 64:
        np.einsum("ncs,ncs->nc", a, b, out=out)
        return
    np.matmul(a.reshape(nb * c, 1, s), b.reshape(nb * c, s, 1), out=out.reshape(nb * c, 1, 1))


def _over_chunks(n, per_item_bytes, body):
    """``body(lo, hi)`` over cache-sized chunks of the batch on gpunet's threads; returns the
    chunk size (later passes reuse it)."""
    step = chunk_for(per_item_bytes, n, CHUNK_BYTES)
    if n * per_item_bytes < 2 * MIN_CHUNK_BYTES:
        # NOTE: under one thread's worth of work: one chunk in the caller.  parallel_for
        # would hand the second cache-sized chunk to the other thread, which costs more than
        # it saves (BatchNorm2d(6) on 64x6x28x28, 2 threads: forward 0.31 ms, 0.18 on one).
        step = n
    parallel_for(n, step, body)
    return step


def batch_norm_fwd(x, weight, bias, eps, relu=False):
    """``(y, mean, var, inv_std)``: x (N, C, ...) normalised per channel with the batch mean
    and biased variance ``var``, times ``weight`` plus ``bias`` ((C,) each, or None), then
    max(., 0) when ``relu`` (a following ReLU, in the same pass)."""
    x3 = _as_ncs(x)
    n, c, s = x3.shape
    row_mean = np.empty((n, c), x.dtype)
    row_m2 = np.empty((n, c), x.dtype)

    def moments(lo, hi):
        # NOTE: each (image, channel) row's mean and centred sum of squares, combined below
        # by Chan et al.'s formula: exact two-pass accuracy from one read of the chunk.
        np.einsum("ncs->nc", x3[lo:hi], out=row_mean[lo:hi])
        row_mean[lo:hi] *= 1 / s
        d = scratch("bn-centred", (hi - lo, c, s), x.dtype)
        np.subtract(x3[lo:hi], row_mean[lo:hi, :, None], out=d)
        _row_dots(d, d, row_m2[lo:hi])

    step = _over_chunks(n, 2 * s * c * x.itemsize, moments)
    rm = row_mean.astype(np.float64)
    mean64 = rm.mean(axis=0)
    var = (row_m2.sum(axis=0, dtype=np.float64) + s * ((rm - mean64) ** 2).sum(axis=0)) / (n * s)
    mean = mean64.astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    a = inv_std if weight is None else weight * inv_std
    b = -mean * a if bias is None else bias - mean * a
    y = np.empty_like(x3)
    a, b = per_channel(a.astype(x.dtype, copy=False), s), per_channel(b.astype(x.dtype, copy=False), s)

    def normalise(lo, hi):
        np.multiply(x3[lo:hi], a, out=y[lo:hi])
        y[lo:hi] += b
        if relu:
            np.maximum(y[lo:hi], 0, out=y[lo:hi])

    parallel_for(n, step, normalise)
    return y.reshape(x.shape), mean, var.astype(x.dtype), inv_std


def batch_norm_bwd(gy, x, mean, inv_std, weight, need_input=True, y=None):
    """``(gx, gweight, gbias)`` of :func:`batch_norm_fwd` (gx None unless ``need_input``; the
    last two are returned whether or not the layer is affine).  With ``y``, the forward's
    output through its fused ReLU, ``gy`` is first masked where ``y <= 0``."""
    g3, x3 = _as_ncs(gy), _as_ncs(x)
    y3 = None if y is None else _as_ncs(y)
    n, c, s = x3.shape
    count = n * s
    item = s * c * x.itemsize

    def upstream(lo, hi):  # gy, or gy through the ReLU's mask, for the chunk (in cache)
        if y3 is None:
            return g3[lo:hi]
        g = scratch("bn-masked", (hi - lo, c, s), gy.dtype)
        mask = scratch("bn-mask", (hi - lo, c, s), np.bool_)
        np.less_equal(y3[lo:hi], 0, out=mask)  # as relu_bwd: a NaN output passes gy
        np.logical_not(mask, out=mask)
        np.multiply(g3[lo:hi], mask, out=g)
        return g

    row_g = np.empty((n, c), gy.dtype)
    row_gd = np.empty((n, c), gy.dtype)
    mean_cs = per_channel(mean.astype(x.dtype, copy=False), s)

    def sums(lo, hi):
        g = upstream(lo, hi)
        np.einsum("ncs->nc", g, out=row_g[lo:hi])
        d = scratch("bn-centred", (hi - lo, c, s), x.dtype)
        np.subtract(x3[lo:hi], mean_cs, out=d)
        _row_dots(g, d, row_gd[lo:hi])

    step = _over_chunks(n, 3 * item, sums)
    s_gy, s_gyd = row_g.sum(axis=0, dtype=np.float64), row_gd.sum(axis=0, dtype=np.float64)
    gbias = s_gy.astype(gy.dtype)
    gweight = (s_gyd * inv_std).astype(gy.dtype)  # sum(gy * xhat)
    if not need_input:
        return None, gweight, gbias
    scale = inv_std if weight is None else weight * inv_std
    shift = (-scale * (s_gy / count)).astype(gy.dtype)
    # the coefficient of (x - mean): -scale * inv_std * mean(gy * xhat)
    slope = (-scale * inv_std * (s_gyd * inv_std / count)).astype(gy.dtype)
    gx = np.empty_like(g3)
    scale, slope, shift = (per_channel(v.astype(gy.dtype, copy=False), s) for v in (scale, slope, shift))

    def input_grad(lo, hi):
        g = upstream(lo, hi)
        d = scratch("bn-centred", (hi - lo, c, s), x.dtype)
        np.subtract(x3[lo:hi], mean_cs, out=d)
        d *= slope
        np.multiply(g, scale, out=gx[lo:hi])
        gx[lo:hi] += d
        gx[lo:hi] += shift

    parallel_for(n, step, input_grad)
    return gx.reshape(gy.shape), gweight, gbias
