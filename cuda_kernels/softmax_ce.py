"""Fused softmax cross-entropy: one block per row, shared-memory reductions.

Forward: each block strides over its row's C logits three times (row max, sum of
exp(x - max), probabilities) with a shared-memory tree reduction after the first two, then
thread 0 writes ``loss = log(sum) + max - x[label]``.  The row stays in L1/L2 between the
passes, so HBM traffic is one read of the logits and one write of the probabilities, and
10 classes and 1,000 classes are both one launch.  With a "mean" or "sum" reduction the same
launch also reduces the per-row losses: the last block to finish (an integer ticket, the
pattern of CUDA's threadFenceReduction sample: a fence before the ticket, L2 reads after it)
sums them in a fixed order, so the result is the same bits every run.  The ticket belongs to
the stream (``checks.reduction_ticket``), so launches on two streams never share one.  Backward is one elementwise launch:
``(probs - onehot(labels)) * gloss[row or 0] * scale``.

Example:
    >>> from cuda_kernels import softmax_ce                       # doctest: +SKIP
    >>> loss, probs = softmax_ce.softmax_cross_entropy_fwd(logits, labels)  # doctest: +SKIP
    >>> g = softmax_ce.softmax_cross_entropy_bwd(probs, labels, gloss)       # doctest: +SKIP
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
    def softmax_ce_fwd_kernel(logits, labels, loss, probs, bad_label, total_out, ticket, scale):
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
            if t == 0:
                lab = labels[row]
                if lab >= 0 and lab < C:
                    loss[row] = math.log(total) - (logits[row, lab] - m)  # keep m out: precision
                else:
                    # out-of-range label: NaN loss and a flag the backend checks when a value
                    # is next read (like a device-side assert), so no per-step host check
                    loss[row] = acc_t(math.nan)
                    bad_label[0] = 1
        if scale != 0:  # reduce: the last block to finish sums loss[0..N) in a fixed order
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
                if t == 0:
                    total_out[0] = acc * scale
                    ticket[0] = 0  # ready for the next launch

    @_launch.cached_jit
    def softmax_ce_bwd_kernel(probs, labels, gloss, gstride, scale, gx):
        N, C = probs.shape
        for i in range(cuda.grid(1), probs.size, cuda.gridsize(1)):
            row = i // C
            j = i - row * C
            p = probs[row, j]
            if labels[row] == j:
                p -= acc_t(1)
            gx[row, j] = p * (gloss[row * gstride] * scale)

    return SoftmaxCEKernels(softmax_ce_fwd_kernel, softmax_ce_bwd_kernel)


_cache: dict = {}


def kernels(dtype):
    """``(softmax_ce_fwd_kernel, softmax_ce_bwd_kernel)`` specialised for ``dtype``."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def _scale(reduction, n):
    return {"mean": 1.0 / max(n, 1), "sum": 1.0, "none": 0.0}[reduction]


def softmax_cross_entropy_fwd(logits, labels, reduction="none"):
    """Per-row loss ``logsumexp(row) - row[label]`` (its mean or sum, a 0-d array, with that
    ``reduction``) and the softmax probabilities, in one launch.

    A label outside [0, C) sets ``checks.device_flags()[BAD_LABEL_SLOT]`` (its row's loss is
    NaN); the reduction counts finished blocks in ``checks.reduction_ticket()``.

    Example:
        >>> loss, probs = softmax_cross_entropy_fwd(xp.zeros((2, 4)), xp.asarray([0, 3]))  # doctest: +SKIP
        >>> loss                                                                  # doctest: +SKIP
        array([1.38629436, 1.38629436])
    """
    logits = _launch.contiguous(logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy_fwd expects (N, C) logits, got shape {logits.shape}")
    labels = _launch.contiguous(labels)
    n, c = logits.shape
    loss = _launch.xp.empty((n,), dtype=logits.dtype)
    probs = _launch.xp.empty_like(logits)
    scale = _scale(reduction, n)
    total = _launch.xp.empty((1,), dtype=logits.dtype)  # (never a view of loss: the simulator
    # copies every array argument back after a launch, an alias would undo the kernel's writes)
    if n == 0:
        if scale:
            total[...] = 0 if reduction == "sum" else float("nan")  # PyTorch: the mean of none is NaN
        return (total.reshape(()) if scale else loss), probs
    grid = max(1, min(n, _launch.MAX_BLOCKS))
    bad_label = checks.device_flags()[checks.BAD_LABEL_SLOT:checks.BAD_LABEL_SLOT + 1]
    _launch.launch(kernels(logits.dtype).fwd, grid, _launch.reduce_threads(max(c, n if scale else 1)),
                   logits, labels, loss, probs, bad_label, total, checks.reduction_ticket(),
                   _launch.scalar(scale, logits.dtype))
    return (total.reshape(()) if scale else loss), probs


def softmax_cross_entropy_bwd(probs, labels, gloss, reduction="none"):
    """``(probs - onehot(labels)) * g``: g = ``gloss[row]`` for reduction "none", else the
    upstream gradient of the mean (divided by N) or sum, a 0-d or 1-element array.

    Example:
        >>> g = softmax_cross_entropy_bwd(probs, labels, xp.full(2, 0.5))   # doctest: +SKIP
    """
    probs = _launch.contiguous(probs)
    n = probs.shape[0]
    labels = _launch.contiguous(labels)
    gloss = _launch.xp.asarray(gloss)
    if gloss.dtype != probs.dtype:
        gloss = gloss.astype(probs.dtype)
    gloss = _launch.contiguous(gloss.reshape(-1))
    if reduction == "none" and gloss.size != n:
        raise ValueError(f"softmax_cross_entropy_bwd: gloss has {gloss.size} values, needs {n}")
    gx = _launch.xp.empty_like(probs)
    if probs.size:
        _launch.launch(kernels(probs.dtype).bwd, _launch.blocks_for(probs.size), _launch.TPB,
                       probs, labels, gloss, 1 if gloss.size == n and reduction == "none" else 0,
                       _launch.scalar(_scale(reduction, n) or 1.0, probs.dtype), gx)
    return gx
