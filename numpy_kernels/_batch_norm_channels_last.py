"""BatchNorm over channels-last arrays (a patch-row conv's output, ``_im2row.channels_last``):
the statistics and formulas of ``batch_norm.py`` on the memory as it lies, with nothing
transposed.

A chunk of images is one run of memory in which channel c sits at every C-th value.  It is
viewed as rows of ``ROW`` values (a multiple of C), so a per-channel vector tiled to one row
broadcasts down the rows, and a channel's sum is a row of ones times the rows (one BLAS
call) folded by C.  Each chunk's mean and centred sum of squares are combined over the chunks
in float64 by Chan et al.'s formula, as exact as two passes.

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4).transpose(0, 3, 1, 2)
    >>> y, mean, var, inv_std = batch_norm_fwd(x, None, None, 1e-5)
    >>> mean.tolist(), bool(channels_last(y) is not None)
    ([6.0, 7.0, 8.0, 9.0], True)
"""
from __future__ import annotations

import numpy as np

from ._im2row import channels_last, empty_channels_last, only_channels_last
from ._parallel import chunk_for, parallel_for, scratch
from .activation import relu_into

# Larger chunks than the NCHW path's: fewer NumPy calls per pass (2 threads, 64 x 16 x 32 x 32
# float32, forward / backward: 2 MB chunks 485 / 701 us, 8 MB 439 / 531 us, 32 MB 442 / 532).
CHUNK_BYTES = 1 << 23
# NumPy broadcasts a vector down rows at copy speed only when the vector is long (1M
# float32, one thread, x * v: rows of 512 33 us, of 16,384 25 us; a plain scalar 18 us).
ROW = 1 << 14


def applies(*arrays) -> bool:
    """True when every array (None aside) is 4-D, channels-last and not plain C-contiguous
    (else the NCHW path runs)."""
    return all(a is None or only_channels_last(a) is not None for a in arrays)


def _flat(a):
    return channels_last(a).reshape(-1)


def _width(c):
    """Values per row: ``ROW // C`` positions of C channels."""
    return max(1, ROW // c) * c


def _row_of(vec, c):
    """The per-channel ``vec`` tiled over one row."""
    return np.tile(vec, _width(c) // c)


def _rows(flat, width):
    """(bulk as (M, width) rows, the tail of under ``width`` values)."""
    bulk = flat.size - flat.size % width
    return flat[:bulk].reshape(-1, width), flat[bulk:]


def _apply(ufunc, src, row, out):
    """``out = ufunc(src, row)`` with the tiled ``row`` broadcast down the memory of ``src``."""
    (sb, st), (ob, ot) = _rows(src, row.size), _rows(out, row.size)
    ufunc(sb, row, out=ob)
    if st.size:
        ufunc(st, row[:st.size], out=ot)


_ones: dict = {}


def _ones_row(m, dtype):
    ones = _ones.get((m, dtype))
    if ones is None:
        ones = _ones.setdefault((m, dtype), np.ones((1, m), dtype))
    return ones


def _column_sums(rows):
    """(1, width) sums of the (M, width) ``rows``: a row of ones times them, in BLAS (a
    reduction over the first axis in NumPy costs twice as much, its fold by C over short
    rows 8x)."""
    return _ones_row(rows.shape[0], rows.dtype) @ rows


def _sums(flat, c):
    """Per-channel float64 sums of the values ``flat`` (channel = position mod C)."""
    bulk, tail = _rows(flat, _width(c))
    total = np.zeros(c, np.float64)
    if bulk.size:  # each column's few rows in the arrays' dtype, their fold by C in float64
        total += _column_sums(_column_sums(bulk).reshape(-1, c).astype(np.float64))[0]
    if tail.size:
        total += _column_sums(tail.reshape(-1, c).astype(np.float64))[0]
    return total


def _chunks(x, reads):
    n, c, h, w = x.shape
    per_image = h * w * c
    return n, c, per_image, chunk_for(reads * per_image * x.itemsize, n, CHUNK_BYTES)


def batch_norm_fwd(x, weight, bias, eps, relu=False):
    """``(y, mean, var, inv_std)`` of ``batch_norm.batch_norm_fwd`` for a channels-last ``x``;
    ``y`` is channels-last."""
    from .batch_norm import _affine

    n, c, per_image, step = _chunks(x, 2)
    xf = _flat(x)
    starts = list(range(0, n, step))
    means, m2s = [None] * len(starts), [None] * len(starts)

    def moments(lo, hi):
        part = xf[lo * per_image:hi * per_image]
        mean = _sums(part, c) / (part.size // c)
        d = scratch("bn-centred", (part.size,), x.dtype)
        _apply(np.subtract, part, _row_of(mean.astype(x.dtype), c), d)
        d *= d
        means[lo // step], m2s[lo // step] = mean, _sums(d, c)

    parallel_for(n, step, moments)
    counts = np.array([(min(lo + step, n) - lo) * (per_image // c) for lo in starts], np.float64)
    mean64 = (counts[:, None] * np.array(means)).sum(axis=0) / counts.sum()
    m2 = np.sum(m2s, axis=0) + (counts[:, None] * (np.array(means) - mean64) ** 2).sum(axis=0)
    mean, var, inv_std, a, b, _ = _affine(mean64, m2 / counts.sum(), weight, bias, eps, x.dtype, step)
    a, b = _row_of(a, c), _row_of(b, c)
    y = empty_channels_last(x.shape, x.dtype)
    yf = _flat(y)

    def normalise(lo, hi):
        src, out = xf[lo * per_image:hi * per_image], yf[lo * per_image:hi * per_image]
        _apply(np.multiply, src, a, out)
        _apply(np.add, out, b, out)
        if relu:
            relu_into(out, out)

    parallel_for(n, step, normalise)
    return y, mean, var, inv_std


def batch_norm_bwd(gy, x, y, mean, inv_std, weight, need_input=True):
    """``(gx, gweight, gbias)`` of ``batch_norm.batch_norm_bwd`` for channels-last arrays (``y``
    the fused ReLU's output, or None); ``gx`` is channels-last."""
    from .batch_norm import _grad_coefficients

    n, c, per_image, step = _chunks(x, 3)
    gf, xf, yf = _flat(gy), _flat(x), None if y is None else _flat(y)
    mean_row = _row_of(mean.astype(x.dtype, copy=False), c)

    def upstream(lo, hi):
        g = gf[lo * per_image:hi * per_image]
        if yf is None:
            return g
        masked = scratch("bn-masked", g.shape, gy.dtype)
        np.multiply(g, yf[lo * per_image:hi * per_image] != 0, out=masked)  # NaN passes gy
        return masked

    def centred(lo, hi):
        d = scratch("bn-centred", ((hi - lo) * per_image,), x.dtype)
        _apply(np.subtract, xf[lo * per_image:hi * per_image], mean_row, d)
        return d

    starts = list(range(0, n, step))
    s_g, s_gd = [None] * len(starts), [None] * len(starts)

    def sums(lo, hi):
        g, d = upstream(lo, hi), centred(lo, hi)
        d *= g
        s_g[lo // step], s_gd[lo // step] = _sums(g, c), _sums(d, c)

    parallel_for(n, step, sums)
    gweight, gbias, (scale, slope, shift) = _grad_coefficients(
        np.sum(s_g, axis=0), np.sum(s_gd, axis=0), inv_std, weight, n * (per_image // c), gy.dtype)
    if not need_input:
        return None, gweight, gbias
    scale, slope, shift = (_row_of(v, c) for v in (scale, slope, shift))
    gx = empty_channels_last(x.shape, gy.dtype)
    gxf = _flat(gx)

    def input_grad(lo, hi):
        g, d, out = upstream(lo, hi), centred(lo, hi), gxf[lo * per_image:hi * per_image]
        _apply(np.multiply, d, slope, d)
        _apply(np.multiply, g, scale, out)
        out += d
        _apply(np.add, out, shift, out)

    parallel_for(n, step, input_grad)
    return gx, gweight, gbias
