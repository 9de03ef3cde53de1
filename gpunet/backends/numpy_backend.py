"""The NumPy backend: vectorised CPU kernels (im2col + BLAS, strided windows).

No Python loop runs over the batch, channels or pixels; the only loops are over
the kH*kW offsets of a kernel window, each of which moves a whole strided slab.

Example:
    >>> be = NumpyBackend()
    >>> y, saved = be.conv2d_fwd(x, w, None, (1, 1), (0, 0))
"""
from __future__ import annotations

import numpy as np

from .base import Backend


def out_size(size, k, s, p):
    """Output length of a window of k with stride s over size padded by p on both sides."""
    return (size + 2 * p - k) // s + 1


def _pad(x, ph, pw, value=0.0):
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _window(a, i, j, sh, sw, ho, wo):
    """The (N, C, ho, wo) slab of padded ``a`` seen at kernel offset (i, j)."""
    return a[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def im2col(x, kh, kw, stride, padding):
    """x (N,C,H,W) -> cols (N, C*kh*kw, Ho*Wo), rows ordered (c, i, j) like the weight."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp_ = _pad(x, ph, pw)
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = _window(xp_, i, j, sh, sw, ho, wo)
    return cols.reshape(n, c * kh * kw, ho * wo)


def col2im(cols, x_shape, kh, kw, stride, padding):
    """The adjoint of im2col: scatter-add (N, C*kh*kw, Ho*Wo) back into (N,C,H,W)."""
    n, c, h, w = x_shape
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    gx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _window(gx, i, j, sh, sw, ho, wo)[...] += cols[:, :, i, j]
    return gx[:, :, ph:ph + h, pw:pw + w]


class NumpyBackend(Backend):
    """CPU backend on NumPy; the reference every other backend is tested against."""

    name = "numpy"
    xp = np

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

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
        cols = im2col(x, kh, kw, stride, padding)
        y = np.matmul(w.reshape(k, -1), cols)  # (N, K, Ho*Wo), already NCHW
        if b is not None:
            y += b.reshape(1, k, 1)
        return y.reshape(n, k, ho, wo), cols

    def conv2d_bwd_data(self, gy, w, x_shape, stride, padding, saved):
        n, k = gy.shape[:2]
        kh, kw = w.shape[2:]
        gcols = np.matmul(w.reshape(k, -1).T, gy.reshape(n, k, -1))
        return col2im(gcols, x_shape, kh, kw, stride, padding)

    def conv2d_bwd_weight(self, gy, x, w_shape, stride, padding, saved):
        cols = saved if saved is not None else im2col(x, w_shape[2], w_shape[3], stride, padding)
        n, k = gy.shape[:2]
        gw = np.matmul(gy.reshape(n, k, -1), cols.transpose(0, 2, 1)).sum(axis=0)
        return gw.reshape(w_shape)

    # --- pooling --------------------------------------------------------------
    def max_pool2d_fwd(self, x, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        xp_ = _pad(x, ph, pw, value=-np.inf)
        y = _window(xp_, 0, 0, sh, sw, ho, wo).copy()
        arg = np.zeros(y.shape, dtype=np.int32)  # window offset i*kw + j of the maximum
        mask = np.empty(y.shape, dtype=bool)
        for i in range(kh):
            for j in range(kw):
                if i == 0 and j == 0:
                    continue
                v = _window(xp_, i, j, sh, sw, ho, wo)
                np.greater(v, y, out=mask)  # strict: the first maximum wins ties
                np.copyto(y, v, where=mask)
                np.copyto(arg, i * kw + j, where=mask)
        return y, arg

    def max_pool2d_bwd(self, gy, argmax, x_shape, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        n, c, h, w = x_shape
        ho, wo = gy.shape[2:]
        gx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
        for i in range(kh):
            for j in range(kw):
                _window(gx, i, j, sh, sw, ho, wo)[...] += gy * (argmax == i * kw + j)
        return gx[:, :, ph:ph + h, pw:pw + w]

    def avg_pool2d_fwd(self, x, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        xp_ = _pad(x, ph, pw)
        y = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                y += _window(xp_, i, j, sh, sw, ho, wo)
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
        return np.maximum(x, 0)

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
