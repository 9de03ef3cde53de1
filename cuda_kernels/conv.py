"""conv2d building blocks: im2col / col2im kernels and the bias + ReLU epilogues, both ways.

The GEMMs go through ``xp.matmul`` (cuBLAS on a GPU).  Column layout is ``(C*kh*kw, N*Ho*Wo)``
so the forward, backward-data and backward-weight products are each one large GEMM:

    y^T  (K, N*P)   = W (K, Q) @ cols (Q, N*P)         (P = Ho*Wo, Q = C*kh*kw)
    gcols (Q, N*P)  = W^T @ gy^T,   gW (K, Q) = gy^T @ cols^T

``conv2d_epilogue_fwd_kernel`` turns the ``(K, N, P)`` GEMM output into NCHW while adding the bias
(and applying a ReLU that follows the conv), so neither costs an extra pass.  On the way back,
``conv2d_epilogue_bwd_kernel`` masks the upstream gradient by the ReLU, writes it in the ``(K, N*P)``
layout both backward GEMMs read and sums the bias gradient, in one launch: each channel is
split over about 16 images per block (4x more blocks than channels at batch 64), and the last
block of a channel adds the splits' sums in a fixed order, so two runs give the same bits.

Example:
    >>> from cuda_kernels import conv                          # doctest: +SKIP
    >>> cols = conv.im2col_wide(x, (3, 3), (1, 1), (1, 1))         # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda, int32

from . import _launch, checks
from kernel_geometry import int_geometry, out_hw

from ._device import add_channel_split, covering_windows, unravel_nchw

SHARED = _launch.SHARED_SIZE  # shared-memory slots of a block reduction


@_launch.cached_jit
def im2col_fwd_kernel(x, cols, kh, kw, sh, sw, ph, pw, Wo, dh, dw):
    """cols[(c*kh + a)*kw + b, n*P + oh*Wo + ow] = x[n, c, oh*sh - ph + a*dh, ow*sw - pw + b*dw] or 0.

    One thread per (c, column) writes that column's kh*kw rows: four integer divisions per
    thread instead of six per element, and each row's writes stay coalesced across the warp.
    """
    N, C, H, W = x.shape
    NP = cols.shape[1]
    P = NP // N
    for i in range(cuda.grid(1), C * NP, cuda.gridsize(1)):
        c = i // NP
        col = i - c * NP
        n = col // P
        p = col - n * P
        oh = p // Wo
        h0 = oh * sh - ph
        w0 = (p - oh * Wo) * sw - pw
        q = c * kh * kw
        for a in range(kh):
            h = h0 + a * dh
            for b in range(kw):
                w = w0 + b * dw
                if h >= 0 and h < H and w >= 0 and w < W:
                    cols[q, col] = x[n, c, h, w]
                else:
                    cols[q, col] = 0
                q += 1


@_launch.cached_jit
def im2col_bwd_kernel(cols, gx, kh, kw, sh, sw, ph, pw, Wo, zero):
    """col2im: gx[n, c, h, w] = sum of the column entries that im2col copied from (h, w).

    One thread per input element gathers from the output positions whose window covers it,
    so no atomics are needed and the sum is deterministic.
    """
    N, C, H, W = gx.shape
    NP = cols.shape[1]
    P = NP // N
    Ho = P // Wo
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        n, c, h, w = unravel_nchw(i, C, H, W)
        oh_lo, oh_hi = covering_windows(h, ph, kh, sh, Ho)
        ow_lo, ow_hi = covering_windows(w, pw, kw, sw, Wo)
        acc = zero
        for oh in range(oh_lo, oh_hi + 1):
            row = (c * kh + h + ph - oh * sh) * kw + w + pw  # (c*kh + a)*kw + b + ow*sw
            col = n * P + oh * Wo
            for ow in range(ow_lo, ow_hi + 1):
                acc += cols[row - ow * sw, col + ow]
        gx[n, c, h, w] = acc


@_launch.cached_jit
def im2col_dilated_bwd_kernel(cols, gx, kh, kw, sh, sw, ph, pw, Wo, dh, dw, zero):
    """col2im for dilated windows: gx[n, c, h, w] gathers, over the kernel taps (a, b), the
    column entry of the one output position (if any) whose tap a, b lands on (h, w).

    Deterministic (a fixed order, no atomics); one division per tap and axis.
    """
    N, C, H, W = gx.shape
    NP = cols.shape[1]
    P = NP // N
    Ho = P // Wo
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        n, c, h, w = unravel_nchw(i, C, H, W)
        acc = zero
        for a in range(kh):
            top = h + ph - a * dh
            oh = top // sh
            if top >= 0 and oh * sh == top and oh < Ho:
                for b in range(kw):
                    left = w + pw - b * dw
                    ow = left // sw
                    if left >= 0 and ow * sw == left and ow < Wo:
                        acc += cols[(c * kh + a) * kw + b, n * P + oh * Wo + ow]
        gx[n, c, h, w] = acc


@_launch.cached_jit
def conv2d_epilogue_fwd_kernel(src, bias, y, has_bias, relu, zero):
    """y[n, k, p] = src[k, n, p] (+ bias[k]), then max(., 0) when ``relu`` (NaN passes)."""
    N, K, P = y.shape
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        t = i // P
        p = i - t * P
        n = t // K
        k = t - n * K
        v = src[k, n, p]
        if has_bias:
            v += bias[k]
        if relu and v <= 0:
            v = zero
        y[n, k, p] = v


def _make_bias_relu_bwd(acc_t):
    @_launch.cached_jit
    def conv2d_epilogue_bwd_kernel(gy, y, g, gb, relu, write_g, has_bias, per, partial, tickets):
        """Block (k, s): g[k, n*P + p] = gy[n, k, p] (0 where ``relu`` and y[n, k, p] <= 0) for
        the ``per`` images n of split s; their sum over channel k (a fixed tree) goes to
        partial[s, k].  The last of channel k's blocks to finish adds partial[0..S, k] in
        order into gb[k], so gb is the same bits every run."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        N, K, P = gy.shape
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        s = cuda.blockIdx.y
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            acc = acc_t(0)
            for n in range(s * per, min(N, s * per + per)):
                for p in range(t, P, nt):  # consecutive threads read consecutive p
                    v = gy[n, k, p]
                    if relu and y[n, k, p] <= 0:
                        v = acc_t(0)
                    if write_g:
                        g[k, n * P + p] = v
                    acc += v
            if has_bias:
                add_channel_split(sm, last, acc, partial, tickets, gb, k, t, nt, acc_t(0))

    return conv2d_epilogue_bwd_kernel


_bias_bwd_cache: dict = {}


def conv2d_epilogue_bwd_kernel(dtype):
    """The backward epilogue kernel specialised for ``dtype`` (float32 or float64)."""
    return _launch.specialised(_bias_bwd_cache, _make_bias_relu_bwd, dtype)


def im2col_wide(x, kernel, stride, padding, dilation=(1, 1)):
    """Columns ``(C*kh*kw, N*Ho*Wo)`` of NCHW ``x``: the batch side by side, so one GEMM
    ``W (K, C*kh*kw) @ cols`` convolves every image (NumPy's ``im2col`` keeps a batch axis instead,
    (N, C*kh*kw, Ho*Wo), so the names differ).

    Example:
        >>> im2col_wide(xp.ones((1, 1, 3, 3)), (2, 2), (1, 1), (0, 0)).shape   # doctest: +SKIP
        (4, 4)
    """
    x = _launch.contiguous(x)
    n, c = x.shape[:2]
    ho, wo = out_hw(x.shape, kernel, stride, padding, dilation)
    cols = _launch.xp.empty((c * kernel[0] * kernel[1], n * ho * wo), dtype=x.dtype)
    _launch.launch(im2col_fwd_kernel, _launch.blocks_for(c * n * ho * wo), _launch.TPB,
                   x, cols, *int_geometry(kernel, stride, padding), wo,
                   int(dilation[0]), int(dilation[1]))
    return cols


def col2im_wide(cols, x_shape, kernel, stride, padding, dilation=(1, 1)):
    """The adjoint of :func:`im2col_wide`: sums columns back into an array of ``x_shape``.

    Example:
        >>> col2im_wide(cols, (1, 1, 3, 3), (2, 2), (1, 1), (0, 0)).shape   # doctest: +SKIP
        (1, 1, 3, 3)
    """
    cols = _launch.contiguous(cols)
    _, wo = out_hw(x_shape, kernel, stride, padding, dilation)
    gx = _launch.xp.empty(tuple(x_shape), dtype=cols.dtype)
    geometry = int_geometry(kernel, stride, padding)
    if tuple(dilation) == (1, 1):
        _launch.launch(im2col_bwd_kernel, _launch.blocks_for(gx.size), _launch.TPB,
                       cols, gx, *geometry, wo, _launch.scalar(0, cols.dtype))
    else:
        _launch.launch(im2col_dilated_bwd_kernel, _launch.blocks_for(gx.size), _launch.TPB,
                       cols, gx, *geometry, wo, int(dilation[0]), int(dilation[1]),
                       _launch.scalar(0, cols.dtype))
    return gx


def epilogue(src, bias, n, relu=False):
    """NCHW-ordered ``(N, K, P)`` from the GEMM output ``src`` (K, N*P), plus ``bias`` (or None),
    through a ReLU when ``relu``.

    Example:
        >>> epilogue(xp.ones((2, 3)), xp.ones(2), 1).shape   # doctest: +SKIP
        (1, 2, 3)
    """
    k = src.shape[0]
    src = _launch.contiguous(src).reshape(k, n, -1)
    y = _launch.xp.empty((n, k, src.shape[2]), dtype=src.dtype)
    b = src.reshape(-1)[:1] if bias is None else _launch.contiguous(bias).astype(src.dtype, copy=False)
    _launch.launch(conv2d_epilogue_fwd_kernel, _launch.blocks_for(y.size), _launch.TPB,
                   src, b, y, bias is not None, bool(relu), _launch.scalar(0, src.dtype))
    return y


def conv2d_bwd_bias_relu(gy, y=None, relu=False, need_bias=True, write_g=True):
    """One launch: ``g`` = NCHW ``gy`` masked by the ReLU (where ``relu``; ``y`` is the forward
    output) in the (K, N*P) layout the backward GEMMs read, and the bias gradient (K,) (None
    unless ``need_bias``).  Returns ``(g or None, gb)``.

    Example:
        >>> g, gb = conv2d_bwd_bias_relu(gy, y, relu=True)     # doctest: +SKIP
    """
    gy = _launch.contiguous(gy)
    n, k = gy.shape[:2]
    gy3 = gy.reshape(n, k, gy.shape[2] * gy.shape[3])
    xp = _launch.xp
    g = xp.empty((k, gy3.shape[0] * gy3.shape[2]), gy.dtype) if write_g else None
    gb = xp.empty((k,), gy.dtype) if need_bias else None
    if n == 0 or gy3.shape[2] == 0:
        if gb is not None:
            gb[...] = 0
        return g, gb
    y3 = _launch.contiguous(y).reshape(gy3.shape) if relu else gy3
    dummy = gy3.reshape(-1)[:1]
    splits, per, partial, tickets = checks.split_reduction(n, k if need_bias else 0, gy.dtype, k)
    _launch.launch(conv2d_epilogue_bwd_kernel(gy.dtype), (_launch.blocks_for(k, 1), splits),
                   _launch.reduce_threads(gy3.shape[2]), gy3, y3,
                   g if write_g else dummy.reshape(1, 1), gb if need_bias else dummy,
                   bool(relu), bool(write_g), bool(need_bias), per, partial, tickets)
    return g, gb


def bias_grad(gy):
    """Bias gradient: NCHW ``gy`` summed over N, H and W, shape (K,), deterministically.

    Example:
        >>> bias_grad(xp.ones((2, 3, 4, 5)))   # doctest: +SKIP
        array([40., 40., 40.])
    """
    return conv2d_bwd_bias_relu(gy, write_g=False)[1]


def conv2d_fwd(x, w, b, stride, padding, keep_cols=True, dilation=(1, 1), groups=1, relu=False):
    """Cross-correlation of NCHW ``x`` with ``w`` plus ``b`` (then a ReLU when ``relu``);
    returns ``(y, cols or None)``.

    With ``groups`` the GEMM is batched over the groups: (G, K/G, Q/G) @ (G, Q/G, N*P).

    Example:
        >>> y, cols = conv2d_fwd(x, w, None, (1, 1), (1, 1))   # doctest: +SKIP
    """
    k = w.shape[0]
    ho, wo = out_hw(x.shape, w.shape[2:], stride, padding, dilation)
    if x.shape[0] == 0:  # an empty batch: no launch (the kernels divide by the batch size)
        return _launch.xp.empty((0, k, ho, wo), x.dtype), None
    yt, cols = conv2d_gemm(x, w, stride, padding, dilation, groups)
    y = epilogue(yt, b, x.shape[0], relu)  # (N, K, P)
    return y.reshape(x.shape[0], k, ho, wo), (cols if keep_cols else None)


def conv2d_gemm(x, w, stride, padding, dilation=(1, 1), groups=1):
    """``(yt, cols)``: the conv as its GEMM output ``yt`` (K, N*P), before any epilogue, and the
    im2col columns it read (a non-empty batch).

    Example:
        >>> yt, cols = conv2d_gemm(x, w, (1, 1), (1, 1))   # doctest: +SKIP
    """
    k = w.shape[0]
    cols = im2col_wide(x, w.shape[2:], stride, padding, dilation)  # (Q, N*P)
    wg = w.astype(cols.dtype, copy=False)
    if groups == 1:
        yt = _launch.gemm(wg.reshape(k, -1), cols)  # (K, N*P)
    else:
        yt = _launch.gemm(wg.reshape(groups, k // groups, -1), cols.reshape(groups, -1, cols.shape[1]))
    return yt.reshape(k, -1), cols


def _gy_t(gy):
    """The (K, N*P) matrix the GEMMs read: ``gy`` itself when :func:`conv2d_bwd_bias_relu` made
    it, else NCHW ``gy`` rearranged by that kernel (one launch, no bias)."""
    if gy.ndim == 2:
        return gy
    return conv2d_bwd_bias_relu(gy, need_bias=False)[0]


def conv2d_bwd_data(gy, w, x_shape, stride, padding, saved=None, dilation=(1, 1), groups=1):
    """Input gradient: gcols = W^T @ gy per group (cuBLAS), then :func:`col2im_wide`.

    ``gy`` is NCHW, or the (K, N*P) matrix from :func:`conv2d_bwd_bias_relu`.
    """
    if x_shape[0] == 0:
        return _launch.xp.zeros(tuple(x_shape), w.dtype)
    k = w.shape[0]
    g = _gy_t(gy)
    if groups == 1:
        gcols = _launch.gemm(w.reshape(k, -1).T, g)  # (Q, N*P); cuBLAS reads W transposed
    else:
        wt = w.reshape(groups, k // groups, -1).transpose(0, 2, 1)  # (G, Q/G, K/G)
        gcols = _launch.gemm(wt, g.reshape(groups, k // groups, -1)).reshape(-1, g.shape[1])
    return col2im_wide(gcols, x_shape, w.shape[2:], stride, padding, dilation)


def conv2d_bwd_weight(gy, x, w_shape, stride, padding, saved=None, dilation=(1, 1), groups=1):
    """Weight gradient gy^T @ cols^T per group, reusing the forward's columns when given.

    ``gy`` is NCHW, or the (K, N*P) matrix from :func:`conv2d_bwd_bias_relu`.
    """
    if x.shape[0] == 0:
        return _launch.xp.zeros(tuple(w_shape), x.dtype)
    cols = saved if saved is not None else im2col_wide(x, w_shape[2:], stride, padding, dilation)
    k = w_shape[0]
    g = _gy_t(gy)
    if groups == 1:
        return _launch.gemm(g, cols.T).reshape(w_shape)  # cuBLAS reads cols transposed
    c = cols.reshape(groups, -1, cols.shape[1])
    gw = _launch.gemm(g.reshape(groups, k // groups, -1), c.transpose(0, 2, 1))  # (G, K/G, Q/G)
    return gw.reshape(w_shape)


def conv2d_bwd_bias(gy):
    """Bias gradient: NCHW ``gy`` summed over N, H and W (see :func:`bias_grad`)."""
    return bias_grad(gy)
