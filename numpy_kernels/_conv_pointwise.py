"""1x1 unpadded convolutions (a ResNet's shortcut): per image one GEMM over the strided grid.

A 1x1 conv has no windows: its "columns" are the input itself at stride 1, and the input on
the strided grid otherwise, so neither im2col nor patch rows are built:

    y[n]  (K, P) = W (K, C) @ xs[n] (C, P),   xs = x[:, :, ::sh, ::sw]   (P = Ho*Wo)
    gW    (K, C) = sum_n gy[n] (K, P) @ xs[n]^T (P, C)
    gx           = W^T @ gy[n] put on the strided grid (0 elsewhere)

(a ResNet-8 shortcut, 16 -> 32 channels at stride 2 on 64 images of 32x32, 2 threads:
forward 0.93 ms through patch rows, 0.18 ms this way.)

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, saved = pointwise_fwd(x, np.full((2, 1, 1, 1), 2, np.float32), None, (2, 2), True)
    >>> y[0, 1].tolist()
    [[0.0, 4.0], [16.0, 20.0]]
"""
from __future__ import annotations

import numpy as np

from . import activation
from ._im2row import channels_last, empty_channels_last, only_channels_last
from ._parallel import chunk_for, parallel_for, per_channel, scratch

CHUNK_BYTES = 1 << 22


def applies(w_shape, padding, dilation=(1, 1), groups=1) -> bool:
    """True for a 1x1 kernel with no padding, dilation or groups."""
    return (tuple(w_shape[2:]) == (1, 1) and tuple(padding) == (0, 0)
            and tuple(dilation) == (1, 1) and groups == 1)


def _grid(x, sh, sw, lo, hi, out=None):
    """(nb, C, Ho*Wo): images lo..hi of ``x`` on the stride grid (a view at stride 1)."""
    nb, c = hi - lo, x.shape[1]
    if (sh, sw) == (1, 1):
        return x[lo:hi].reshape(nb, c, -1)
    part = x[lo:hi, :, ::sh, ::sw]
    if out is None:
        out = scratch("pointwise-grid", (nb, c, part.shape[2] * part.shape[3]), x.dtype)
    np.copyto(out.reshape(part.shape), part)
    return out


def _grid_rows(x, sh, sw):
    """(N*Ho*Wo, C): the channels-last ``x`` on the stride grid (a view at stride 1)."""
    xl = channels_last(x)
    if (sh, sw) == (1, 1):
        return xl.reshape(-1, x.shape[1])
    return np.ascontiguousarray(xl[:, ::sh, ::sw]).reshape(-1, x.shape[1])


def _over_images(n, per_image_values, itemsize, body):
    """``body(lo, hi)`` over chunks of images on gpunet's threads.  Every GEMM here runs
    inside such a region, where BLAS is held to one thread: a GEMM on BLAS's own threads
    leaves them spinning against gpunet's (ResNet-8's step, 1x1 shortcuts as one GEMM each:
    73 against 55 ms)."""
    parallel_for(n, chunk_for(per_image_values * itemsize, n, CHUNK_BYTES), body)


def _last_fwd(x, wmat, b, stride, out_shape, keep, relu):
    """A channels-last ``x``: y's memory (N*P, K) = x on the grid (N*P, C) @ W^T;
    ``saved`` is the strided grid itself (N*P, C)."""
    n, k, ho, wo = out_shape
    p, c = ho * wo, x.shape[1]
    xs = _grid_rows(x, *stride)
    y = empty_channels_last(out_shape, wmat.dtype)
    rows = y.transpose(0, 2, 3, 1).reshape(-1, k)
    wt = np.ascontiguousarray(wmat.T)
    bias = None if b is None else b.astype(wmat.dtype, copy=False)

    def chunk(lo, hi):
        out = rows[lo * p:hi * p]
        np.matmul(xs[lo * p:hi * p], wt, out=out)
        if bias is not None:
            out += bias
        if relu:
            activation.relu_into(out, out)

    _over_images(n, (c + k) * p, x.itemsize, chunk)
    return y, (xs if keep and stride != (1, 1) else None)


def pointwise_fwd(x, w, b, stride, keep, relu=False):
    """``(y, saved)`` of the 1x1 conv of ``x`` with ``w`` (K, C, 1, 1) plus ``b``, through a
    ReLU when ``relu``; ``saved`` is the strided input (N, C, P) when ``keep`` and the stride
    is not 1 (at stride 1 the backward reads ``x`` itself), else None."""
    (sh, sw), (n, c, h, wd), k = stride, x.shape, w.shape[0]
    ho, wo = (h - 1) // sh + 1, (wd - 1) // sw + 1
    dtype = np.result_type(x.dtype, w.dtype)
    wmat = w.reshape(k, c).astype(dtype, copy=False)
    if only_channels_last(x) is not None:
        return _last_fwd(x, wmat, b, (sh, sw), (n, k, ho, wo), keep, relu)
    y = np.empty((n, k, ho, wo), dtype)
    saved = np.empty((n, c, ho * wo), x.dtype) if keep and (sh, sw) != (1, 1) else None
    bias = None if b is None else per_channel(b.astype(dtype, copy=False), ho * wo)

    def chunk(lo, hi):
        xs = _grid(x, sh, sw, lo, hi, None if saved is None else saved[lo:hi])
        yc = y[lo:hi].reshape(hi - lo, k, ho * wo)
        np.matmul(wmat, xs, out=yc)
        if bias is not None:
            yc += bias
        if relu:
            activation.relu_into(yc, yc)

    parallel_for(n, chunk_for((c + k) * ho * wo * x.dtype.itemsize, n, CHUNK_BYTES), chunk)
    return y, saved


def pointwise_bwd_weight(gy, x, w_shape, stride, saved=None):
    """The weight gradient (K, C, 1, 1): per chunk the images' GEMMs summed, chunks in order."""
    n, k, c = x.shape[0], w_shape[0], w_shape[1]
    p = gy.shape[2] * gy.shape[3]
    if (saved is not None and saved.ndim == 2) or (
            saved is None and only_channels_last(x) is not None and only_channels_last(gy) is not None):
        # channels-last: gW = gy's (N*P, K) rows^T @ the grid's (N*P, C) rows, one GEMM
        xs = saved if saved is not None else _grid_rows(x, *stride)
        g = gy.transpose(0, 2, 3, 1).reshape(-1, k)
        step = chunk_for(2 * (c + k) * p * gy.dtype.itemsize, n, CHUNK_BYTES)
        parts = np.zeros((max(1, -(-n // step)), k, c), gy.dtype)

        def chunk_last(lo, hi):
            np.matmul(g[lo * p:hi * p].T, xs[lo * p:hi * p], out=parts[lo // step])

        parallel_for(n, step, chunk_last)
        return parts.sum(axis=0).reshape(w_shape)
    step = chunk_for(2 * (c + k) * p * gy.dtype.itemsize, n, CHUNK_BYTES)
    partial = np.zeros((max(1, -(-n // step)), k, c), gy.dtype)

    def chunk(lo, hi):
        xs = saved[lo:hi] if saved is not None else _grid(x, *stride, lo, hi)
        g = gy[lo:hi].reshape(hi - lo, k, p)
        np.sum(np.matmul(g, xs.transpose(0, 2, 1)), axis=0, out=partial[lo // step])

    parallel_for(n, step, chunk)
    return partial.sum(axis=0).reshape(w_shape)


def pointwise_bwd_data(gy, w, x_shape, sh, sw):
    """The input gradient: W^T @ gy per image, put on the strided grid (a ResNet shortcut's
    stride 2 leaves the other positions 0), with no columns to scatter."""
    n, c, h, wd = x_shape
    k, (ho, wo) = w.shape[0], gy.shape[2:]
    gl = only_channels_last(gy)
    if gl is not None:  # W^T @ gy is (N*P, K) @ (K, C) in channels-last memory
        gx = empty_channels_last(x_shape, gy.dtype)
        gxl, wmat = gx.transpose(0, 2, 3, 1), w.reshape(k, c)

        def chunk_last(lo, hi):
            g = gl[lo:hi].reshape(-1, k)
            if (sh, sw) == (1, 1):
                np.matmul(g, wmat, out=gxl[lo:hi].reshape(-1, c))
                return
            gxl[lo:hi].fill(0)
            gxl[lo:hi, ::sh, ::sw] = (g @ wmat).reshape(hi - lo, ho, wo, c)

        _over_images(n, (c + k) * ho * wo, gy.itemsize, chunk_last)
        return gx
    wt = np.ascontiguousarray(w.reshape(k, c).T)
    gx = np.empty(x_shape, gy.dtype) if (sh, sw) == (1, 1) else np.zeros(x_shape, gy.dtype)

    def chunk(lo, hi):
        g = np.matmul(wt, gy[lo:hi].reshape(hi - lo, k, ho * wo))
        gx[lo:hi, :, ::sh, ::sw] = g.reshape(hi - lo, c, ho, wo)

    parallel_for(n, chunk_for((c + k) * ho * wo * gy.dtype.itemsize, n, CHUNK_BYTES), chunk)
    return gx
