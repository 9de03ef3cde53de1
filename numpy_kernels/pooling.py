"""Max and average pooling on NumPy: an elementwise pass per window offset, chunked over the batch.

Each chunk of images is padded (with -inf for max, 0 for avg) into per-thread scratch and
reduced with a few elementwise passes per (i, j) offset of the window.  Max pooling saves which
element of each window won, by PyTorch's rule: the first maximum in row-major order, or the
last NaN where the window has NaNs; the backward routes each gradient there.

Example:
    >>> y, saved = max_pool2d_fwd(np.arange(16.0).reshape(1, 1, 4, 4), (2, 2), (2, 2), (0, 0))
    >>> y[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
"""
from __future__ import annotations

import numpy as np

from kernel_geometry import int_geometry, out_hw

from . import _conv_pointwise, activation, conv
from ._parallel import chunk_for, parallel_for, scratch
from .conv import padded, windows

POOL_CHUNK_BYTES = 1 << 21  # per chunk of images: padded input plus masks


def _plan(x_shape, kernel, stride, padding, ceil_mode=False):
    kh, kw, sh, sw, ph, pw = int_geometry(kernel, stride, padding)
    ho, wo = out_hw(x_shape, kernel, stride, padding, ceil_mode=ceil_mode)
    n, c, h, w = x_shape
    step = chunk_for(c * (h + 2 * ph) * (w + 2 * pw) * 8, n, POOL_CHUNK_BYTES)
    return (kh, kw, sh, sw, ph, pw), (n, c, ho, wo), step


def _beyond(x_shape, geometry, out_shape):
    """Rows and columns the last windows reach past the padded input (ceil_mode only)."""
    kh, kw, sh, sw, ph, pw = geometry
    return (max(0, (out_shape[2] - 1) * sh + kh - x_shape[2] - 2 * ph),
            max(0, (out_shape[3] - 1) * sw + kw - x_shape[3] - 2 * pw))


def max_pool2d_fwd(x, kernel, stride, padding, keep_argmax=True, ceil_mode=False):
    """Max over each window of NCHW ``x``; returns ``(y, saved)`` for the backward.

    2x2 windows with stride 2 (the common case) take a separable path: a max over column
    pairs, then over row pairs, saving which of each pair won (one bit each).  Any other
    window reduces over its kh*kw offsets and saves the winning offset of each window.
    """
    if _is_2x2(kernel, stride, padding, x.shape, ceil_mode):
        return _max_pool_2x2_fwd(x, keep_argmax)
    geometry, shape, step = _plan(x.shape, kernel, stride, padding, ceil_mode)
    kh, kw, sh, sw, ph, pw = geometry
    extra = _beyond(x.shape, geometry, shape)
    y = np.empty(shape, x.dtype)
    arg = np.zeros(shape, np.int8 if kh * kw < 128 else np.int32) if keep_argmax else None

    def chunk(lo, hi):
        xpad = padded(x[lo:hi], ph, pw, "pool-pad", -np.inf, extra)
        win = windows(xpad, kh, kw, sh, sw, *shape[2:])
        yc = y[lo:hi]
        yc[...] = win[:, :, 0, 0]
        if arg is None:
            for t in range(1, kh * kw):
                np.maximum(yc, win[:, :, t // kw, t % kw], out=yc)
            return
        wins = scratch("pool-wins", yc.shape, np.bool_)
        nan = scratch("pool-nan", yc.shape, np.bool_)
        for t in range(1, kh * kw):
            v = win[:, :, t // kw, t % kw]
            # NOTE: PyTorch's rule: a larger value or a NaN takes over, so ties keep the first
            # maximum in row-major order and a window with NaNs routes to its last NaN.
            np.greater(v, yc, out=wins)
            np.isnan(v, out=nan)
            np.logical_or(wins, nan, out=wins)
            np.copyto(yc, v, where=wins)
            np.copyto(arg[lo:hi], t, where=wins)

    parallel_for(shape[0], step, chunk)
    return y, arg


def max_pool2d_bwd(gy, saved, x_shape, kernel, stride, padding, ceil_mode=False):
    """Route ``gy`` to each window's argmax (see :func:`max_pool2d_fwd`), summing where windows overlap."""
    if _is_2x2(kernel, stride, padding, x_shape, ceil_mode):
        return _max_pool_2x2_bwd(gy, saved, x_shape)
    geometry, (n, c, ho, wo), step = _plan(x_shape, kernel, stride, padding, ceil_mode)
    kh, kw, sh, sw, ph, pw = geometry
    eh, ew = _beyond(x_shape, geometry, (n, c, ho, wo))
    arg = saved
    gx = np.empty(x_shape, gy.dtype)
    h, w = x_shape[2:]
    direct = (ph, pw) == (0, 0) and (sh, sw) == (kh, kw) and (h, w) == (ho * kh, wo * kw)
    overlap = sh < kh or sw < kw

    def chunk(lo, hi):
        nb = hi - lo
        if direct:  # windows tile the image exactly: every gx element is written once
            gxp = gx[lo:hi]
        else:
            gxp = scratch("pool-gx", (nb, c, h + 2 * ph + eh, w + 2 * pw + ew), gy.dtype)
            gxp.fill(0)
        gwin = windows(gxp, kh, kw, sh, sw, ho, wo)
        a, g = arg[lo:hi], gy[lo:hi]
        hit = scratch("pool-hit", a.shape, np.bool_)
        part = scratch("pool-part", a.shape, gy.dtype) if overlap else None
        for t in range(kh * kw):
            i, j = divmod(t, kw)
            np.equal(a, t, out=hit)
            if overlap:
                np.multiply(g, hit, out=part)
                gwin[:, :, i, j] += part
            else:
                np.multiply(g, hit, out=gwin[:, :, i, j])
        if not direct:
            gx[lo:hi] = gxp[:, :, ph:ph + h, pw:pw + w]

    parallel_for(n, step, chunk)
    return gx


def _is_2x2(kernel, stride, padding, x_shape=None, ceil_mode=False):
    plain = tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)
    return plain and not (ceil_mode and (x_shape[2] % 2 or x_shape[3] % 2))


def _max_pool_2x2_fwd(x, keep):
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    y = np.empty((n, c, ho, wo), x.dtype)
    right_won = np.empty((n, c, 2 * ho, wo), np.bool_) if keep else None
    bottom_won = np.empty((n, c, ho, wo), np.bool_) if keep else None

    def chunk(lo, hi):
        bits = (right_won[lo:hi], bottom_won[lo:hi]) if keep else ()
        _pool_2x2_into(x[lo:hi, :, :2 * ho, :2 * wo], y[lo:hi], *bits)

    parallel_for(n, chunk_for(c * h * w * x.dtype.itemsize * 2, n, POOL_CHUNK_BYTES), chunk)
    return y, (right_won, bottom_won)


def _max_pool_2x2_bwd(gy, saved, x_shape):
    right_won, bottom_won = saved
    n, c, h, w = x_shape
    ho, wo = gy.shape[2:]
    exact = (h, w) == (2 * ho, 2 * wo)  # else the last odd row / column gets no gradient
    gx = np.empty(x_shape, gy.dtype) if exact else np.zeros(x_shape, gy.dtype)

    def chunk(lo, hi):
        _route_2x2(gy[lo:hi], right_won[lo:hi], bottom_won[lo:hi], gx[lo:hi, :, :2 * ho, :2 * wo])

    parallel_for(n, chunk_for(c * h * w * gy.dtype.itemsize * 2, n, POOL_CHUNK_BYTES), chunk)
    return gx


def avg_pool2d_fwd(x, kernel, stride, padding):
    """Mean over each window, padded zeros counted (PyTorch's ``count_include_pad=True``)."""
    (kh, kw, sh, sw, ph, pw), shape, step = _plan(x.shape, kernel, stride, padding)
    y = np.empty(shape, x.dtype)
    inv = x.dtype.type(1.0 / (kh * kw))

    def chunk(lo, hi):
        win = windows(padded(x[lo:hi], ph, pw, "pool-pad"), kh, kw, sh, sw, *shape[2:])
        yc = y[lo:hi]
        yc[...] = win[:, :, 0, 0]
        for t in range(1, kh * kw):
            yc += win[:, :, t // kw, t % kw]
        yc *= inv

    parallel_for(shape[0], step, chunk)
    return y


def avg_pool2d_bwd(gy, x_shape, kernel, stride, padding):
    """Spread ``gy / (kh * kw)`` over every window, summing where windows overlap."""
    (kh, kw, sh, sw, ph, pw), (n, c, ho, wo), step = _plan(x_shape, kernel, stride, padding)
    gx = np.empty(x_shape, gy.dtype)
    h, w = x_shape[2:]
    inv = gy.dtype.type(1.0 / (kh * kw))

    def chunk(lo, hi):
        gxp = scratch("pool-gx", (hi - lo, c, h + 2 * ph, w + 2 * pw), gy.dtype)
        gxp.fill(0)
        gwin = windows(gxp, kh, kw, sh, sw, ho, wo)
        g = gy[lo:hi] * inv
        for t in range(kh * kw):
            gwin[:, :, t // kw, t % kw] += g
        gx[lo:hi] = gxp[:, :, ph:ph + h, pw:pw + w]

    parallel_for(n, step, chunk)
    return gx


# --- conv -> ReLU -> 2x2 max pool, fused chunk by chunk ---------------------------------------
def conv2d_relu_max_pool_fwd(x, w, b, stride, padding, pool, keep_cols=True, keep_argmax=True):
    """``max_pool2d(relu(conv2d(x, w, b)), pool)``; returns ``(pooled, cols, saved)``.

    For 2x2 pools of an even-sized plain conv output (LeNet's case) each chunk of images is
    convolved, biased, rectified and pooled while it is in cache, and the full-size conv output
    is never stored: the backward needs only which element of each window won and the pooled
    values (the ReLU's mask at the winners is ``pooled > 0``).  Otherwise the conv and the
    pool run one after the other.

    Example:
        >>> x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1))
        >>> conv2d_relu_max_pool_fwd(x, w, None, (1, 1), (0, 0), 2)[0].shape
        (1, 1, 2, 2)
    """
    n, k = x.shape[0], w.shape[0]
    ho, wo = out_hw(x.shape, w.shape[2:], stride, padding)
    dtype = np.result_type(x.dtype, w.dtype)
    if (pool != 2 or ho % 2 or wo % 2 or n == 0 or x.dtype != dtype
            or _conv_pointwise.applies(w.shape, padding)):  # its own layout of saved
        y, cols = conv.conv2d_fwd(x, w, b, stride, padding, keep_cols=keep_cols, relu=True)
        pooled, argmax = max_pool2d_fwd(y, (pool, pool), (pool, pool), (0, 0), keep_argmax)
        return pooled, cols, ("separate", y, argmax, pool)
    cols = conv.kept_cols(x, w.shape, (ho, wo), keep_cols)
    pooled = np.empty((n, k, ho // 2, wo // 2), dtype)
    right_won = np.empty((n, k, ho, wo // 2), np.bool_) if keep_argmax else None
    bottom_won = np.empty((n, k, ho // 2, wo // 2), np.bool_) if keep_argmax else None

    def convolve_and_pool(nan_aware):
        def pool_chunk(lo, hi, yc):
            bits = (right_won[lo:hi], bottom_won[lo:hi]) if keep_argmax else ()
            _pool_2x2_into(yc.reshape(hi - lo, k, ho, wo), pooled[lo:hi], *bits, nan_aware=nan_aware)

        conv._conv_into((n, k, ho, wo), x, w.reshape(k, -1).astype(dtype, copy=False), b,
                        w.shape[2:], stride, padding, cols, relu=False, then=pool_chunk)

    # NOTE: the chunks skip the NaN rule of the winners (a NaN in a window reaches its pooled
    # value); a batch with a NaN is pooled again with it.  Fewer NumPy calls per chunk matter:
    # on two threads each one waits about 10 us for the GIL.
    convolve_and_pool(nan_aware=False)
    if keep_argmax and pooled.size and np.isnan(pooled.max()):
        convolve_and_pool(nan_aware=True)
    # NOTE: max commutes with the ReLU (both monotone), so the ReLU runs on the pooled values,
    # a quarter of the conv output; the winners are found before it, which only changes
    # windows whose maximum is <= 0, and their gradient is masked to 0 anyway.
    activation.relu_into(pooled, pooled)
    # the ReLU's mask now: the caller may change the output in place before the backward
    passed = np.not_equal(pooled, 0) if keep_argmax else None  # as relu_bwd: NaN passes
    return pooled, cols, ("fused", (right_won, bottom_won), passed, None)


def _pool_2x2_into(y, pooled, right_won=None, bottom_won=None, nan_aware=None):
    """2x2 max of (nb, C, 2*Ho, 2*Wo) ``y`` into ``pooled``, with which of each pair won
    (skipped when the bit arrays are None: no backward will follow).  ``nan_aware``: apply
    the NaN rule to the winners (None: when ``pooled`` has a NaN)."""
    # NOTE: strict > sends ties left, then up: the first maximum in row-major order, the
    # element PyTorch's argmax picks; a NaN takes over, so the last NaN wins.  NaN propagates
    # to the pooled values, so the NaN test runs only for chunks that have one.
    left, right = y[..., 0::2], y[..., 1::2]
    row_max = scratch("pool-rowmax", y.shape[:3] + (y.shape[3] // 2,), y.dtype)
    np.maximum(left, right, out=row_max)
    top, bottom = row_max[:, :, 0::2], row_max[:, :, 1::2]
    np.maximum(top, bottom, out=pooled)
    if right_won is None:
        return
    has_nan = nan_aware
    if nan_aware is None:
        has_nan = pooled.size and np.isnan(pooled.max())  # the max of an array with a NaN is NaN
    for a, b, won in ((right, left, right_won), (bottom, top, bottom_won)):
        np.greater(a, b, out=won)
        if has_nan:
            nan = scratch("pool-nan", a.shape, np.bool_)
            np.isnan(a, out=nan)
            np.logical_or(won, nan, out=won)


def conv2d_relu_max_pool_bwd(gp, saved, need_bias=True, write_g=True):
    """``(g, gb)``: the conv output's gradient (NCHW) and the bias gradient (None unless
    ``need_bias``).  Fused: the ReLU's mask and the bias sum work on the pooled size, before
    the gradient is routed back to the winners."""
    how, first, second, pool = saved
    if how == "separate":  # first: the conv's output, second: the pool's argmax
        gy = max_pool2d_bwd(gp, second, first.shape, (pool, pool), (pool, pool), (0, 0))
        return conv.conv2d_bwd_bias_relu(gy, first, True, need_bias, write_g)
    (right_won, bottom_won), passed = first, second
    n, k, ho, wo = gp.shape
    g = np.empty((n, k, 2 * ho, 2 * wo), gp.dtype) if write_g else None
    sums = np.empty((n, k), gp.dtype)

    def chunk(lo, hi):
        masked = scratch("crp-g", (hi - lo, k, ho, wo), gp.dtype)
        np.multiply(gp[lo:hi], passed[lo:hi], out=masked)
        if need_bias:
            sums[lo:hi] = masked.reshape(hi - lo, k, -1).sum(axis=2)
        if write_g:
            _route_2x2(masked, right_won[lo:hi], bottom_won[lo:hi], g[lo:hi])

    parallel_for(n, chunk_for(4 * k * ho * wo * gp.dtype.itemsize * 2, n, POOL_CHUNK_BYTES), chunk)
    return g, (sums.sum(axis=0) if need_bias else None)


def _route_2x2(gp, right_won, bottom_won, gx):
    """Each pooled gradient to its window's winner, zeros elsewhere (as :func:`_max_pool_2x2_bwd`)."""
    nb, c, ho, wo = gp.shape
    row_g = scratch("pool-rowgrad", (nb, c, 2 * ho, wo), gp.dtype)
    # NOTE: g * won is g or 0 exactly, so the loser's share g - g * won is 0 or g exactly:
    # one subtraction instead of a mask inversion and a multiply.
    bottom = row_g[:, :, 1::2]
    np.multiply(gp, bottom_won, out=bottom)
    np.subtract(gp, bottom, out=row_g[:, :, 0::2])
    right = gx[..., 1::2]
    np.multiply(row_g, right_won, out=right)
    np.subtract(row_g, right, out=gx[..., 0::2])
