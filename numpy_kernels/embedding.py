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


def embedding_bwd(gy, indices, num_embeddings):
    """Gradient of ``weight[indices]`` for ``weight`` (num_embeddings, D): rows summed per index."""
    d = gy.shape[-1]
    flat = indices.reshape(-1)
    g = gy.reshape(-1, d)
    out = np.zeros((num_embeddings, d), gy.dtype)
    np.add.at(out, flat, g)
    return out
