"""Embedding backward on NumPy: a deterministic scatter-add of output gradients into table rows.

Each row's gradient is the sum of its occurrences in their original order (``np.add.at`` adds
one after another), the same order ``cuda_kernels/embedding.py`` sums them in after its stable
sort, so the two backends agree bit for bit.

Example:
    >>> embedding_bwd(np.ones((3, 2)), np.array([1, 0, 1]), 4).tolist()
    [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
"""
from __future__ import annotations

import numpy as np

MAX_PASSES = 32  # occurrences of one index above which np.add.at is the faster way


def embedding_bwd(gy, indices, num_embeddings):
    """Gradient of ``weight[indices]`` for ``weight`` (num_embeddings, D): rows summed per index."""
    d = gy.shape[-1]
    flat = indices.reshape(-1)
    g = gy.reshape(-1, d)
    out = np.zeros((num_embeddings, d), gy.dtype)
    if flat.size == 0:
        return out
    # a stable sort groups each row's occurrences in their original order; pass r then adds
    # every row's r-th occurrence at once (no index twice in a pass), so each row is summed
    # one occurrence after another, as np.add.at would (~5x faster than it at 700 x 128)
    order = np.argsort(flat, kind="stable")
    ids = flat[order]
    first = np.concatenate(([True], ids[1:] != ids[:-1]))
    starts = np.flatnonzero(first)
    rank = np.arange(ids.size) - np.repeat(starts, np.diff(np.append(starts, ids.size)))
    passes = int(rank.max()) + 1
    if passes > MAX_PASSES:  # one index repeated very often: one pass per repeat costs more
        np.add.at(out, flat, g)
        return out
    g = g[order]
    out[ids[starts]] += g[starts]  # 0.0 + g, as np.add.at adds: -0.0 becomes +0.0
    for r in range(1, passes):
        pick = np.flatnonzero(rank == r)
        out[ids[pick]] += g[pick]
    return out
