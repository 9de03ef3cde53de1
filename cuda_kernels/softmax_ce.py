"""Fused softmax cross-entropy: one block per row, shared-memory reductions.

Forward: each block strides over its row's C logits three times (row max, sum of
exp(x - max), probabilities) with a shared-memory tree reduction after the first two, then
thread 0 writes ``loss = log(sum) + max - x[label]``.  The row stays in L1/L2 between the
passes, so HBM traffic is one read of the logits and one write of the probabilities, and
10 classes and 1,000 classes are both one launch.  Backward is one elementwise launch:
``(probs - onehot(labels)) * gloss[row]``.

Example:
    >>> from cuda_kernels import softmax_ce                       # doctest: +SKIP
    >>> loss, probs = softmax_ce.softmax_cross_entropy_fwd(logits, labels)  # doctest: +SKIP
    >>> g = softmax_ce.softmax_cross_entropy_bwd(probs, labels, gloss)       # doctest: +SKIP
"""
from __future__ import annotations

import math

from numba import cuda

from . import _launch
from ._device import block_max, block_sum

SHARED = _launch.SHARED_SIZE  # shared-memory slots of a block reduction


def _make_kernels(acc_t):
    """Build the forward and backward kernels for one float type (shared memory is typed)."""

    @cuda.jit
    def softmax_ce_fwd_kernel(logits, labels, loss, probs, bad_label):
        sm = cuda.shared.array(SHARED, dtype=acc_t)
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

    @cuda.jit
    def softmax_ce_bwd_kernel(probs, labels, gloss, gx):
        N, C = probs.shape
        for i in range(cuda.grid(1), probs.size, cuda.gridsize(1)):
            row = i // C
            j = i - row * C
            p = probs[row, j]
            if labels[row] == j:
                p -= acc_t(1)
            gx[row, j] = p * gloss[row]

    return softmax_ce_fwd_kernel, softmax_ce_bwd_kernel


_cache: dict = {}


def kernels(dtype):
    """``(softmax_ce_fwd_kernel, softmax_ce_bwd_kernel)`` specialised for ``dtype``."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def softmax_cross_entropy_fwd(logits, labels, bad_label):
    """Per-row loss ``logsumexp(row) - row[label]`` and the softmax probabilities.

    ``bad_label`` is a 1-element int32 device array set to 1 when a label is outside [0, C).

    Example:
        >>> loss, probs = softmax_cross_entropy_fwd(xp.zeros((2, 4)), xp.asarray([0, 3]), flag)  # doctest: +SKIP
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
    grid = max(1, min(n, _launch.MAX_BLOCKS))
    _launch.launch(kernels(logits.dtype)[0], grid, _launch.reduce_threads(c),
                   logits, labels, loss, probs, bad_label)
    return loss, probs


def softmax_cross_entropy_bwd(probs, labels, gloss):
    """``(probs - onehot(labels)) * gloss[:, None]``; ``gloss`` is per row (or a scalar).

    Example:
        >>> g = softmax_cross_entropy_bwd(probs, labels, xp.full(2, 0.5))   # doctest: +SKIP
    """
    probs = _launch.contiguous(probs)
    n = probs.shape[0]
    labels = _launch.contiguous(labels)
    gloss = _launch.contiguous(_launch.xp.broadcast_to(
        _launch.xp.asarray(gloss, dtype=probs.dtype), (n,)))
    gx = _launch.xp.empty_like(probs)
    _launch.launch(kernels(probs.dtype)[1], _launch.blocks_for(probs.size), _launch.TPB,
                   probs, labels, gloss, gx)
    return gx
