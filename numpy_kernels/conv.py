"""conv2d on NumPy: im2col + BLAS GEMM, one cache-sized chunk of the batch at a time, on threads.

The columns of a chunk of ``nb`` images, ``(nb, C*kh*kw, Ho*Wo)``, are still in the L2 cache
when the GEMM reads them.  Training keeps them for the weight gradient up to a size cap (a
batch's columns are up to 25x its input); beyond it, and in inference, they live only in
per-thread scratch.  Outputs are NCHW arrays, channels-last in memory where the conv runs on patch rows
(``_im2row.channels_last``).

    y[n]  (K, P)  = W (K, Q) @ cols[n] (Q, P)          (P = Ho*Wo, Q = C*kh*kw)
    gW    (K, Q)  = sum over chunks of gy_chunk (K, nb*P) @ cols_chunk (nb*P, Q)
    gx            = a transposed convolution for stride 1, else W^T @ gy scattered back (col2im)

Example:
    >>> y, cols = conv2d_fwd(np.ones((2, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32),
    ...                      None, (1, 1), (1, 1))
    >>> y.shape, float(y[0, 0, 2, 2])
    ((2, 4, 5, 5), 27.0)
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from kernel_geometry import int_geometry, out_hw

from . import _conv_pointwise, _im2row, activation
from ._parallel import chunk_for, parallel_for, per_channel, scratch, scratch_kept

# The forward keeps a batch's columns for the weight gradient up to this size (else rebuilds).
KEEP_COLS_MAX_BYTES = 1 << 27
# Patch rows are rebuilt in cache by the weight gradient rather than kept when they exceed this
# many times the input: writing them out and reading them back costs more than building them
# twice (3x3 'same' convs, 64 images, 2 threads, forward + weight gradient, kept against
# rebuilt: 16 channels at 32x32 6.13 -> 4.66 ms, 32 at 16x16 3.11 -> 2.63, 64 at 8x8 2.41 ->
# 2.32; at stride 2 (2.25x the input) keeping wins, 16 -> 32 channels 1.80 against 2.22).
KEEP_ROWS_MAX_RATIO = 4
# ... and when one image's rows fit in a core's L2 cache: a larger image's rows leave the cache
# between the copy and the GEMM either way (128 channels at 32x32, 16 images: a 3x3 conv's
# forward + backward 48.4-49.4 ms with its 4.7 MB rows kept, 49.6-53.2 rebuilt).
REBUILD_ROWS_MAX_IMAGE_BYTES = 1 << 20
# Working set per chunk, measured on LeNet-5 (2-core Xeon): the forward's columns want the L2
# cache; the scatter-add of the input gradient is many small slab operations, so it wants long
# rows, but not so long that its GEMM's output leaves the cache, and chunks of a multiple of
# 8 images, whose rows vectorise best (batch 256, one thread: 64 MB chunks 5.0 ms, 8 MB
# 3.8 ms; 2 MB chunks of 43 images 6.1 ms, of 40 images 3.9 ms).  Smaller chunks measured
# faster alone but slower in the step, where this runs beside the weight gradient.
FWD_CHUNK_BYTES = 1 << 22
BWD_DATA_CHUNK_BYTES = 1 << 23
BWD_WEIGHT_CHUNK_BYTES = 1 << 24
# im2col copies through a row-shifted image when output rows are at most this wide: the runs
# of a direct copy are one output row long (LeNet's second conv, 10 wide: 0.21 -> 0.13 ms per
# 32 images; its first, 28 wide: no gain).
ROW_RUNS_MAX_WIDTH = 16


def padded(x, ph, pw, tag, value=0.0, extra=(0, 0)):
    """(nb, C, H, W) -> the same padded by (ph, pw), plus ``extra`` rows/columns at the bottom
    and right, in per-thread scratch (x itself if no padding)."""
    eh, ew = extra
    if not (ph or pw or eh or ew):
        return x
    nb, c, h, w = x.shape
    # Only padded() writes these buffers, so a border written for the same shape stays.
    buf, kept = scratch_kept(tag, (nb, c, h + 2 * ph + eh, w + 2 * pw + ew), x.dtype,
                             (ph, pw, eh, ew, value))
    if not kept:
        buf[:, :, :ph] = value
        buf[:, :, h + ph:] = value
        buf[:, :, ph:h + ph, :pw] = value
        buf[:, :, ph:h + ph, w + pw:] = value
    buf[:, :, ph:h + ph, pw:w + pw] = x
    return buf


def windows(xpad, kh, kw, sh, sw, ho, wo, dh=1, dw=1):
    """View (nb, C, kh, kw, Ho, Wo) of padded ``xpad``: [n, c, i, j, oh, ow] = xpad[n, c, oh*sh+i*dh, ow*sw+j*dw]."""
    sn, sc, s_h, s_w = xpad.strides
    return as_strided(xpad, xpad.shape[:2] + (kh, kw, ho, wo),
                      (sn, sc, s_h * dh, s_w * dw, s_h * sh, s_w * sw))


def im2col(x, kernel, stride, padding, out=None, dilation=(1, 1)):
    """NCHW ``x`` -> columns (N, C*kh*kw, Ho*Wo), rows in the weight's (c, i, j) order.

    Example:
        >>> im2col(np.ones((2, 3, 5, 5)), (3, 3), (1, 1), (1, 1)).shape
        (2, 27, 25)
    """
    kh, kw, sh, sw, ph, pw = int_geometry(kernel, stride, padding)
    ho, wo = out_hw(x.shape, kernel, stride, padding, dilation)
    n, c = x.shape[:2]
    cols = np.empty((n, c * kh * kw, ho * wo), x.dtype) if out is None else out
    xpad = padded(x, ph, pw, "im2col-pad")
    if sh == 1 and dilation[0] == 1 and wo <= ROW_RUNS_MAX_WIDTH:
        # NOTE: two copies with longer runs: rows[n, c, j, h, :] = xpad[n, c, h, j*dw::sw][:wo];
        # then offset (i, j)'s columns, rows i..i+ho-1 of rows[n, c, j], are one run of ho*wo.
        hp = xpad.shape[2]
        sn, sc, s_h, s_w = xpad.strides
        rows = scratch("im2col-rows", (n, c, kw, hp, wo), x.dtype)
        np.copyto(rows, as_strided(xpad, rows.shape, (sn, sc, s_w * dilation[1], s_h, s_w * sw)))
        rn, rc, rj, _, item = rows.strides
        np.copyto(cols.reshape(n, c, kh, kw, ho * wo),
                  as_strided(rows, (n, c, kh, kw, ho * wo), (rn, rc, wo * item, rj, item)))
        return cols
    np.copyto(cols.reshape(n, c, kh, kw, ho, wo), windows(xpad, kh, kw, sh, sw, ho, wo, *dilation))
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation=(1, 1)):
    """The adjoint of :func:`im2col`: scatter-add (N, C*kh*kw, Ho*Wo) back into an NCHW array.

    Example:
        >>> col2im(np.ones((1, 4, 4)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0))[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    kh, kw, sh, sw, ph, pw = int_geometry(kernel, stride, padding)
    n, c, h, w = x_shape
    ho, wo = out_hw(x_shape, kernel, stride, padding, dilation)
    gxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    cols6 = cols.reshape(n, c, kh, kw, ho, wo)
    gwin = windows(gxp, kh, kw, sh, sw, ho, wo, *dilation)
    for i in range(kh):
        for j in range(kw):
            gwin[:, :, i, j] += cols6[:, :, i, j]  # one offset's windows never overlap
    return gxp[:, :, ph:ph + h, pw:pw + w]


def _conv_into(y, x, wmat, b, kernel, stride, padding, cols=None, relu=False, then=None):
    """y[...] = conv(x, W) + b (through a ReLU when ``relu``) for NCHW ``x`` and ``wmat``
    (K, C*kh*kw), chunked over the batch: the bias and ReLU touch each chunk while it is cached.

    The columns go to ``cols`` (N, Q, P) when given (kept for the weight gradient), else to
    per-thread scratch that stays in cache.  With ``then``, ``y`` is only the output's shape:
    each chunk's (nb, K, P) result stays in per-thread scratch and ``then(lo, hi, result)``
    consumes it while it is cached (the conv -> ReLU -> pool fusion).
    """
    n, k, ho, wo = y if then is not None else y.shape
    q, p = wmat.shape[1], ho * wo
    rows = _im2row.uses_rows(x.shape[1])
    if rows:
        wrows = _im2row.weight_rows(wmat, x.shape[1], *kernel)
    y_last = None if then is not None else _im2row.channels_last(y)
    if rows and y_last is not None:  # the GEMM's (nb*P, K) rows are y's memory: no transpose
        bias = None if b is None else b.astype(wmat.dtype, copy=False)
    else:
        bias = None if b is None else per_channel(b.astype(wmat.dtype, copy=False), p)

    def chunk(lo, hi):
        if then is not None or (y_last is not None and not rows):
            yc = scratch("conv-out", (hi - lo, k, p), wmat.dtype)
        elif rows and y_last is not None:
            yc = y_last[lo:hi].reshape((hi - lo) * p, k)
        else:
            yc = y[lo:hi].reshape(hi - lo, k, p)
        if rows:
            out = cols[lo:hi] if cols is not None else scratch("rows", (hi - lo, p, q), x.dtype)
            _im2row.conv_rows_chunk(x[lo:hi], wrows, kernel, stride, padding, out, yc)
        else:
            out = cols[lo:hi] if cols is not None else scratch("cols", (hi - lo, q, p), x.dtype)
            im2col(x[lo:hi], kernel, stride, padding, out)
            np.matmul(wmat, out, out=yc)
        if bias is not None:
            yc += bias
        if relu:
            activation.relu_into(yc, yc)
        if then is not None:
            then(lo, hi, yc)
        elif y_last is not None and not rows:  # transposed while the chunk is cached
            _im2row.to_nhwc(y_last[lo:hi], yc.reshape(hi - lo, k, ho, wo))

    parallel_for(n, chunk_for((q + k) * p * wmat.dtype.itemsize, n, FWD_CHUNK_BYTES), chunk)
    return y


def _new_output(shape, dtype, in_shape):
    """The output of a conv of ``in_shape``: channels-last when it runs on patch rows, whose
    GEMM gives it so (see ``_im2row.channels_last``), and for a 'same' conv to 16 channels or
    more (a ResNet's or VGG's first conv), whose output a patch-row conv reads next: a chain
    of mixed layouts costs more than the transposes (64x16x32x32 float32, x + y with the
    same layouts 63 us, with different ones 500 us).  Else NCHW (LeNet's convs)."""
    if (_im2row.uses_rows(in_shape[1]) or
            (_im2row.uses_rows(shape[1]) and tuple(shape[2:]) == tuple(in_shape[2:]))):
        return _im2row.empty_channels_last(shape, dtype)
    return np.empty(shape, dtype)


def kept_cols(x, w_shape, out_hw_, keep_cols):
    """The (N, Q, P) array the forward keeps its columns in for the weight gradient ((N, P, Q)
    patch rows where ``_im2row.uses_rows``), or None when ``keep_cols`` is False, they would
    take more than ``KEEP_COLS_MAX_BYTES``, or patch rows would be over ``KEEP_ROWS_MAX_RATIO``
    times the input's size and an image's rows fit in ``REBUILD_ROWS_MAX_IMAGE_BYTES``."""
    n, q, p = x.shape[0], int(np.prod(w_shape[1:])), out_hw_[0] * out_hw_[1]
    if not keep_cols or n * q * p * x.dtype.itemsize > KEEP_COLS_MAX_BYTES:
        return None
    if _im2row.uses_rows(x.shape[1]):
        rebuilt = (q * p > KEEP_ROWS_MAX_RATIO * x[0].size
                   and q * p * x.dtype.itemsize <= REBUILD_ROWS_MAX_IMAGE_BYTES)
        return None if rebuilt else np.empty((n, p, q), x.dtype)
    return np.empty((n, q, p), x.dtype)


def conv2d_fwd(x, w, b, stride, padding, keep_cols=True, dilation=(1, 1), groups=1, relu=False):
    """Cross-correlation of NCHW ``x`` with ``w`` (K, C, kh, kw) plus ``b``, then a ReLU when
    ``relu`` (fused: no extra pass); returns ``(y, cols)``.

    ``cols`` (N, C*kh*kw, Ho*Wo) are kept for the weight gradient when ``keep_cols`` and they
    take at most ``KEEP_COLS_MAX_BYTES``; otherwise it is None and the backward rebuilds them.
    """
    if _grouped_or_dilated(dilation, groups):
        y, cols = _general_fwd(x, w, b, stride, padding, keep_cols, dilation, groups)
        return (activation.relu_into(y, y) if relu else y), cols
    if _conv_pointwise.applies(w.shape, padding):
        return _conv_pointwise.pointwise_fwd(x, w, b, stride, keep_cols, relu)
    n, k = x.shape[0], w.shape[0]
    ho, wo = out_hw(x.shape, w.shape[2:], stride, padding)
    dtype = np.result_type(x.dtype, w.dtype)
    y = _new_output((n, k, ho, wo), dtype, x.shape)
    cols = kept_cols(x, w.shape, (ho, wo), keep_cols)
    _conv_into(y, x, w.reshape(k, -1).astype(dtype, copy=False), b, w.shape[2:], stride,
               padding, cols, relu)
    return y, cols


def use_transposed(x_shape, y_shape, kh, kw, stride, padding):
    """True for 'same' stride-1 convs, whose input gradient is best a transposed convolution.

    A conv that shrinks the image (LeNet's unpadded 5x5) would do 2-4x more multiply-adds that
    way than by scattering W^T @ gy back (measured: 2.65 ms against 7.8 ms at batch 256).
    """
    return (tuple(stride) == (1, 1) and padding[0] < kh and padding[1] < kw
            and tuple(y_shape[2:]) == tuple(x_shape[2:]))


def conv2d_bwd_data(gy, w, x_shape, stride, padding, saved=None, dilation=(1, 1), groups=1):
    """Input gradient: a transposed convolution for 'same' stride-1 convs, else W^T @ gy, col2im."""
    if _grouped_or_dilated(dilation, groups):
        return _general_bwd_data(gy, w, x_shape, stride, padding, dilation, groups)
    k, c, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    if _conv_pointwise.applies(w.shape, padding):
        return _conv_pointwise.pointwise_bwd_data(gy, w, x_shape, sh, sw)
    if use_transposed(x_shape, gy.shape, kh, kw, stride, padding):
        # NOTE: with stride 1, gx = conv(gy padded by k-1-p, W flipped in space, in/out swapped).
        wt = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)
        gx = _new_output(x_shape, gy.dtype, gy.shape)
        return _conv_into(gx, gy, wt, None, (kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw))
    if _im2row.uses_rows(c):
        return _im2row.conv_bwd_data_rows(gy, w, x_shape, stride, padding, BWD_DATA_CHUNK_BYTES)
    n, _, h, wd = x_shape
    ho, wo = gy.shape[2:]
    hp, wp = h + 2 * ph, wd + 2 * pw
    gx = np.empty(x_shape, gy.dtype)
    wt = w.reshape(k, -1).T
    # Stride 1: each window offset's rows are one contiguous run in a "wide" layout (below).
    wide = (sh, sw) == (1, 1)
    width = wp if wide else wo

    def chunk(lo, hi):
        # NOTE: batch-last layout (C, H, W, nb), so the scatter-add of W^T @ gy runs over long
        # rows.  With stride 1, gy is widened to the padded width wp with zero columns, so the
        # columns of offset (i, j) land on one contiguous run of the flattened padded image
        # starting at (i*wp + j)*nb; the zero columns add 0.0 to positions no window owns.
        nb = hi - lo
        g = scratch("gy-last", (k, ho, width, nb), gy.dtype)
        g[:, :, wo:] = 0
        np.copyto(g[:, :, :wo], gy[lo:hi].transpose(1, 2, 3, 0))
        gcols = scratch("gcols", (c * kh * kw, ho * width * nb), gy.dtype)
        np.matmul(wt, g.reshape(k, -1), out=gcols)
        if wide:  # not width == wp: a stride-(2, 1) conv with wo == wp is not wide (issue 19)
            run = ho * wp * nb
            flat = scratch("gx-flat", (c, (hp * wp + kw - 1) * nb), gy.dtype)
            flat.fill(0)
            g4 = gcols.reshape(c, kh, kw, run)
            for i in range(kh):
                for j in range(kw):
                    start = (i * wp + j) * nb
                    flat[:, start:start + run] += g4[:, i, j]
            gxp = flat[:, :hp * wp * nb].reshape(c, hp, wp, nb)
        else:
            g6 = gcols.reshape(c, kh, kw, ho, wo, nb)
            gxp = scratch("gx-last", (c, hp, wp, nb), gy.dtype)
            gxp.fill(0)
            for i in range(kh):
                for j in range(kw):
                    gxp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += g6[:, i, j]
        gx[lo:hi] = gxp[:, ph:ph + h, pw:pw + wd].transpose(3, 0, 1, 2)

    per_item = 2 * c * kh * kw * ho * width * gy.dtype.itemsize
    parallel_for(n, chunk_for(per_item, n, BWD_DATA_CHUNK_BYTES, align=8), chunk)
    return gx


def conv2d_bwd_weight(gy, x, w_shape, stride, padding, saved=None, dilation=(1, 1), groups=1):
    """Weight gradient: per chunk, the batch summed inside GEMMs; chunks summed in order.

    With the forward's columns (``saved``) each image is one small GEMM; without them each
    chunk rebuilds its columns batch-inside (Q, nb*P) in scratch and does one GEMM.
    """
    if _grouped_or_dilated(dilation, groups):
        return _general_bwd_weight(gy, x, w_shape, stride, padding, saved, dilation, groups)
    if _conv_pointwise.applies(w_shape, padding):
        return _conv_pointwise.pointwise_bwd_weight(gy, x, w_shape, stride, saved)
    k, c, kh, kw = w_shape
    n = x.shape[0]
    ho, wo = gy.shape[2:]
    q, p = c * kh * kw, ho * wo
    step = chunk_for(2 * q * p * x.dtype.itemsize, n, BWD_WEIGHT_CHUNK_BYTES)
    partial = np.zeros((max(1, -(-n // step)), k, q), gy.dtype)
    geo = int_geometry((kh, kw), stride, padding)

    def chunk_saved(lo, hi):
        # cols[n] (Q, P) @ gy[n]^T (P, K): OpenBLAS runs this orientation ~1.5x faster than
        # gy[n] @ cols[n]^T for LeNet's shapes (measured 470 vs 744 us at batch 64).
        g = gy[lo:hi].reshape(hi - lo, k, p)
        np.sum(np.matmul(saved[lo:hi], g.transpose(0, 2, 1)), axis=0,
               out=partial[lo // step].T)

    def chunk_rebuilt(lo, hi):
        nb = hi - lo
        cols = scratch("cols-cn", (q, nb * p), x.dtype)  # rows (c, i, j), columns (n, oh, ow)
        xpad = padded(x[lo:hi], geo[4], geo[5], "im2col-pad")
        np.copyto(cols.reshape(c, kh, kw, nb, ho, wo),
                  windows(xpad, kh, kw, geo[2], geo[3], ho, wo).transpose(1, 2, 3, 0, 4, 5))
        g = scratch("gy-cn", (k, nb, p), gy.dtype)
        np.copyto(g, gy[lo:hi].reshape(nb, k, p).transpose(1, 0, 2))
        np.matmul(g.reshape(k, nb * p), cols.T, out=partial[lo // step])

    if _im2row.uses_rows(c):
        partial = np.zeros((partial.shape[0], q, k), gy.dtype)

        def chunk_rows(lo, hi):
            rows = saved[lo:hi] if saved is not None else _im2row.im2row(
                x[lo:hi], (kh, kw), stride, padding, scratch("rows", (hi - lo, p, q), x.dtype))
            _im2row.weight_grad_rows(rows, gy[lo:hi], partial[lo // step])

        parallel_for(n, step, chunk_rows)
        return _im2row.rows_to_weight(partial.sum(axis=0), w_shape)
    parallel_for(n, step, chunk_saved if saved is not None else chunk_rebuilt)
    return partial.sum(axis=0).reshape(w_shape)


def conv2d_bwd_bias(gy):
    """Bias gradient: ``gy`` summed over N, H and W."""
    return gy.sum(axis=(0, 2, 3))


def conv2d_bwd_bias_relu(gy, y=None, relu=False, need_bias=True, write_g=True):
    """``(g, gb)``: ``gy`` masked by the ReLU that followed the conv (``y`` its output; ``gy``
    itself without one) and the bias gradient (None unless ``need_bias``), as the cuda
    kernel of the same name returns them (there ``g`` has the GEMMs' layout)."""
    g = activation.relu_bwd(gy, y) if relu else gy
    return (g if write_g else None), (conv2d_bwd_bias(g) if need_bias else None)


# --- grouped or dilated convolutions: whole-batch im2col, one batched GEMM over the groups ---
def _grouped_or_dilated(dilation, groups):
    return tuple(dilation) != (1, 1) or groups != 1


def _general_fwd(x, w, b, stride, padding, keep_cols, dilation, groups):
    """Columns (N, G, Q/G, P) of each group's channels times that group's weights (G, K/G, Q/G)."""
    n, k = x.shape[0], w.shape[0]
    ho, wo = out_hw(x.shape, w.shape[2:], stride, padding, dilation)
    cols = im2col(x, w.shape[2:], stride, padding, dilation=dilation)
    q = cols.shape[1] // groups
    wg = w.reshape(groups, k // groups, q).astype(cols.dtype, copy=False)
    y = np.matmul(wg, cols.reshape(n, groups, q, -1)).reshape(n, k, ho, wo)
    if b is not None:
        y += b.reshape(1, k, 1, 1)
    return y, (cols if keep_cols else None)


def _general_bwd_data(gy, w, x_shape, stride, padding, dilation, groups):
    n, k = gy.shape[:2]
    q = w[0].size
    wt = w.reshape(groups, k // groups, q).transpose(0, 2, 1)  # (G, Q/G, K/G)
    gcols = np.matmul(wt, gy.reshape(n, groups, k // groups, -1))  # (N, G, Q/G, P)
    return col2im(gcols.reshape(n, groups * q, -1), x_shape, w.shape[2:], stride, padding, dilation)


def _general_bwd_weight(gy, x, w_shape, stride, padding, saved, dilation, groups):
    n, k = gy.shape[:2]
    cols = saved if saved is not None else im2col(x, w_shape[2:], stride, padding, dilation=dilation)
    q = cols.shape[1] // groups
    g = gy.reshape(n, groups, k // groups, -1).transpose(0, 1, 3, 2)  # (N, G, P, K/G)
    gw = np.matmul(cols.reshape(n, groups, q, -1), g).sum(axis=0)   # (G, Q/G, K/G)
    return gw.transpose(0, 2, 1).reshape(w_shape)
