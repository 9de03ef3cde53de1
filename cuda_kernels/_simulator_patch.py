"""Make Numba's CUDA simulator allocate each block's shared arrays once, under a lock.

The simulator runs a Python thread per CUDA thread.  ``FakeCUDAShared.array`` looks the
calling line up in a dict and, when it is missing, creates the array and stores it: two
threads that both look before either stores get two different arrays.  The thread left with
the orphan then writes its slot where no other thread reads it, and the others read that slot
uninitialised (``np.empty``).  That is a simulator bug, not a kernel race: on a GPU a
``cuda.shared.array`` is one array per block.  It made a block reduction return garbage about
once in a few hundred launches under load (issue 19: an OverflowError in the softmax-CE
kernel, Adam overflowing on a garbage gradient; ``tests/test_cuda_simulator_patch.py`` shows
it with a 64-thread block at a 1 us GIL switch interval).

Example:
    >>> from cuda_kernels import _simulator_patch       # doctest: +SKIP
    >>> _simulator_patch.apply()                        # doctest: +SKIP
"""
from __future__ import annotations

import sys
import threading

import numpy as np

_LOCK = threading.RLock()


def apply() -> bool:
    """Replace the simulator's shared-array allocation by a locked one (once); False if the
    simulator has none.  Arrays are still told apart by the calling source line, as there."""
    try:
        from numba.cuda.simulator import kernelapi
    except ImportError:
        return False
    shared = getattr(kernelapi, "FakeCUDAShared", None)
    if shared is None:
        return False
    if getattr(shared.array, "_gpunet_locked", False):
        return True
    unlocked = shared.array

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # refused, or dynamic shared memory: no lookup
            return unlocked(self, shape, dtype, alignment)
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)  # what the simulator keys on
        with _LOCK:
            res = self._allocations.get(key)
            if res is None:
                res = self._allocations[key] = np.empty(shape, dtype)
        return res

    array._gpunet_locked = True
    shared.array = array
    return True
