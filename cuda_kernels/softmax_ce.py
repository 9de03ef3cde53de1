"""Fused softmax cross-entropy: one block per row, shared-memory reductions.

Forward: each block strides over its row's C logits three times (row max, sum of
exp(x - max), probabilities) with a shared-memory tree reduction after the first two, then
thread 0 writes ``loss = log(sum) + max - x[label]``.  The row stays in L1/L2 between the
passes, so HBM traffic is one read of the logits and one write of the probabilities, and
10 classes and 1,000 classes are both one launch.  With a "mean" or "sum" reduction the same
launch also reduces the per-row losses: the last block to finish (an integer ticket, the
pattern of CUDA's threadFenceReduction sample: a fence before the ticket, L2 reads after it)
sums them (and the rows' class weights, the mean's divisor) in a fixed order, so the result
is the same bits every run.  Class ``weight``, ``ignore_index`` and ``label_smoothing`` are
PyTorch's, in the same launch.  The ticket belongs to
the stream (``checks.reduction_ticket``), so launches on two streams never share one.  Backward is one elementwise launch:
``(probs - onehot(labels)) * w_y * gloss[row or 0]`` (divided by the forward's weight sum for a
mean), plus the smoothing term.

Example:
    >>> from cuda_kernels import softmax_ce                       # doctest: +SKIP
    >>> loss, probs, wsum = softmax_ce.softmax_cross_entropy_fwd(logits, labels)  # doctest: +SKIP
    >>> g = softmax_ce.softmax_cross_entropy_bwd(probs, labels, gloss)             # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import namedtuple

from numba import cuda, int32

from . import _launch, checks
from ._device import block_max, block_sum

SHARED = _launch.SHARED_SIZE  # shared-memory slots of a block reduction


SoftmaxCEKernels = namedtuple("SoftmaxCEKernels", "fwd bwd")


def _make_kernels(acc_t):
    """Build the forward and backward kernels for one float type (shared memory is typed)."""

    @_launch.cached_jit
    def softmax_ce_fwd_kernel(logits, labels, weight, has_weight, ignore_index, smoothing, loss,
                              row_w, probs, bad_label, total_out, wsum, ticket, mode):
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        N, C = logits.shape
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        for row in range(cuda.blockIdx.x, N, cuda.gridDim.x):
            m = acc_t(-math.inf)
            for j in range(t, C, nt):
                v = logits[row, j]
                if v > m:
                    m = v
            sm[t] = m
            m = block_max(sm, t, nt)
            total = acc_t(0)
            for j in range(t, C, nt):
                total += math.exp(logits[row, j] - m)
            sm[t] = total
            total = block_sum(sm, t, nt)
            inv = acc_t(1) / total
            for j in range(t, C, nt):
                probs[row, j] = math.exp(logits[row, j] - m) * inv
            spread = acc_t(0)  # sum_c w_c (x_c - m) and sum_c w_c, for label smoothing only
            class_w = acc_t(C)
            if smoothing != 0:
                for j in range(t, C, nt):
                    spread += (weight[j] if has_weight else acc_t(1)) * (logits[row, j] - m)
                sm[t] = spread
                spread = block_sum(sm, t, nt)
                if has_weight:
                    class_w = acc_t(0)
                    for j in range(t, C, nt):
                        class_w += weight[j]
                    sm[t] = class_w
                    class_w = block_sum(sm, t, nt)
            if t == 0:
                lab = labels[row]
                if row == 0:
                    wsum[1] = class_w
                    if mode == 0:
                        wsum[0] = acc_t(0)  # no reduction: the backward does not divide
                if lab == ignore_index:
                    loss[row] = acc_t(0)
                    row_w[row] = acc_t(0)
                elif lab >= 0 and lab < C:
                    wy = weight[lab] if has_weight else acc_t(1)
                    lse = math.log(total)
                    # keep m out of lse - (x - m): precision at large logits
                    value = (acc_t(1) - smoothing) * wy * (lse - (logits[row, lab] - m))
                    if smoothing != 0:
                        value += smoothing / acc_t(C) * (class_w * lse - spread)
                    loss[row] = value
                    row_w[row] = wy
                else:
                    # out-of-range label: NaN loss and a flag the backend checks when a value
                    # is next read (like a device-side assert), so no per-step host check
                    loss[row] = acc_t(math.nan)
                    row_w[row] = acc_t(0)
                    bad_label[0] = 1
        if mode != 0:  # reduce: the last block to finish sums loss[0..N) in a fixed order
            cuda.threadfence()  # this block's losses are visible before its ticket is taken
            cuda.syncthreads()
            if t == 0:
                last[0] = cuda.atomic.add(ticket, 0, 1) == cuda.gridDim.x - 1
            cuda.syncthreads()
            if last[0]:
                # the other blocks' losses are read with atomics (adding 0), which go to L2:
                # the volatile reads of CUDA's pattern, never a stale line of this SM's L1
                acc = acc_t(0)
                for row in range(t, N, nt):
                    acc += cuda.atomic.add(loss, row, acc_t(0))
                sm[t] = acc
                acc = block_sum(sm, t, nt)
                acc_w = acc_t(0)
                for row in range(t, N, nt):
                    acc_w += cuda.atomic.add(row_w, row, acc_t(0))
                sm[t] = acc_w
                acc_w = block_sum(sm, t, nt)
                if t == 0:
                    if mode == 1:
                        total_out[0] = acc
                    elif acc_w != 0:
                        total_out[0] = acc / acc_w
                    else:
                        total_out[0] = acc_t(math.nan)  # PyTorch: the mean over no rows is NaN
                    wsum[0] = acc_w
                    ticket[0] = 0  # ready for the next launch

    @_launch.cached_jit
    def softmax_ce_bwd_kernel(probs, labels, weight, has_weight, ignore_index, smoothing, gloss,
                              gstride, wsum, mode, gx):
        N, C = probs.shape
        for i in range(cuda.grid(1), probs.size, cuda.gridsize(1)):
            row = i // C
            j = i - row * C
            lab = labels[row]
            d = acc_t(0)
            if lab != ignore_index and lab >= 0 and lab < C:
                p = probs[row, j]
                wy = weight[lab] if has_weight else acc_t(1)
                hit = p - acc_t(1) if lab == j else p
                d = (acc_t(1) - smoothing) * wy * hit
                if smoothing != 0:
                    d += smoothing / acc_t(C) * (wsum[1] * p - (weight[j] if has_weight else acc_t(1)))
            g = gloss[row * gstride]
            if mode == 2:
                g = g / wsum[0]
            gx[row, j] = d * g

    return SoftmaxCEKernels(softmax_ce_fwd_kernel, softmax_ce_bwd_kernel)


_cache: dict = {}


def kernels(dtype):
    """``(softmax_ce_fwd_kernel, softmax_ce_bwd_kernel)`` specialised for ``dtype``."""
    return _launch.specialised(_cache, _make_kernels, dtype)


_MODES = {"none": 0, "sum": 1, "mean": 2}


def _weight_args(weight, dtype, stand_in):
    """(weight array, has_weight). Without class weights the kernel never reads ``weight``, so
    ``stand_in`` (a 1-D array of ``dtype`` that the launch only reads) fills the slot and no
    array is allocated per step."""
    if weight is None:
        return stand_in, 0
    return _launch.contiguous(weight.astype(dtype, copy=False)), 1


def softmax_cross_entropy_fwd(logits, labels, reduction="none", weight=None, ignore_index=-100,
                              label_smoothing=0.0):
    """``(loss, probs, wsum)`` in one launch: per-row loss (its mean or sum, a 0-d array, with
    that ``reduction``), the softmax, and ``wsum = [sum of the rows' w_y, sum of the class
    weights]`` for the backward (numpy_kernels.softmax_ce has the formula).

    A label outside [0, C) (and not ``ignore_index``) sets
    ``checks.device_flags()[BAD_LABEL_SLOT]`` (its row's loss is NaN); the reduction counts
    finished blocks in ``checks.reduction_ticket()``.

    Example:
        >>> loss, probs, wsum = softmax_cross_entropy_fwd(xp.zeros((2, 4)), xp.asarray([0, 3]))  # doctest: +SKIP
        >>> loss                                                                  # doctest: +SKIP
        array([1.38629436, 1.38629436])
    """
    logits = _launch.contiguous(logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy_fwd expects (N, C) logits, got shape {logits.shape}")
    labels = _launch.contiguous(labels)
    n, c = logits.shape
    xp = _launch.xp
    loss = xp.empty((n,), dtype=logits.dtype)
    row_w = xp.empty((n,), dtype=logits.dtype)
    probs = xp.empty_like(logits)
    mode = _MODES[reduction]
    total = xp.empty((1,), dtype=logits.dtype)  # (never a view of loss: the simulator
    # copies every array argument back after a launch, an alias would undo the kernel's writes)
    wsum = xp.empty((2,), dtype=logits.dtype)  # the kernel writes both
    if n == 0:
        wsum[...] = 0
        if mode:
            total[...] = 0 if reduction == "sum" else float("nan")  # PyTorch: the mean of none is NaN
        return (total.reshape(()) if mode else loss), probs, wsum
    w, has_weight = _weight_args(weight, logits.dtype, logits.reshape(-1))
    grid = max(1, min(n, _launch.MAX_BLOCKS))
    bad_label = checks.device_flags()[checks.BAD_LABEL_SLOT:checks.BAD_LABEL_SLOT + 1]
    _launch.launch(kernels(logits.dtype).fwd, grid, _launch.reduce_threads(max(c, n if mode else 1)),
                   logits, labels, w, has_weight, int(ignore_index),
                   _launch.scalar(label_smoothing, logits.dtype), loss, row_w, probs, bad_label,
                   total, wsum, checks.reduction_ticket(), mode)
    return (total.reshape(()) if mode else loss), probs, wsum


def softmax_cross_entropy_bwd(probs, labels, gloss, reduction="none", weight=None, ignore_index=-100,
                              label_smoothing=0.0, wsum=None):
    """d loss / d logits in one elementwise launch (numpy_kernels.softmax_ce has the formula):
    g = ``gloss[row]`` for reduction "none", else the upstream gradient of the sum, or of the
    mean divided by ``wsum[0]`` (read on the device), a 0-d or 1-element array.

    Example:
        >>> g = softmax_cross_entropy_bwd(probs, labels, xp.full(2, 0.5))   # doctest: +SKIP
    """
    probs = _launch.contiguous(probs)
    n, c = probs.shape
    labels = _launch.contiguous(labels)
    xp = _launch.xp
    gloss = xp.asarray(gloss)
    if gloss.dtype != probs.dtype:
        gloss = gloss.astype(probs.dtype)
    gloss = _launch.contiguous(gloss.reshape(-1))
    if reduction == "none" and gloss.size != n:
        raise ValueError(f"softmax_cross_entropy_bwd: gloss has {gloss.size} values, needs {n}")
    if wsum is None:  # the plain mean: every row counts once, every class weight is 1
        wsum = xp.asarray([n, c], dtype=probs.dtype)
    gx = xp.empty_like(probs)
    if probs.size:
        w, has_weight = _weight_args(weight, probs.dtype, gloss)
        _launch.launch(kernels(probs.dtype).bwd, _launch.blocks_for(probs.size), _launch.TPB,
                       probs, labels, w, has_weight, int(ignore_index),
                       _launch.scalar(label_smoothing, probs.dtype), gloss,
                       1 if gloss.size == n and reduction == "none" else 0, _launch.contiguous(wsum),
                       _MODES[reduction], gx)
    return gx
