"""Device functions shared by the kernels: NCHW index arithmetic, window ranges, block reductions.

Example:
    >>> n, c, h, w = unravel_nchw(i, C, H, W)        # inside a @cuda.jit kernel  # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda


@cuda.jit(device=True, inline=True)
def unravel_nchw(i, C, H, W):
    """Flat index i of a C-contiguous (N, C, H, W) array -> (n, c, h, w)."""
    w = i % W
    t = i // W
    h = t % H
    t //= H
    return t // C, t % C, h, w


@cuda.jit(device=True, inline=True)
def covering_windows(h, pad, k, s, n_out):
    """First and last output index whose window (size k, stride s, padding pad) covers input h.

    An empty range comes back as lo > hi.
    """
    # NOTE: window o covers h when o*s - pad <= h <= o*s - pad + k - 1, i.e.
    # ceil((h + pad - k + 1) / s) <= o <= floor((h + pad) / s); Python's floor division
    # makes (a + s - 1) // s a ceiling for negative a too.
    return max(0, (h + pad - k + s) // s), min(n_out - 1, (h + pad) // s)


@cuda.jit(device=True, inline=True)
def block_sum(sm, t, nt):
    """Tree-sum sm[0:nt] (nt a power of two) across the block; every thread gets the total.

    Callers write their partial sum to sm[t] first; a trailing barrier lets sm be reused.
    """
    cuda.syncthreads()
    s = nt // 2
    while s > 0:
        if t < s:
            sm[t] += sm[t + s]
        cuda.syncthreads()
        s //= 2
    total = sm[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True, inline=True)
def block_max(sm, t, nt):
    """Like block_sum, for the maximum."""
    cuda.syncthreads()
    s = nt // 2
    while s > 0:
        if t < s and sm[t + s] > sm[t]:
            sm[t] = sm[t + s]
        cuda.syncthreads()
        s //= 2
    best = sm[0]
    cuda.syncthreads()
    return best
