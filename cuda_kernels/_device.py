"""Device functions shared by the kernels: NCHW index arithmetic, window ranges, block reductions.

Integer division has no hardware instruction on a GPU (it costs tens of instructions), so the
index helpers use as few as they can: memory-bound kernels should spend their time on memory.

Example:
    >>> n, c, h, w = unravel_nchw(i, C, H, W)        # inside a @cuda.jit kernel  # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda


@cuda.jit(device=True, inline=True)
def unravel_plane(i, H, W):
    """Flat index i of a C-contiguous (planes, H, W) array -> (plane, h, w): two divisions."""
    plane = i // (H * W)
    r = i - plane * (H * W)
    h = r // W
    return plane, h, r - h * W


@cuda.jit(device=True, inline=True)
def unravel_nchw(i, C, H, W):
    """Flat index i of a C-contiguous (N, C, H, W) array -> (n, c, h, w): three divisions."""
    plane, h, w = unravel_plane(i, H, W)
    n = plane // C
    return n, plane - n * C, h, w


@cuda.jit(device=True, inline=True)
def covering_windows(h, pad, k, s, n_out):
    """First and last output index whose window (size k, stride s, padding pad) covers input h.

    An empty range comes back as lo > hi.
    """
    # NOTE: window o covers h when o*s - pad <= h <= o*s - pad + k - 1.  The last such o is
    # floor((h + pad) / s); the earlier ones are found by stepping back while window lo - 1
    # still reaches h (at most ceil(k / s) steps), which saves a second integer division:
    # GPUs have no divide instruction, so each one costs tens of instructions.
    hi = (h + pad) // s
    lo = hi + 1
    while lo > 0 and (lo - 1) * s - pad + k > h:
        lo -= 1
    return lo, min(n_out - 1, hi)


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
def last_to_arrive(tickets, slot, arrivals, flag, t):
    """True in every thread of the block that takes the last of ``arrivals`` tickets of
    ``slot``: that block then sees every other block's writes (each fenced them before taking
    its ticket) and must set ``tickets[slot]`` back to 0.  ``flag`` is a 1-slot shared array."""
    cuda.threadfence()  # this block's partial sums are visible device-wide before its ticket
    cuda.syncthreads()
    if t == 0:
        flag[0] = cuda.atomic.add(tickets, slot, 1) == arrivals - 1
    cuda.syncthreads()
    return flag[0] != 0


@cuda.jit(device=True, inline=True)
def add_channel_split(sm, last, acc, partial, tickets, out, k, t, nt, zero):
    """Block-sum each thread's ``acc`` into partial[s, k] (s = blockIdx.y, one split of the
    rows); the last of channel k's blocks to finish adds partial[0..S, k] in order into out[k]
    and sets tickets[k] back to 0.  Deterministic: fixed trees, a fixed order of splits."""
    s = cuda.blockIdx.y
    splits = cuda.gridDim.y
    sm[t] = acc
    total = block_sum(sm, t, nt)
    if t == 0:
        partial[s, k] = total
    if last_to_arrive(tickets, k, splits, last, t):
        if t == 0:
            out[k] = sum_splits(partial, k, splits, zero)
            tickets[k] = 0
        cuda.syncthreads()


@cuda.jit(device=True, inline=True)
def add_channel_split_pair(sm, last, acc_a, acc_b, partial, tickets, out, k, kk, t, nt, zero):
    """:func:`add_channel_split` for two sums of channel k at once: out[k] and out[kk + k]
    (kk = the channel count), through partial[s, k] and partial[s, kk + k]."""
    s = cuda.blockIdx.y
    splits = cuda.gridDim.y
    sm[t] = acc_a
    acc_a = block_sum(sm, t, nt)
    sm[t] = acc_b
    acc_b = block_sum(sm, t, nt)
    if t == 0:
        partial[s, k] = acc_a
        partial[s, kk + k] = acc_b
    if last_to_arrive(tickets, k, splits, last, t):
        if t == 0:
            out[k] = sum_splits(partial, k, splits, zero)
            out[kk + k] = sum_splits(partial, kk + k, splits, zero)
            tickets[k] = 0
        cuda.syncthreads()


@cuda.jit(device=True, inline=True)
def sum_splits(partial, col, splits, zero):
    """partial[0..splits, col] added in order by the last block of a split reduction, read
    through L2 (an atomic add of 0, which changes no value): other SMs wrote them."""
    total = zero
    for q in range(splits):
        total += cuda.atomic.add(partial, (q, col), zero)
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
