"""Matrix products on NumPy with the batch split over gpunet's threads and BLAS on one thread.

OpenBLAS's own worker threads keep spinning after each threaded call and then compete with the
batch-parallel kernels for the same cores; keeping every GEMM of the backend single-threaded
and splitting the rows of ``a`` over ``parallel_for`` avoids that.

Example:
    >>> matmul(np.ones((4, 3)), np.ones((3, 2))).tolist()
    [[3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]]
"""
from __future__ import annotations

import numpy as np

from ._parallel import blas_held, num_threads, parallel_for

ROWS_MIN_WORK = 1 << 23  # multiply-adds per chunk below which a thread costs more than it saves


def matmul(a, b):
    """``a @ b`` with NumPy's broadcasting; products with a 2-D ``b`` are split by rows of ``a``
    (a stack of matrices ``a`` (..., M, K) counts as one (prod(...) * M, K) matrix)."""
    if a.ndim > 2 and b.ndim == 2:
        return matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))
    if a.ndim != 2 or b.ndim != 2:
        return np.matmul(a, b)
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), np.result_type(a.dtype, b.dtype))
    chunks = max(1, min(num_threads(), m * k * n // ROWS_MIN_WORK))
    if chunks == 1 and blas_held():  # e.g. an LSTM's step inside its layer's region: ~6 us less
        return np.matmul(a, b)
    parallel_for(m, -(-m // chunks), lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]))
    return out
