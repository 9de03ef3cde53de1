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

from . import _batch_norm_channels_last as _channels_last
from ._parallel import MIN_CHUNK_BYTES, chunk_for, parallel_for, per_channel, scratch
from .activation import _like, relu_into
from .pooling import _pool_2x2_into, _route_2x2, max_pool2d_bwd, max_pool2d_fwd

CHUNK_BYTES = 1 << 21  # per chunk: x, and one temporary of its size, stay in the L2 cache


def _pool_step(n):
    """Images per chunk of the fused pool: two chunks, the 2x2 max is worth a second thread."""
    return max(1, (n + 1) // 2)


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


def _statistics(x3, weight, bias, eps):
    """``(mean, var, inv_std, a, b, step)`` of (N, C, S) ``x3``: the batch statistics, the
    per-channel ``a``, ``b`` of ``y = x * a + b`` (dtype of x) and the chunk size used."""
    n, c, s = x3.shape
    if s == 1:  # (N, C): the same values in whole-array float64 passes (64 x 120: 44 -> 14 us)
        d64 = x3[:, :, 0].astype(np.float64)
        mean64 = d64.mean(axis=0)
        d64 -= mean64
        return _affine(mean64, np.einsum("nc,nc->c", d64, d64) / n, weight, bias, eps, x3.dtype, n)
    row_mean = np.empty((n, c), x3.dtype)
    row_m2 = np.empty((n, c), x3.dtype)

    def moments(lo, hi):
        # NOTE: each (image, channel) row's mean and centred sum of squares, combined below
        # by Chan et al.'s formula: exact two-pass accuracy from one read of the chunk.
        np.einsum("ncs->nc", x3[lo:hi], out=row_mean[lo:hi])
        row_mean[lo:hi] *= 1 / s
        d = scratch("bn-centred", (hi - lo, c, s), x3.dtype)
        np.subtract(x3[lo:hi], row_mean[lo:hi, :, None], out=d)
        _row_dots(d, d, row_m2[lo:hi])

    step = _over_chunks(n, 2 * s * c * x3.itemsize, moments)
    return _affine(*_combine(row_mean, row_m2, n, s), weight, bias, eps, x3.dtype, step)


def _combine(row_mean, row_m2, n, s):
    """``(mean, var)`` in float64 per channel from each image's (N, C) means and centred sums
    of squares over its ``s`` positions (Chan et al.)."""
    rm = row_mean.astype(np.float64)
    mean64 = rm.mean(axis=0)
    var = (row_m2.sum(axis=0, dtype=np.float64) + s * ((rm - mean64) ** 2).sum(axis=0)) / (n * s)
    return mean64, var


def _affine(mean64, var, weight, bias, eps, dtype, step):
    mean = mean64.astype(dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)
    a = inv_std if weight is None else weight * inv_std
    b = -mean * a if bias is None else bias - mean * a
    return mean, var.astype(dtype), inv_std, a.astype(dtype, copy=False), b.astype(dtype, copy=False), step


def batch_norm_fwd(x, weight, bias, eps, relu=False):
    """``(y, mean, var, inv_std)``: x (N, C, ...) normalised per channel with the batch mean
    and biased variance ``var``, times ``weight`` plus ``bias`` ((C,) each, or None), then
    max(., 0) when ``relu`` (a following ReLU, in the same pass).  A channels-last ``x`` (a
    patch-row conv's output) gives a channels-last ``y``."""
    if _channels_last.applies(x):
        return _channels_last.batch_norm_fwd(x, weight, bias, eps, relu)
    x3 = _as_ncs(x)
    mean, var, inv_std, a, b, step = _statistics(x3, weight, bias, eps)
    return _normalise(x3, a, b, step, relu).reshape(x.shape), mean, var, inv_std


def _normalise(x3, a, b, step, relu):
    """``x * a + b`` per channel of (N, C, S) ``x3`` (then max(., 0) when ``relu``), in chunks."""
    n, c, s = x3.shape
    y = np.empty_like(x3)
    a, b = per_channel(a, s), per_channel(b, s)

    def normalise(lo, hi):
        np.multiply(x3[lo:hi], a, out=y[lo:hi])
        y[lo:hi] += b
        if relu:
            relu_into(y[lo:hi], y[lo:hi])

    parallel_for(n, step, normalise)
    return y


def _grad_coefficients(s_gy, s_gyd, inv_std, weight, count, dtype):
    """``(gweight, gbias, (scale, slope, shift))`` from the float64 per-channel sums of gy and of
    gy * (x - mean): gx = scale * gy + slope * (x - mean) + shift."""
    gbias = s_gy.astype(dtype)
    gweight = (s_gyd * inv_std).astype(dtype)  # sum(gy * xhat)
    scale = inv_std if weight is None else weight * inv_std
    shift = (-scale * (s_gy / count)).astype(dtype)
    # the coefficient of (x - mean): -scale * inv_std * mean(gy * xhat)
    slope = (-scale * inv_std * (s_gyd * inv_std / count)).astype(dtype)
    return gweight, gbias, (scale.astype(dtype, copy=False), slope, shift)


def batch_norm_bwd(gy, x, mean, inv_std, weight, need_input=True, y=None):
    """``(gx, gweight, gbias)`` of :func:`batch_norm_fwd` (gx None unless ``need_input``; the
    last two are returned whether or not the layer is affine).  With ``y``, the forward's
    output through its fused ReLU, ``gy`` is first masked where ``y <= 0``."""
    if _channels_last.applies(x, y):
        if not _channels_last.applies(gy):  # the gradient in x's layout (one copy), as gx will be
            gy = _like(x, gy)
        return _channels_last.batch_norm_bwd(gy, x, y, mean, inv_std, weight, need_input)
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
        np.not_equal(y3[lo:hi], 0, out=mask)  # y is a ReLU's output: as relu_bwd, NaN passes gy
        np.multiply(g3[lo:hi], mask, out=g)
        return g

    if s == 1:  # (N, C): whole-array passes (the chunked ones cost 3x as much at 64 x 120)
        g = upstream(0, n)[:, :, 0]
        d = x3[:, :, 0] - mean.astype(x.dtype, copy=False)
        s_gy, s_gyd = g.sum(axis=0, dtype=np.float64), (g * d).sum(axis=0, dtype=np.float64)
        gweight, gbias, coefficients = _grad_coefficients(s_gy, s_gyd, inv_std, weight, count, gy.dtype)
        if not need_input:
            return None, gweight, gbias
        scale, slope, shift = coefficients
        d *= slope
        gx = g * scale
        gx += d
        gx += shift
        return gx.reshape(gy.shape), gweight, gbias
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
    gweight, gbias, coefficients = _grad_coefficients(s_gy, s_gyd, inv_std, weight, count, gy.dtype)
    if not need_input:
        return None, gweight, gbias
    gx = np.empty_like(g3)
    scale, slope, shift = (per_channel(v, s) for v in coefficients)

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


# --- batch norm -> ReLU -> max pool, fused: the pool works on x, the normalisation on the pooled --
def batch_norm_relu_max_pool_fwd(x, weight, bias, eps, pool=2, keep_argmax=True):
    """``(pooled, mean, var, inv_std, saved)``: ``max_pool2d(relu(batch_norm(x)), pool)`` with
    the batch's statistics (``pool``-square windows, stride ``pool``) and what
    :func:`batch_norm_relu_max_pool_bwd` needs.

    For 2x2 pools of even-sized planes (and scales and biases :func:`_pools_like_y` accepts)
    the pool runs on x itself and only the pooled quarter is normalised: ``y = x * a + b`` per
    channel is monotone in x, increasing where ``a >= 0``, so the max of ``relu(y)`` over a
    window is ``relu`` of y at the window's max of ``x`` (of ``-x`` where ``a < 0``), the same
    float value bit for bit.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> pooled = batch_norm_relu_max_pool_fwd(x, None, None, 1e-5)[0]   # windows' max: 5 7 13 15
        >>> pooled.astype(np.float64).round(3).tolist()                   # (max - 7.5) / 4.61, >= 0
        [[[[0.0, 0.0], [1.193, 1.627]]]]
    """
    n, c, h, w = x.shape
    x3 = _as_ncs(x)
    mean, var, inv_std, a, b, step = _statistics(x3, weight, bias, eps)
    if pool != 2 or h % 2 or w % 2 or not _pools_like_y(a, b, var):
        y = _normalise(x3, a, b, step, relu=True).reshape(x.shape)
        pooled, argmax = max_pool2d_fwd(y, (pool, pool), (pool, pool), (0, 0), keep_argmax)
        return pooled, mean, var, inv_std, ("separate", x, y, argmax, pool)
    sign = np.where(a < 0, -1, 1).astype(x.dtype)
    flip = per_channel(sign, h * w) if (a < 0).any() else None
    winners = np.empty((n, c, h // 2, w // 2), x.dtype)  # x (times sign) at each window's max
    right_won = np.empty((n, c, h, w // 2), np.bool_) if keep_argmax else None
    bottom_won = np.empty(winners.shape, np.bool_) if keep_argmax else None

    def pool_chunk(lo, hi):
        src = x[lo:hi]
        if flip is not None:
            src = scratch("bnp-signed", (hi - lo, c, h, w), x.dtype)
            np.multiply(x3[lo:hi], flip, out=src.reshape(hi - lo, c, h * w))
        bits = (right_won[lo:hi], bottom_won[lo:hi]) if keep_argmax else ()
        _pool_2x2_into(src, winners[lo:hi], *bits)

    parallel_for(n, _pool_step(n), pool_chunk)
    # NOTE: |a| * (sign * x) == a * x exactly (IEEE products are sign-symmetric).  Where two
    # different x of a window still round to the same y (rare: _pools_like_y), the larger x
    # wins here and the first one unfused: the same value, and a gradient at a tie either way.
    s4 = (h // 2) * (w // 2)
    w3 = winners.reshape(n, c, s4)
    pooled = np.multiply(w3, per_channel(np.abs(a), s4))
    pooled += per_channel(b, s4)
    relu_into(pooled, pooled)
    # the ReLU's mask now: the caller may change the output in place before the backward
    passed = np.not_equal(pooled, 0) if keep_argmax else None  # as relu_bwd: NaN passes
    saved = ("fused", x, (right_won, bottom_won), winners, passed, sign)
    return pooled.reshape(winners.shape), mean, var, inv_std, saved


def _pools_like_y(a, b, var):
    """True when the window's max of x (of -x where a < 0) is the element unfused pooling of
    y = x * a + b picks, but for rare rounding ties: every channel's a is finite and nonzero,
    b finite, and |b| at most 2^10 times the spread |a| * std of y.  A zero scale makes y
    constant (PyTorch's pool then takes each window's first element), and a bias far beyond
    the spread rounds distinct x to equal y: those channels pool y, unfused."""
    spread = np.abs(a) * np.sqrt(var)
    return bool(np.all(np.isfinite(a) & np.isfinite(b) & (a != 0) & (np.abs(b) <= 1024 * spread)))


def batch_norm_relu_max_pool_bwd(gp, saved, mean, inv_std, weight, need_input=True):
    """``(gx, gweight, gbias)`` of :func:`batch_norm_relu_max_pool_fwd` (gx None unless
    ``need_input``).  The ReLU's mask and the two per-channel sums work on the pooled size:
    the routed gradient is zero off the winners, so its sums are the pooled ones."""
    if saved[0] == "separate":
        _, x, y, argmax, pool = saved
        gy = max_pool2d_bwd(gp, argmax, y.shape, (pool, pool), (pool, pool), (0, 0))
        return batch_norm_bwd(gy, x, mean, inv_std, weight, need_input, y)
    _, x, (right_won, bottom_won), winners, passed, sign = saved
    n, c, h, w = x.shape
    s, s4 = h * w, winners[0, 0].size
    g = np.multiply(gp.reshape(n, c, s4), passed.reshape(n, c, s4))
    d = np.multiply(winners.reshape(n, c, s4), per_channel(sign, s4))  # x at the winners
    d -= per_channel(mean, s4)
    row_gd = np.empty((n, c), gp.dtype)
    _row_dots(g, d, row_gd)
    s_gy = g.sum(axis=2).sum(axis=0, dtype=np.float64)
    s_gyd = row_gd.sum(axis=0, dtype=np.float64)
    gweight, gbias, (scale, slope, shift) = _grad_coefficients(s_gy, s_gyd, inv_std, weight,
                                                               n * s, gp.dtype)
    if not need_input:
        return None, gweight, gbias
    shift, slope = per_channel(shift, s), per_channel(slope, s)
    g *= per_channel(scale, s4)
    g = g.reshape(winners.shape)
    gx = np.empty(x.shape, x.dtype)  # C-contiguous: gx3 below must be a view of it
    x3, gx3, mean_cs = _as_ncs(x), _as_ncs(gx), per_channel(mean.astype(x.dtype, copy=False), s)

    def input_grad(lo, hi):
        _route_2x2(g[lo:hi], right_won[lo:hi], bottom_won[lo:hi], gx[lo:hi])
        dc = scratch("bn-centred", (hi - lo, c, s), x.dtype)
        np.subtract(x3[lo:hi], mean_cs, out=dc)
        dc *= slope
        dc += shift
        gx3[lo:hi] += dc

    parallel_for(n, chunk_for(3 * s * c * x.itemsize, n, CHUNK_BYTES), input_grad)
    return gx, gweight, gbias
