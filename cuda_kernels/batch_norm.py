"""Batch normalisation on the GPU: split per-channel reductions and one elementwise pass each way.

``x`` is viewed as (N, C, S).  ``batch_norm_sums_kernel`` gives block (c, s) channel c of
about 16 images (split s); the last of a channel's blocks to finish (an integer ticket after a
fence) adds the splits in a fixed order, so the sums repeat bit for bit.  The forward runs it
twice (the channel sums, then the centred sums of squares: two-pass, as PyTorch) and
``batch_norm_normalise_kernel`` writes y and the (C,) statistics.  The backward runs
``batch_norm_grad_sums_kernel`` (sum gy and sum gy * (x - mean) in one pass) and
``batch_norm_input_grad_kernel``; numpy_kernels/batch_norm.py has the formulas.

Example:
    >>> from cuda_kernels import batch_norm                                   # doctest: +SKIP
    >>> y, mean, var, inv_std = batch_norm.batch_norm_fwd(x, w, b, 1e-5)      # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import cuda, int32

from . import _launch, checks
from ._device import add_channel_split, add_channel_split_pair

SHARED = _launch.SHARED_SIZE

BatchNormKernels = namedtuple("BatchNormKernels", "sums normalise grad_sums input_grad "
                                                   "pool_normalise pool_grad_sums pool_input_grad")


def _make_kernels(acc_t):
    @_launch.cached_jit
    def batch_norm_sums_kernel(x, sums, count, centred, per, partial, tickets, out):
        """out[k] = sum over n, p of x[n, k, p], or (``centred``) of (x[n, k, p] - sums[k] / count)^2."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        N, K, P = x.shape
        t, nt, s = cuda.threadIdx.x, cuda.blockDim.x, cuda.blockIdx.y
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            m = sums[k] / count if centred else acc_t(0)
            acc = acc_t(0)
            for n in range(s * per, min(N, s * per + per)):
                for p in range(t, P, nt):
                    v = x[n, k, p] - m
                    acc += v * v if centred else v
            add_channel_split(sm, last, acc, partial, tickets, out, k, t, nt, acc_t(0))

    @_launch.cached_jit
    def batch_norm_normalise_kernel(x, sums, squares, count, eps, weight, bias, affine, relu, y,
                                    mean, var, inv_std):
        N, K, P = x.shape
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            n = i // (K * P)
            k = (i - n * K * P) // P
            p = i - (n * K + k) * P
            m = sums[k] / count
            r = acc_t(1) / math.sqrt(squares[k] / count + eps)
            a = weight[k] * r if affine else r
            v = (x[n, k, p] - m) * a + (bias[k] if affine else acc_t(0))
            y[n, k, p] = acc_t(0) if relu and v <= 0 else v  # the fused ReLU: NaN passes
            if i < K:
                mean[i] = sums[i] / count
                var[i] = squares[i] / count
                inv_std[i] = acc_t(1) / math.sqrt(squares[i] / count + eps)

    @_launch.cached_jit
    def batch_norm_grad_sums_kernel(gy, x, mean, y, relu, per, partial, tickets, out):
        """out[k] = sum gy[:, k], out[K + k] = sum gy[:, k] * (x[:, k] - mean[k]): block (k, s)
        sums split s into partial[s, k] and partial[s, K + k]; the last block adds the splits."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        N, K, P = x.shape
        t, nt, s = cuda.threadIdx.x, cuda.blockDim.x, cuda.blockIdx.y
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            acc_g = acc_t(0)
            acc_gd = acc_t(0)
            for n in range(s * per, min(N, s * per + per)):
                for p in range(t, P, nt):
                    g = acc_t(0) if relu and y[n, k, p] <= 0 else gy[n, k, p]
                    acc_g += g
                    acc_gd += g * (x[n, k, p] - mean[k])
            add_channel_split_pair(sm, last, acc_g, acc_gd, partial, tickets, out, k, K, t, nt,
                                   acc_t(0))

    @cuda.jit(device=True, inline=True)
    def input_grad(g, xv, k, K, mean, inv_std, sums, count, weight, affine):
        """gx of one element from its gy ``g`` and x ``xv``, channel k (the formulas in
        numpy_kernels/batch_norm.py): sums[k] = sum gy, sums[K + k] = sum gy * (x - mean)."""
        r = inv_std[k]
        scale = weight[k] * r if affine else r
        slope = scale * r * (sums[K + k] * r / count)
        return scale * g - scale * (sums[k] / count) - slope * (xv - mean[k])

    @_launch.cached_jit
    def batch_norm_input_grad_kernel(gy, x, mean, inv_std, sums, count, weight, affine, y, relu,
                                     gx):
        N, K, P = x.shape
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            n = i // (K * P)
            k = (i - n * K * P) // P
            p = i - (n * K + k) * P
            g = acc_t(0) if relu and y[n, k, p] <= 0 else gy[n, k, p]
            gx[n, k, p] = input_grad(g, x[n, k, p], k, K, mean, inv_std, sums, count, weight, affine)

    @_launch.cached_jit
    def batch_norm_relu_max_pool_kernel(x, sums, squares, count, eps, weight, bias, affine, pool,
                                        pooled, argmax, keep_argmax, mean, var, inv_std, lowest):
        """pooled[n, k, oh, ow] = the max over its window of relu(batch_norm(x)); argmax = h * W + w
        of the first maximum (a NaN takes over), or -1 where it is <= 0 (no gradient passes)."""
        N, K, H, W = x.shape
        PH, PW = pooled.shape[2], pooled.shape[3]
        for i in range(cuda.grid(1), max(pooled.size, K), cuda.gridsize(1)):
            if i < K:
                mean[i] = sums[i] / count
                var[i] = squares[i] / count
                inv_std[i] = acc_t(1) / math.sqrt(squares[i] / count + eps)
            if i >= pooled.size:
                continue
            plane = i // (PH * PW)
            r = i - plane * (PH * PW)
            oh = r // PW
            ow = r - oh * PW
            n = plane // K
            k = plane - n * K
            m = sums[k] / count
            a = acc_t(1) / math.sqrt(squares[k] / count + eps)
            if affine:
                a *= weight[k]
            best = lowest
            idx = -1
            for dh in range(pool):
                h = oh * pool + dh
                for dw in range(pool):
                    w = ow * pool + dw
                    v = (x[n, k, h, w] - m) * a + (bias[k] if affine else acc_t(0))
                    if v <= 0:
                        v = acc_t(0)
                    if idx < 0 or v > best or v != v:
                        best = v
                        idx = h * W + w
            pooled[n, k, oh, ow] = best
            if keep_argmax:
                argmax[n, k, oh, ow] = -1 if best <= 0 else idx

    @_launch.cached_jit
    def batch_norm_pool_grad_sums_kernel(gp, argmax, x, mean, per, partial, tickets, out):
        """out[k] = sum of gp[:, k] where a window's winner passed the ReLU, out[K + k] = the sum
        of gp * (x - mean[k]) at those winners (x (N, K, H*W), gp and argmax (N, K, PH*PW))."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        N, K, P = gp.shape
        t, nt, s = cuda.threadIdx.x, cuda.blockDim.x, cuda.blockIdx.y
        for k in range(cuda.blockIdx.x, K, cuda.gridDim.x):
            acc_g = acc_t(0)
            acc_gd = acc_t(0)
            for n in range(s * per, min(N, s * per + per)):
                for p in range(t, P, nt):
                    j = argmax[n, k, p]
                    if j >= 0:
                        acc_g += gp[n, k, p]
                        acc_gd += gp[n, k, p] * (x[n, k, j] - mean[k])
            add_channel_split_pair(sm, last, acc_g, acc_gd, partial, tickets, out, k, K, t, nt,
                                   acc_t(0))

    @_launch.cached_jit
    def batch_norm_pool_input_grad_kernel(gp, argmax, pool, x, mean, inv_std, sums, count, weight,
                                          affine, gx):
        """gx of batch norm where gy is gp at each window's winner (argmax), 0 elsewhere."""
        N, K, H, W = x.shape
        PH, PW = gp.shape[2], gp.shape[3]
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            plane = i // (H * W)
            r = i - plane * (H * W)
            h = r // W
            w = r - h * W
            n = plane // K
            k = plane - n * K
            oh = h // pool
            ow = w // pool
            g = acc_t(0)
            if oh < PH and ow < PW and argmax[n, k, oh, ow] == r:
                g = gp[n, k, oh, ow]
            gx[n, k, h, w] = input_grad(g, x[n, k, h, w], k, K, mean, inv_std, sums, count, weight,
                                        affine)

    return BatchNormKernels(batch_norm_sums_kernel, batch_norm_normalise_kernel,
                            batch_norm_grad_sums_kernel, batch_norm_input_grad_kernel,
                            batch_norm_relu_max_pool_kernel, batch_norm_pool_grad_sums_kernel,
                            batch_norm_pool_input_grad_kernel)


_cache: dict = {}


def kernels(dtype):
    """The batch-norm kernels specialised for float32 or float64."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def _as_ncs(a):
    a = _launch.contiguous(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _reduction_launch(x3):
    n, c, s = x3.shape
    return (_launch.blocks_for(c, 1), _launch.splits_for(n)[0]), _launch.reduce_threads(s)


def _channel_sums(x3, weight, bias):
    """``(sums, squares, count, w, b)``: per channel of (N, C, S) ``x3`` the sum and the centred
    sum of squares (two passes), the count, and the affine arrays: both a dummy without weight
    and bias, else the missing one as the identity (ones, zeros), as the NumPy kernels read it."""
    n, c, s = x3.shape
    xp, dt = _launch.xp, x3.dtype
    k = kernels(dt)
    count = _launch.scalar(n * s, dt)
    dummy = x3.reshape(-1)[:1]
    w, b = dummy, dummy
    if weight is not None or bias is not None:
        w = _launch.contiguous(weight) if weight is not None else xp.ones((c,), dt)
        b = _launch.contiguous(bias) if bias is not None else xp.zeros((c,), dt)
    sums, squares = xp.empty((c,), dt), xp.empty((c,), dt)
    grid, threads = _reduction_launch(x3)
    # (the first launch does not read its centre; distinct arrays, as the simulator copies
    # every argument back after a launch and an alias would undo the kernel's writes)
    for centre, centred, out in ((squares, False, sums), (sums, True, squares)):
        _, per, partial, tickets = checks.split_reduction(n, c, dt, c)
        _launch.launch(k.sums, grid, threads, x3, centre, count, centred, per, partial, tickets, out)
    return sums, squares, count, w, b


def batch_norm_fwd(x, weight, bias, eps, relu=False):
    """``(y, mean, var, inv_std)`` in four launches (numpy_kernels.batch_norm has the contract).

    Example:
        >>> y, mean, var, inv_std = batch_norm_fwd(xp.ones((4, 3, 2, 2)), None, None, 1e-5)  # doctest: +SKIP
    """
    x3 = _as_ncs(x)
    xp, dt, c = _launch.xp, x.dtype, x3.shape[1]
    k = kernels(dt)
    sums, squares, count, w, b = _channel_sums(x3, weight, bias)
    affine = weight is not None or bias is not None
    y = xp.empty_like(x3)
    mean, var, inv_std = xp.empty((c,), dt), xp.empty((c,), dt), xp.empty((c,), dt)
    _launch.launch(k.normalise, _launch.blocks_for(max(x3.size, c)), _launch.TPB, x3, sums, squares,
                   count, _launch.scalar(eps, dt), w, b, affine, bool(relu), y, mean, var, inv_std)
    return y.reshape(x.shape), mean, var, inv_std


def batch_norm_bwd(gy, x, mean, inv_std, weight, need_input=True, y=None):
    """``(gx or None, gweight, gbias)`` in two launches (one without ``need_input``); with ``y``
    (the output through the fused ReLU) gy is masked where ``y <= 0`` as it is read.

    Example:
        >>> gx, gw, gb = batch_norm_bwd(gy, x, mean, inv_std, w)   # doctest: +SKIP
    """
    g3, x3 = _as_ncs(gy), _as_ncs(x)
    n, c, s = x3.shape
    xp, dt = _launch.xp, x.dtype
    k = kernels(dt)
    sums = xp.empty((2 * c,), dt)
    grid, threads = _reduction_launch(x3)
    _, per, partial, tickets = checks.split_reduction(n, 2 * c, dt, c)
    relu = y is not None
    y3 = _as_ncs(y) if relu else x3  # (read only when relu)
    _launch.launch(k.grad_sums, grid, threads, g3, x3, mean, y3, relu, per, partial, tickets, sums)
    gbias, gweight = sums[:c], sums[c:] * inv_std
    if not need_input:
        return None, gweight, gbias
    affine = weight is not None
    w = _launch.contiguous(weight) if affine else x3.reshape(-1)[:1]
    gx = xp.empty_like(x3)
    _launch.launch(k.input_grad, _launch.blocks_for(x3.size), _launch.TPB, g3, x3, mean, inv_std,
                   sums, _launch.scalar(n * s, dt), w, affine, y3, relu, gx)
    return gx.reshape(gy.shape), gweight, gbias


def batch_norm_relu_max_pool_fwd(x, weight, bias, eps, pool=2, keep_argmax=True):
    """``(pooled, mean, var, inv_std, saved)`` of ``max_pool2d(relu(batch_norm(x)), pool)``:
    the two sums launches, then one kernel that normalises, rectifies and pools each window
    (the full-size output is never written).

    Example:
        >>> p, mean, var, inv_std, saved = batch_norm_relu_max_pool_fwd(x, w, b, 1e-5)  # doctest: +SKIP
    """
    x = _launch.contiguous(x)
    n, c, h, w_ = x.shape
    xp, dt = _launch.xp, x.dtype
    k = kernels(dt)
    sums, squares, count, w, b = _channel_sums(x.reshape(n, c, h * w_), weight, bias)
    pooled = xp.empty((n, c, h // pool, w_ // pool), dt)
    argmax = xp.empty(pooled.shape if keep_argmax else (1, 1, 1, 1), np.int32)
    mean, var, inv_std = xp.empty((c,), dt), xp.empty((c,), dt), xp.empty((c,), dt)
    affine = weight is not None or bias is not None
    _launch.launch(k.pool_normalise, _launch.blocks_for(max(pooled.size, c)), _launch.TPB, x, sums,
                   squares, count, _launch.scalar(eps, dt), w, b, affine, int(pool), pooled, argmax,
                   bool(keep_argmax), mean, var, inv_std, _launch.scalar(-np.inf, dt))
    return pooled, mean, var, inv_std, (x, argmax, pool)


def batch_norm_relu_max_pool_bwd(gp, saved, mean, inv_std, weight, need_input=True):
    """``(gx or None, gweight, gbias)`` of :func:`batch_norm_relu_max_pool_fwd` in two launches
    (one without ``need_input``): the sums over the windows' winners, then the input gradient.

    Example:
        >>> gx, gw, gb = batch_norm_relu_max_pool_bwd(gp, saved, mean, inv_std, w)  # doctest: +SKIP
    """
    x, argmax, pool = saved
    gp = _launch.contiguous(gp)
    n, c, h, w_ = x.shape
    xp, dt = _launch.xp, x.dtype
    k = kernels(dt)
    sums = xp.empty((2 * c,), dt)
    p3 = gp.reshape(n, c, -1)
    grid, threads = _reduction_launch(p3)
    _, per, partial, tickets = checks.split_reduction(n, 2 * c, dt, c)
    _launch.launch(k.pool_grad_sums, grid, threads, p3, argmax.reshape(n, c, -1),
                   x.reshape(n, c, h * w_), mean, per, partial, tickets, sums)
    gbias, gweight = sums[:c], sums[c:] * inv_std
    if not need_input:
        return None, gweight, gbias
    affine = weight is not None
    wt = _launch.contiguous(weight) if affine else x.reshape(-1)[:1]
    gx = xp.empty_like(x)
    _launch.launch(k.pool_input_grad, _launch.blocks_for(x.size), _launch.TPB, gp, argmax, int(pool),
                   x, mean, inv_std, sums, _launch.scalar(n * h * w_, dt), wt, affine, gx)
    return gx, gweight, gbias
