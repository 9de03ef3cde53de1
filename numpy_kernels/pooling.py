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

from gpunet.backends.geometry import int_geometry, out_hw

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
        xp = padded(x[lo:hi], ph, pw, "pool-pad", -np.inf, extra)
        win = windows(xp, kh, kw, sh, sw, *shape[2:])
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
        xc = x[lo:hi, :, :2 * ho, :2 * wo]
        left, right = xc[..., 0::2], xc[..., 1::2]
        row_max = scratch("pool-rowmax", (hi - lo, c, 2 * ho, wo), x.dtype)
        np.maximum(left, right, out=row_max)
        top, bottom = row_max[:, :, 0::2], row_max[:, :, 1::2]
        np.maximum(top, bottom, out=y[lo:hi])
        if keep:
            # NOTE: strict > sends ties left, then up: the first maximum in row-major order,
            # the element PyTorch's argmax picks; a NaN takes over, so the last NaN wins.
            # NaN propagates to y, so the NaN test runs only for chunks whose y has one.
            has_nan = np.isnan(y[lo:hi]).any()
            for a, b, won in ((right, left, right_won[lo:hi]), (bottom, top, bottom_won[lo:hi])):
                np.greater(a, b, out=won)
                if has_nan:
                    nan = scratch("pool-nan", a.shape, np.bool_)
                    np.isnan(a, out=nan)
                    np.logical_or(won, nan, out=won)

    parallel_for(n, chunk_for(c * h * w * x.dtype.itemsize * 2, n, POOL_CHUNK_BYTES), chunk)
    return y, (right_won, bottom_won)


def _max_pool_2x2_bwd(gy, saved, x_shape):
    right_won, bottom_won = saved
    n, c, h, w = x_shape
    ho, wo = gy.shape[2:]
    exact = (h, w) == (2 * ho, 2 * wo)  # else the last odd row / column gets no gradient
    gx = np.empty(x_shape, gy.dtype) if exact else np.zeros(x_shape, gy.dtype)

    def chunk(lo, hi):
        nb, g = hi - lo, gy[lo:hi]
        lost = scratch("pool-lost", (nb, c, 2 * ho, wo), np.bool_)
        row_g = scratch("pool-rowgrad", (nb, c, 2 * ho, wo), gy.dtype)
        np.logical_not(bottom_won[lo:hi], out=lost[:, :, :ho])
        np.multiply(g, bottom_won[lo:hi], out=row_g[:, :, 1::2])
        np.multiply(g, lost[:, :, :ho], out=row_g[:, :, 0::2])
        gxc = gx[lo:hi, :, :2 * ho, :2 * wo]
        np.logical_not(right_won[lo:hi], out=lost)
        np.multiply(row_g, right_won[lo:hi], out=gxc[..., 1::2])
        np.multiply(row_g, lost, out=gxc[..., 0::2])

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
