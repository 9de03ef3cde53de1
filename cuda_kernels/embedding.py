"""Embedding backward on the GPU: a deterministic scatter-add without atomics.

The flattened indices are sorted stably (CuPy's sort is stable); ``embedding_bwd_kernel`` then
runs one thread per (distinct row, column) that sums that row's gradients in their original
order, the order ``numpy_kernels/embedding.py`` uses, so both backends agree and a GPU run
repeats bit for bit.

Example:
    >>> from cuda_kernels import embedding                       # doctest: +SKIP
    >>> g = embedding.embedding_bwd(gy, indices, num_embeddings)  # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda

from . import _launch


@_launch.cached_jit
def embedding_bwd_kernel(g, order, ids, starts, out, zero):
    """out[ids[starts[s]], j] = sum of g[order[t], j] for t in [starts[s], starts[s + 1])."""
    S = starts.shape[0] - 1
    D = g.shape[1]
    for i in range(cuda.grid(1), S * D, cuda.gridsize(1)):
        s = i // D
        j = i - s * D
        acc = zero
        for t in range(starts[s], starts[s + 1]):
            acc += g[order[t], j]
        out[ids[starts[s]], j] = acc


def embedding_bwd(gy, indices, num_embeddings):
    """Gradient of ``weight[indices]`` for ``weight`` (num_embeddings, D): rows summed per index."""
    xp = _launch.xp
    d = gy.shape[-1]
    flat = _launch.contiguous(indices).reshape(-1)
    g = _launch.contiguous(gy).reshape(-1, d)
    out = xp.zeros((num_embeddings, d), dtype=gy.dtype)
    if flat.size == 0:
        return out
    order = xp.argsort(flat, kind="stable")
    ids = flat[order]
    change = xp.concatenate([xp.ones(1, dtype=bool), ids[1:] != ids[:-1]])
    starts = xp.concatenate([xp.flatnonzero(change), xp.asarray([flat.size])]).astype(xp.int64)
    segments = starts.shape[0] - 1
    _launch.launch(embedding_bwd_kernel, _launch.blocks_for(segments * d), _launch.TPB,
                   g, order, ids, starts, out, _launch.scalar(0, gy.dtype))
    return out
