"""The NumPy backend: a thin table over the kernel families in ``numpy_kernels/``.

Each family module mirrors ``cuda_kernels/<family>.py`` function for function (conv, pooling,
activation, softmax_ce, optim, random, checks, embedding, layer_norm, recurrent), so the two
implementations of a primitive can be read side by side.  The kernels split their batch over ``gn.set_num_threads`` threads.

Example:
    >>> be = NumpyBackend()
    >>> y, saved = be.conv2d_fwd(np.ones((1, 1, 4, 4), np.float32),
    ...                          np.ones((2, 1, 3, 3), np.float32), None, (1, 1), (0, 0))
    >>> y.shape
    (1, 2, 2, 2)
"""
from __future__ import annotations

import numpy as np

from numpy_kernels import (activation, checks, conv, embedding, layer_norm, linalg, optim, pooling,
                           random, recurrent, softmax_ce)
from numpy_kernels._parallel import concurrently, keep_freed_memory

from .base import Backend


class NumpyBackend(Backend):
    """CPU backend on NumPy; the reference every other backend is tested against."""

    name = "numpy"
    xp = np
    random_kernels = random

    def __init__(self, seed=None):
        keep_freed_memory()
        self.seed(seed)

    def asarray(self, data, dtype=None):
        return np.asarray(data, dtype=dtype)

    def to_host(self, array):
        return np.asarray(array)

    def check_range(self, array, lo, hi, what, hint=""):
        flags = np.zeros(1, np.int32)
        checks.flag_outside_range(array, lo, hi, flags, 0)
        if flags[0]:
            super().check_range(array, lo, hi, what, hint)  # raises, naming the range seen

    concurrently = staticmethod(concurrently)
    matmul = staticmethod(linalg.matmul)
    conv2d_fwd = staticmethod(conv.conv2d_fwd)
    conv2d_bwd_data = staticmethod(conv.conv2d_bwd_data)
    conv2d_bwd_weight = staticmethod(conv.conv2d_bwd_weight)
    conv2d_bwd_bias = staticmethod(conv.conv2d_bwd_bias)
    conv2d_bwd_bias_relu = staticmethod(conv.conv2d_bwd_bias_relu)
    max_pool2d_fwd = staticmethod(pooling.max_pool2d_fwd)
    max_pool2d_bwd = staticmethod(pooling.max_pool2d_bwd)
    conv2d_relu_max_pool_fwd = staticmethod(pooling.conv2d_relu_max_pool_fwd)
    conv2d_relu_max_pool_bwd = staticmethod(pooling.conv2d_relu_max_pool_bwd)
    avg_pool2d_fwd = staticmethod(pooling.avg_pool2d_fwd)
    avg_pool2d_bwd = staticmethod(pooling.avg_pool2d_bwd)
    relu_fwd = staticmethod(activation.relu_fwd)
    relu_bwd = staticmethod(activation.relu_bwd)
    bias_relu_fwd = staticmethod(activation.bias_relu_fwd)
    bias_relu_bwd = staticmethod(activation.bias_relu_bwd)
    softmax_cross_entropy_fwd = staticmethod(softmax_ce.softmax_cross_entropy_fwd)
    softmax_cross_entropy_bwd = staticmethod(softmax_ce.softmax_cross_entropy_bwd)
    sgd_update = staticmethod(optim.sgd_update)
    adam_update = staticmethod(optim.adam_update)
    sgd_update_many = staticmethod(optim.sgd_update_many)
    adam_update_many = staticmethod(optim.adam_update_many)
    embedding_bwd = staticmethod(embedding.embedding_bwd)
    layer_norm_fwd = staticmethod(layer_norm.layer_norm_fwd)
    layer_norm_bwd = staticmethod(layer_norm.layer_norm_bwd)
    lstm_cell_fwd = staticmethod(recurrent.lstm_cell_fwd)
    lstm_cell_bwd = staticmethod(recurrent.lstm_cell_bwd)
    gru_cell_fwd = staticmethod(recurrent.gru_cell_fwd)
    gru_cell_bwd = staticmethod(recurrent.gru_cell_bwd)
