"""The NumPy backend: vectorised CPU kernels (im2col + one BLAS GEMM, strided windows).

No Python loop runs over the batch, channels or pixels; the only loops are over the kH*kW
offsets of a kernel window, each of which moves a whole strided slab.

Layout: convolutions work on the "CN" view of an image, ``x.transpose(1, 0, 2, 3)`` of shape
(C, N, H, W).  im2col builds columns ``(C*kh*kw, N*Ho*Wo)``, so one GEMM
``W (K, C*kh*kw) @ cols`` gives every output at once, as (K, N, Ho, Wo) in memory; the result
is returned as its NCHW-shaped view.  Elementwise NumPy ops keep that memory order, so the
next layer reads it without a transposing copy.  Large temporaries come from an ``ArrayPool``.

Example:
    >>> be = NumpyBackend()
    >>> y, saved = be.conv2d_fwd(x, w, None, (1, 1), (0, 0))
"""
from __future__ import annotations

import numpy as np

from .array_pool import ArrayPool
from .base import Backend

# The input gradient of a stride-1 conv whose columns exceed this many elements is computed as a
# transposed convolution (im2col of gy + GEMM); smaller ones scatter-add the columns (col2im).
TRANSPOSED_MIN_ELEMENTS = 1 << 22
# Weight gradients whose per-image GEMM has fewer multiply-adds than this (OpenBLAS's threading
# threshold, 65536 * 4) run as one single-threaded GEMM per image; bigger ones as one GEMM.
PER_IMAGE_GEMM_MAX = 1 << 18


def out_size(size, k, s, p):
    """Output length of a window of k with stride s over size padded by p on both sides."""
    return (size + 2 * p - k) // s + 1


def _window(a, i, j, sh, sw, ho, wo):
    """The (..., ho, wo) slab of padded ``a`` seen at kernel offset (i, j)."""
    return a[..., i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _cn(a):
    """(N, C, H, W) -> its (C, N, H, W) view (no copy)."""
    return a.transpose(1, 0, 2, 3)


def _padded_cn(x_cn, ph, pw, pool, value=0.0):
    """(C, N, H, W) view -> the same padded by (ph, pw), in a pooled (C, N, H+2ph, W+2pw) buffer.

    Without padding the view itself is returned (no copy).
    """
    if ph == 0 and pw == 0:
        return x_cn
    c, n, h, w = x_cn.shape
    buf = pool.empty((c, n, h + 2 * ph, w + 2 * pw), x_cn.dtype)
    buf[:, :, :ph] = value
    buf[:, :, h + ph:] = value
    buf[:, :, ph:h + ph, :pw] = value
    buf[:, :, ph:h + ph, w + pw:] = value
    buf[:, :, ph:h + ph, pw:w + pw] = x_cn
    return buf


def im2col_cn(x_cn, kh, kw, stride, padding, pool=None):
    """x (C,N,H,W) view -> cols (C*kh*kw, N*Ho*Wo), rows ordered (c, i, j) like the weight.

    Example:
        >>> im2col_cn(np.ones((3, 2, 5, 5)), 3, 3, (1, 1), (1, 1)).shape
        (27, 50)
    """
    pool = pool or _DEFAULT_POOL
    c, n, h, w = x_cn.shape
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp_ = _padded_cn(x_cn, ph, pw, pool)
    cols = pool.empty((c, kh, kw, n, ho, wo), x_cn.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _window(xp_, i, j, sh, sw, ho, wo)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im_cn(cols, x_shape, kh, kw, stride, padding):
    """The adjoint of im2col_cn: scatter-add (C*kh*kw, N*Ho*Wo) into an (N,C,H,W)-shaped view."""
    n, c, h, w = x_shape
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    gx = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _window(gx, i, j, sh, sw, ho, wo)[...] += cols[:, i, j]
    return _cn(gx[:, :, ph:ph + h, pw:pw + w])


def _matrix_cn(a):
    """(N, K, H, W) array -> (K, N*H*W) matrix; free when ``a`` is stored K-major (CN layout)."""
    n, k, h, w = a.shape
    return np.ascontiguousarray(_cn(a)).reshape(k, n * h * w)


def _empty_like_view(view):
    """An uninitialised array of the view's shape, in the view's memory order (no copy of data)."""
    return np.empty_like(view, order="K")


_DEFAULT_POOL = ArrayPool()


class NumpyBackend(Backend):
    """CPU backend on NumPy; the reference every other backend is tested against."""

    name = "numpy"
    xp = np

    def __init__(self, seed=None, pool=None):
        self._rng = np.random.default_rng(seed)
        self.pool = pool if pool is not None else ArrayPool()

    def asarray(self, data, dtype=None):
        return np.asarray(data, dtype=dtype)

    def to_host(self, array):
        return np.asarray(array)

    def seed(self, seed):
        self._rng = np.random.default_rng(seed)

    def rand(self, shape, dtype):
        return self._rng.random(shape, dtype=np.float64).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        return self._rng.standard_normal(shape).astype(dtype, copy=False)

    # --- conv2d ---------------------------------------------------------------
    def conv2d_fwd(self, x, w, b, stride, padding):
        n = x.shape[0]
        k, _, kh, kw = w.shape
        ho = out_size(x.shape[2], kh, stride[0], padding[0])
        wo = out_size(x.shape[3], kw, stride[1], padding[1])
        cols = im2col_cn(_cn(x), kh, kw, stride, padding, self.pool)
        y = np.matmul(w.reshape(k, -1), cols)  # (K, N*Ho*Wo): one GEMM for the whole batch
        if b is not None:
            y += b.reshape(k, 1)
        return _cn(y.reshape(k, n, ho, wo)), cols

    def conv2d_bwd_data(self, gy, w, x_shape, stride, padding, saved=None):
        """Input gradient; a transposed convolution for big stride-1 convs, else col2im."""
        kh, kw = w.shape[2:]
        n, c, h, _ = x_shape
        big = c * kh * kw * n * gy.shape[2] * gy.shape[3] >= TRANSPOSED_MIN_ELEMENTS
        if big and stride == (1, 1) and padding[0] < kh and padding[1] < kw:
            return self.conv2d_bwd_data_transposed(gy, w, x_shape, padding)
        return self.conv2d_bwd_data_scatter(gy, w, x_shape, stride, padding)

    def conv2d_bwd_data_scatter(self, gy, w, x_shape, stride, padding):
        """gcols = W.T @ gy, then scatter-add the columns back onto the image (col2im)."""
        k, kh, kw = w.shape[0], w.shape[2], w.shape[3]
        g = _matrix_cn(gy)
        gcols = self.pool.empty((w[0].size, g.shape[1]), gy.dtype)
        np.matmul(w.reshape(k, -1).T, g, out=gcols)
        return col2im_cn(gcols, x_shape, kh, kw, stride, padding)

    def conv2d_bwd_data_transposed(self, gy, w, x_shape, padding):
        """Stride 1 only: gx = conv(gy padded by k-1-p, W flipped, in/out channels swapped)."""
        k, c, kh, kw = w.shape
        n, _, h, wd = x_shape
        wt = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)
        cols = im2col_cn(_cn(gy), kh, kw, (1, 1), (kh - 1 - padding[0], kw - 1 - padding[1]),
                         self.pool)
        gx = np.matmul(wt, cols)  # (C, N*H*W)
        return _cn(gx.reshape(c, n, h, wd))

    def conv2d_bwd_weight(self, gy, x, w_shape, stride, padding, saved=None):
        kh, kw = w_shape[2:]
        cols = saved if saved is not None else im2col_cn(_cn(x), kh, kw, stride, padding, self.pool)
        n, k, ho, wo = gy.shape
        if k * cols.shape[0] * ho * wo < PER_IMAGE_GEMM_MAX:
            # NOTE: one small GEMM per image, summed: each stays under OpenBLAS's threading
            # threshold, so no GEMM with a long reduction syncs two threads ~K/384 times (which
            # collapses when the machine is oversubscribed).
            g3 = _cn(gy).reshape(k, n, ho * wo).transpose(1, 0, 2)       # (N, K, P) view
            c3 = cols.reshape(-1, n, ho * wo).transpose(1, 2, 0)         # (N, P, C*kh*kw) view
            return np.matmul(g3, c3).sum(axis=0).reshape(w_shape)
        gw = np.matmul(_matrix_cn(gy), cols.T)  # (K, C*kh*kw), BLAS reads cols.T in place
        return gw.reshape(w_shape)

    def conv2d_bwd_bias(self, gy):
        g = _cn(gy)
        if g.flags.c_contiguous:
            return g.reshape(g.shape[0], -1).sum(axis=1)
        return gy.sum(axis=(0, 2, 3))

    # --- pooling --------------------------------------------------------------
    def max_pool2d_fwd(self, x, kernel, stride, padding):
        """Elementwise maximum over the kh*kw window offsets; saves (padded x, y) for backward."""
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        xp_ = _cn(_padded_cn(_cn(x), ph, pw, self.pool, value=-np.inf))
        first = _window(xp_, 0, 0, sh, sw, ho, wo)
        y = _empty_like_view(first)
        if kh * kw == 1:
            y[...] = first
        for t in range(1, kh * kw):
            np.maximum(first if t == 1 else y, _window(xp_, t // kw, t % kw, sh, sw, ho, wo), out=y)
        return y, (xp_, y)

    def max_pool2d_bwd(self, gy, argmax, x_shape, kernel, stride, padding):
        """Route gy to the first maximum of each window, in row-major window order (as PyTorch)."""
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        xp_, y = argmax
        ho, wo = y.shape[2:]
        overlap = sh < kh or sw < kw
        tiled = (sh, sw) == (kh, kw) and xp_.shape[2:] == (ho * kh, wo * kw)
        gx = np.empty_like(xp_, order="K") if tiled else np.zeros_like(xp_, order="K")
        taken = np.zeros(y.shape, dtype=bool) if kh * kw > 1 else None
        hit = np.empty(y.shape, dtype=bool)
        for t in range(kh * kw):
            i, j = divmod(t, kw)
            np.equal(_window(xp_, i, j, sh, sw, ho, wo), y, out=hit)
            if t > 0:
                np.greater(hit, taken, out=hit)  # hit and not already routed: first max wins
            if t < kh * kw - 1:
                np.logical_or(taken, hit, out=taken)
            gwin = _window(gx, i, j, sh, sw, ho, wo)
            if overlap:
                gwin += gy * hit
            else:
                np.multiply(gy, hit, out=gwin)
        return gx[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]

    def avg_pool2d_fwd(self, x, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        xp_ = _cn(_padded_cn(_cn(x), ph, pw, self.pool))
        y = _window(xp_, 0, 0, sh, sw, ho, wo).copy(order="K")
        for t in range(1, kh * kw):
            y += _window(xp_, t // kw, t % kw, sh, sw, ho, wo)
        y *= x.dtype.type(1.0 / (kh * kw))
        return y

    def avg_pool2d_bwd(self, gy, x_shape, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        n, c, h, w = x_shape
        ho, wo = gy.shape[2:]
        g = gy * gy.dtype.type(1.0 / (kh * kw))
        gx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        for i in range(kh):
            for j in range(kw):
                _window(gx, i, j, sh, sw, ho, wo)[...] += g
        return gx[:, :, ph:ph + h, pw:pw + w]

    # --- activations ----------------------------------------------------------
    def relu_fwd(self, x):
        return np.maximum(x, x.dtype.type(0))

    def relu_bwd(self, gy, y):
        return gy * (y > 0)

    # --- fused softmax cross-entropy -----------------------------------------
    def softmax_cross_entropy_fwd(self, logits, labels):
        rows = np.arange(logits.shape[0])
        m = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        probs = e / s
        loss = np.log(s[:, 0]) + m[:, 0] - logits[rows, labels]
        return loss, probs

    def softmax_cross_entropy_bwd(self, probs, labels, gloss):
        g = probs.copy()
        g[np.arange(g.shape[0]), labels] -= 1
        g *= gloss.reshape(-1, 1)
        return g

    # --- optimiser updates (in place, PyTorch's formulas) --------------------
    def sgd_update(self, param, grad, buf, lr, momentum, dampening, weight_decay,
                   nesterov, first_step):
        g = grad + weight_decay * param if weight_decay else grad
        if momentum:
            if first_step:
                buf[...] = g
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        param -= lr * g

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                    step, decoupled):
        g = grad
        if weight_decay and decoupled:
            param *= 1 - lr * weight_decay
        elif weight_decay:
            g = grad + weight_decay * param
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** step)
        v_hat = v / (1 - beta2 ** step)
        param -= lr * m_hat / (np.sqrt(v_hat) + eps)
