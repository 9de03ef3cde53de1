"""Device functions shared by the kernels: NCHW index arithmetic and window ranges.

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
