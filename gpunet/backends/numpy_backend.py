"""The NumPy backend: the primitives of ``primitives.py`` bound from ``numpy_kernels/<family>.py``.

Each family module mirrors ``cuda_kernels/<family>.py`` function for function, so the two
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

from numpy_kernels import checks, random
from numpy_kernels._parallel import concurrently, keep_freed_memory

from . import primitives
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
    threaded_thunks = True


primitives.bind(NumpyBackend, primitives.kernel_modules("numpy_kernels", primitives.FAMILIES))
