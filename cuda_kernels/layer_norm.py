"""Layer normalisation kernels: one block per row, shared-memory reductions, deterministic.

``layer_norm_fwd_kernel`` computes each row's mean and reciprocal standard deviation (two-pass,
biased variance) and writes y; ``layer_norm_bwd_kernel`` writes the input gradient of a row from
its two row means; ``layer_norm_param_grad_kernel`` gives one thread per column and splits the
rows about 16 per block; the last block of a column tile adds the splits' weight and bias
gradients in a fixed order, so results repeat bit for bit.

Example:
    >>> from cuda_kernels import layer_norm                         # doctest: +SKIP
    >>> y, saved = layer_norm.layer_norm_fwd(x, w, b, 1e-5)         # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import namedtuple

from numba import cuda, int32

from . import _launch, checks
from ._device import block_sum, last_to_arrive, sum_splits

SHARED = _launch.SHARED_SIZE


LayerNormKernels = namedtuple("LayerNormKernels", "fwd bwd param_grad")


def _make_kernels(acc_t):
    @_launch.cached_jit
    def layer_norm_fwd_kernel(x, weight, bias, affine, eps, y, mean, rstd):
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        R, D = x.shape
        t, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            s = acc_t(0)
            for j in range(t, D, nt):
                s += x[row, j]
            sm[t] = s
            m = block_sum(sm, t, nt) / acc_t(D)
            s = acc_t(0)
            for j in range(t, D, nt):
                d = x[row, j] - m
                s += d * d
            sm[t] = s
            r = acc_t(1) / math.sqrt(block_sum(sm, t, nt) / acc_t(D) + eps)
            for j in range(t, D, nt):
                v = (x[row, j] - m) * r
                y[row, j] = v * weight[j] + bias[j] if affine else v
            if t == 0:
                mean[row] = m
                rstd[row] = r

    @_launch.cached_jit
    def layer_norm_bwd_kernel(gy, x, weight, affine, mean, rstd, gx):
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        R, D = x.shape
        t, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            m, r = mean[row], rstd[row]
            s1 = acc_t(0)
            s2 = acc_t(0)
            for j in range(t, D, nt):
                g = gy[row, j] * weight[j] if affine else gy[row, j]
                s1 += g
                s2 += g * (x[row, j] - m) * r
            sm[t] = s1
            mg = block_sum(sm, t, nt) / acc_t(D)
            sm[t] = s2
            mgx = block_sum(sm, t, nt) / acc_t(D)
            for j in range(t, D, nt):
                g = gy[row, j] * weight[j] if affine else gy[row, j]
                gx[row, j] = r * (g - mg - (x[row, j] - m) * r * mgx)

    @_launch.cached_jit
    def layer_norm_param_grad_kernel(gy, x, mean, rstd, per, partial_w, partial_b, tickets, gw, gb):
        """Block (tile, s): thread j of the tile sums column j over the ``per`` rows of split s
        into partial_w[s, j], partial_b[s, j]; the last of a tile's blocks to finish adds the
        splits in order into gw[j], gb[j] (the same bits every run)."""
        last = cuda.shared.array(1, dtype=int32)
        R, D = x.shape
        t, nt = cuda.threadIdx.x, cuda.blockDim.x
        s, splits = cuda.blockIdx.y, cuda.gridDim.y
        for j0 in range(cuda.blockIdx.x * nt, D, cuda.gridDim.x * nt):
            j = j0 + t
            if j < D:
                sw = acc_t(0)
                sb = acc_t(0)
                for row in range(s * per, min(R, s * per + per)):
                    sw += gy[row, j] * (x[row, j] - mean[row]) * rstd[row]
                    sb += gy[row, j]
                partial_w[s, j] = sw
                partial_b[s, j] = sb
            if last_to_arrive(tickets, j0 // nt, splits, last, t):
                if j < D:
                    gw[j] = sum_splits(partial_w, j, splits, acc_t(0))
                    gb[j] = sum_splits(partial_b, j, splits, acc_t(0))
                if t == 0:
                    tickets[j0 // nt] = 0
            cuda.syncthreads()

    return LayerNormKernels(layer_norm_fwd_kernel, layer_norm_bwd_kernel, layer_norm_param_grad_kernel)


_cache: dict = {}


def kernels(dtype):
    """The three layer-norm kernels specialised for float32 or float64."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def _affine(weight, bias, like):
    if weight is None:
        dummy = like.reshape(-1)[:1]
        return dummy, dummy, False
    return _launch.contiguous(weight), _launch.contiguous(bias), True


def layer_norm_fwd(x, weight, bias, eps):
    """Rows of ``x`` (R, D) normalised; ``weight``/``bias`` (D,) or None. Returns (y, (mean, rstd))."""
    x = _launch.contiguous(x)
    r = x.shape[0]
    y = _launch.xp.empty_like(x)
    mean = _launch.xp.empty((r,), x.dtype)
    rstd = _launch.xp.empty((r,), x.dtype)
    w, b, affine = _affine(weight, bias, x)
    _launch.launch(kernels(x.dtype).fwd, max(1, min(r, _launch.MAX_BLOCKS)),
                   _launch.reduce_threads(x.shape[1]), x, w, b, affine,
                   _launch.scalar(eps, x.dtype), y, mean, rstd)
    return y, (mean, rstd)


def layer_norm_bwd(gy, x, weight, saved):
    """Gradients ``(gx, gweight, gbias)`` (the last two None without affine parameters)."""
    mean, rstd = saved
    gy, x = _launch.contiguous(gy), _launch.contiguous(x)
    r, d = x.shape
    gx = _launch.xp.empty_like(x)
    w, _, affine = _affine(weight, weight, x)
    k = kernels(x.dtype)
    _launch.launch(k.bwd, max(1, min(r, _launch.MAX_BLOCKS)), _launch.reduce_threads(d),
                   gy, x, w, affine, mean, rstd, gx)
    if not affine:
        return gx, None, None
    xp = _launch.xp
    gw, gb = xp.empty((d,), x.dtype), xp.empty((d,), x.dtype)
    splits, per, partial_w, tickets = checks.split_reduction(r, d, x.dtype, -(-d // _launch.TPB))
    _launch.launch(k.param_grad, (_launch.blocks_for(d), splits), _launch.TPB, gy, x, mean, rstd,
                   per, partial_w, xp.empty_like(partial_w), tickets, gw, gb)
    return gx, gw, gb
