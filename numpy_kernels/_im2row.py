"""Patch rows: the columns of im2col transposed, for convs with many input channels.

OpenBLAS multiplies a tall matrix by a narrow one faster than the other way round when a
conv has few output channels (2-core Xeon, one thread, 16 images: 32->32 channels at 16x16,
(K, Q) @ (Q, nb*P) 111 GFLOP/s against (nb*P, Q) @ (Q, K) 179), and a patch row is built
from an NHWC copy of the image in runs of ``kw * C`` values instead of runs of one output row.
So for ``C >= ROWS_MIN_CHANNELS`` a conv's chunk is

    rows (nb*P, kh*kw*C) = patches of the padded NHWC image, in (i, j, c) order
    out  (nb*P, K)       = rows @ W^T,  W^T (kh*kw*C, K) = w.transpose(2, 3, 1, 0)
    y    (nb, K, P)      = out transposed back while the chunk is cached

and the weight gradient is ``sum_n rows[n]^T @ gy[n]^T``, transposed to (K, C, kh, kw).

Example:
    >>> x = np.arange(2 * 16 * 3 * 3, dtype=np.float32).reshape(2, 16, 3, 3)
    >>> rows = im2row(x, (3, 3), (1, 1), (1, 1), np.empty((2, 9, 144), np.float32))
    >>> float(rows[0, 4, 4 * 16 + 5]) == float(x[0, 5, 1, 1])   # centre tap of channel 5
    True
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from kernel_geometry import int_geometry, out_hw

from ._parallel import chunk_for, parallel_for, scratch, scratch_kept

# Measured per 16-image chunk, one thread (im2col + GEMM now, against the rows path):
# 16 channels at 32x32 1.54 -> 1.30 ms, 32 at 16x16 0.90 -> 0.66, 64 at 8x8 0.82 -> 0.51.
# With 3 channels a patch row's runs are 9 values long and the row-run im2col wins.
ROWS_MIN_CHANNELS = 16
# Below this many output positions per image the weight gradient is one GEMM over the chunk
# (one thread, a chunk's rows^T @ gy^T: 64 images, 64 channels at 8x8 2.24 -> 1.60 ms; at
# 16x16, 32 channels, equal; at 32x32, 16 channels, per image is faster, 0.32 against 0.35).
ONE_GEMM_MIN_POSITIONS = 256
L1_BYTES = 1 << 15  # a core's L1 data cache (32 KB on the Xeon and EPYC VMs measured here)


def channels_last(a):
    """The (N, H, W, C) C-contiguous view of a 4-D array ``a`` (N, C, H, W) whose memory is
    channels-last (PyTorch's ``channels_last`` memory format), else None.

    The patch-row convs below write their outputs and input gradients so, and read such
    arrays without the NCHW <-> NHWC copies (6x a plain copy): a chain of convs, with the
    BatchNorms, ReLUs and adds between them, stays channels-last.

    Example:
        >>> channels_last(np.zeros((2, 5, 5, 3)).transpose(0, 3, 1, 2)).shape
        (2, 5, 5, 3)
        >>> channels_last(np.zeros((2, 3, 5, 5))) is None
        True
    """
    if a.ndim != 4:
        return None
    t = a.transpose(0, 2, 3, 1)
    return t if t.flags.c_contiguous else None


def only_channels_last(a):
    """:func:`channels_last`'s view, for an array that is not also plain C-contiguous (one
    whose C or H*W is 1 is both, and the NCHW paths take it)."""
    return None if a.flags.c_contiguous else channels_last(a)


def empty_channels_last(shape, dtype):
    """A new (N, C, H, W) array with channels-last memory."""
    n, c, h, w = shape
    return np.empty((n, h, w, c), dtype).transpose(0, 3, 1, 2)


def to_nhwc(dst, x):
    """``dst`` (nb, H, W, C), a view maybe inside a padded buffer, = NCHW ``x`` transposed, a
    block of channels at a time whose planes fit in the L1 cache together (else the reads of
    the many 4 KB-apart planes evict each other: 8 images, one thread, 64 channels at 32x32
    0.79 -> 0.27 ms, 128 channels 2.33 -> 0.57 ms); a plain copy when ``x`` is channels-last."""
    c = x.shape[1]
    if c > 1 and channels_last(x) is not None:
        np.copyto(dst, x.transpose(0, 2, 3, 1))
        return dst
    step = max(1, L1_BYTES // max(1, x.shape[2] * x.shape[3] * x.itemsize))
    if step >= c:
        np.copyto(dst, x.transpose(0, 2, 3, 1))
        return dst
    for c0 in range(0, c, step):
        np.copyto(dst[..., c0:c0 + step], x[:, c0:c0 + step].transpose(0, 2, 3, 1))
    return dst


def to_nchw(dst, src):
    """``dst`` (nb, C, H, W) = ``src`` (nb, H, W, C) transposed, a block of rows at a time
    whose C values per position fit in the L1 cache (8 images of 32x32, one thread: 64
    channels 0.31 -> 0.19 ms, 128 channels 0.83 -> 0.30 ms)."""
    h, w, c = src.shape[1:]
    step = max(1, L1_BYTES // max(1, w * c * src.itemsize))
    if step >= h:
        np.copyto(dst, src.transpose(0, 3, 1, 2))
        return dst
    for h0 in range(0, h, step):
        np.copyto(dst[:, :, h0:h0 + step], src[:, h0:h0 + step].transpose(0, 3, 1, 2))
    return dst


def uses_rows(channels: int, dilation=(1, 1), groups: int = 1) -> bool:
    """True when a conv over ``channels`` input channels runs on patch rows (and its kept
    columns, the ``saved`` of ``conv2d_fwd``, are rows ``(N, P, Q)``, not ``(N, Q, P)``)."""
    return channels >= ROWS_MIN_CHANNELS and tuple(dilation) == (1, 1) and groups == 1


def weight_rows(wmat, c, kh, kw):
    """(K, C*kh*kw) weights in (c, i, j) order -> W^T (kh*kw*C, K) in the rows' (i, j, c) order."""
    k = wmat.shape[0]
    return np.ascontiguousarray(wmat.reshape(k, c, kh, kw).transpose(2, 3, 1, 0)).reshape(-1, k)


def im2row(x, kernel, stride, padding, out):
    """NCHW ``x`` (nb, C, H, W) -> ``out`` (nb, Ho*Wo, kh*kw*C): output position p's patch."""
    kh, kw, sh, sw, ph, pw = int_geometry(kernel, stride, padding)
    nb, c, h, w = x.shape
    ho, wo = out_hw(x.shape, kernel, stride, padding)
    buf, kept = scratch_kept("im2row-pad", (nb, h + 2 * ph, w + 2 * pw, c), x.dtype, (ph, pw))
    if not kept:  # only im2row writes this buffer, so a border written for this shape stays
        buf[:, :ph] = 0
        buf[:, h + ph:] = 0
        buf[:, ph:h + ph, :pw] = 0
        buf[:, ph:h + ph, w + pw:] = 0
    to_nhwc(buf[:, ph:h + ph, pw:w + pw], x)
    sn, s_h, s_w, sc = buf.strides
    patches = as_strided(buf, (nb, ho, wo, kh, kw, c), (sn, s_h * sh, s_w * sw, s_h, s_w, sc))
    np.copyto(out.reshape(nb, ho, wo, kh, kw, c), patches)
    return out


def conv_rows_chunk(x, wrows, kernel, stride, padding, rows, result):
    """The conv of the chunk ``x`` through its patch ``rows`` (nb, P, Q), which are filled
    here, into ``result``: (nb*P, K), channels-last, straight from the GEMM, or (nb, K, P)."""
    im2row(x, kernel, stride, padding, rows)
    if result.ndim == 2:
        return np.matmul(rows.reshape(result.shape[0], -1), wrows, out=result)
    nb, k, p = result.shape
    out = scratch("rows-out", (nb * p, k), result.dtype)
    np.matmul(rows.reshape(nb * p, -1), wrows, out=out)
    ho, wo = out_hw(x.shape, kernel, stride, padding)
    to_nchw(result.reshape(nb, k, ho, wo), out.reshape(nb, ho, wo, k))
    return result


def weight_grad_rows(rows, gy, partial):
    """``partial`` (Q, K) = sum over the chunk's images of rows[n]^T (Q, P) @ gy[n]^T (P, K):
    per image when the images are large, else one GEMM over the chunk's (nb*P) positions."""
    nb, k = gy.shape[:2]
    p = rows.shape[1]
    last = channels_last(gy)
    if last is not None:  # gy^T is already (nb*P, K)
        g = last.reshape(nb, p, k)
        if p >= ONE_GEMM_MIN_POSITIONS:
            np.sum(np.matmul(rows.transpose(0, 2, 1), g), axis=0, out=partial)
        else:
            np.matmul(rows.reshape(nb * p, -1).T, g.reshape(nb * p, k), out=partial)
        return partial
    if p >= ONE_GEMM_MIN_POSITIONS:
        np.sum(np.matmul(rows.transpose(0, 2, 1), gy.reshape(nb, k, p).transpose(0, 2, 1)),
               axis=0, out=partial)
        return partial
    g = scratch("rows-gy-t", (nb, p, k), gy.dtype)
    to_nhwc(g.reshape(nb, *gy.shape[2:], k), gy)
    np.matmul(rows.reshape(nb * p, -1).T, g.reshape(nb * p, k), out=partial)
    return partial


def rows_to_weight(gw_rows, w_shape):
    """(kh*kw*C, K) in the rows' order -> the weight gradient (K, C, kh, kw)."""
    k, c, kh, kw = w_shape
    return np.ascontiguousarray(gw_rows.reshape(kh, kw, c, k).transpose(3, 2, 0, 1))


def conv_bwd_data_rows(gy, w, x_shape, stride, padding, chunk_bytes):
    """The input gradient of a conv whose windows do not tile as a transposed conv (stride 2,
    say): per chunk, patch-row gradients ``gy^T (nb*P, K) @ W (K, Q)`` added back into an
    NHWC image at each tap's strided positions, in runs of C values, then transposed to NCHW
    (against the batch-last scatter, 2 threads, a 3x3 stride-2 conv's forward + backward on
    16 images of 32x32: 64 channels 14.4-18.7 -> 7.0-7.4 ms, 128 channels 33.7-41.1 ->
    19.3-20.7 ms)."""
    n, c, h, wd = x_shape
    k, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = gy.shape[2:]
    w_rows = np.ascontiguousarray(weight_rows(w.reshape(k, -1), c, kh, kw).T, dtype=gy.dtype)  # (K, Q)
    gx = empty_channels_last(x_shape, gy.dtype)
    gx_last, gy_last = gx.transpose(0, 2, 3, 1), channels_last(gy)
    hp, wp = h + 2 * ph, wd + 2 * pw
    r = -(-kw // sw)  # passes per tap row

    def chunk(lo, hi):
        nb = hi - lo
        if gy_last is not None:
            g = gy_last[lo:hi]
        else:
            g = to_nhwc(scratch("rows-gy", (nb, ho, wo, k), gy.dtype), gy[lo:hi])
        grows = scratch("rows-grad", (nb * ho * wo, kh * kw * c), gy.dtype)
        np.matmul(g.reshape(-1, k), w_rows, out=grows)
        g6 = grows.reshape(nb, ho, wo, kh, kw, c)
        gxp = scratch("rows-gx", (nb, hp, wp, c), gy.dtype)
        gxp.fill(0)
        sn, s_h, s_w, s_c = gxp.strides
        for i in range(kh):
            # NOTE: a patch row's taps (i, 0..kw-1) are one run of kw*C values in the NHWC
            # image; the windows of outputs b, b + r, b + 2r … (r*sw >= kw) never overlap, so
            # each of r passes adds whole runs (3x3 stride 2: 6 passes of 3C, not 9 of C).
            for t in range(min(r, wo)):
                src = g6[:, :, t::r, i].reshape(nb, ho, -1, kw * c)
                dst = as_strided(gxp[:, i, sw * t], src.shape, (sn, sh * s_h, r * sw * s_w, s_c))
                np.add(dst, src, out=dst)
        np.copyto(gx_last[lo:hi], gxp[:, ph:ph + h, pw:pw + wd])

    per_item = (k + 2 * kh * kw * c) * ho * wo * gy.dtype.itemsize
    parallel_for(n, chunk_for(per_item, n, chunk_bytes, align=8), chunk)
    return gx
