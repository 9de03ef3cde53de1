"""Launch plumbing shared by every kernel family: array module, grid sizes, streams.

On a real GPU each launch goes to CuPy's *current* stream, wrapped once per stream with
``numba.cuda.external_stream``; CuPy arrays are handed over with
``numba.cuda.as_cuda_array(a, sync=False)`` so Numba does not synchronise the array's stream
on every call (the CUDA Array Interface v3 default).  The simulator has no external streams
and takes NumPy arrays as they are, so there kernels are launched plainly.

Example:
    >>> from cuda_kernels import _launch                       # doctest: +SKIP
    >>> _launch.launch(kernel, _launch.blocks_for(n), _launch.TPB, x, y)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
from numba import cuda


def _simulator_enabled() -> bool:
    try:
        from numba.cuda.core import config  # numba-cuda
    except ImportError:  # numba's built-in CUDA target
        from numba import config
    return bool(config.ENABLE_CUDASIM)


SIMULATOR: bool = _simulator_enabled()

if SIMULATOR:
    xp = np
    # The simulator runs one Python thread per CUDA thread: small blocks and a capped grid
    # keep tests quick and make every grid-stride loop take more than one trip.
    TPB = 32
    MAX_BLOCKS = 4
    REDUCE_TPB = 32
    MIN_REDUCE_TPB = 4  # every simulated thread costs; 4 still exercises the tree reduction
else:
    import cupy

    xp = cupy
    TPB = 256
    MAX_BLOCKS = 65535
    REDUCE_TPB = 256
    MIN_REDUCE_TPB = 32  # a full warp

# Shared-memory size of every block reduction; launch block sizes are powers of two <= this.
SHARED_SIZE = 256

_streams: dict = {}


def blocks_for(n: int, tpb: int = TPB) -> int:
    """Blocks for a grid-stride loop over ``n`` items: one item per thread up to MAX_BLOCKS."""
    return max(1, min(MAX_BLOCKS, (n + tpb - 1) // tpb))


def reduce_threads(n: int) -> int:
    """Power-of-two block size (MIN_REDUCE_TPB .. REDUCE_TPB) for a block that reduces ``n`` items."""
    t = MIN_REDUCE_TPB
    while t < REDUCE_TPB and t < n:
        t *= 2
    return t


def _current_stream():
    ptr = cupy.cuda.get_current_stream().ptr
    key = (cupy.cuda.runtime.getDevice(), ptr)
    stream = _streams.get(key)
    if stream is None:
        stream = _streams[key] = cuda.external_stream(ptr)
    return stream


def launch(kernel, grid, block, *args) -> None:
    """``kernel[grid, block, <CuPy's current stream>](*args)`` without a per-call synchronise.

    In the simulator this is simply ``kernel[grid, block](*args)``.
    """
    if SIMULATOR:
        # The simulator copies every array argument back after the launch, which fails on
        # read-only inputs (e.g. broadcast views): hand it writable copies of those.
        args = tuple(a.copy() if isinstance(a, np.ndarray) and not a.flags.writeable else a
                     for a in args)
        kernel[grid, block](*args)
        return
    args = tuple(
        cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a
        for a in args
    )
    kernel[grid, block, _current_stream()](*args)


def gemm(a, b):
    """``a @ b`` on cuBLAS (NumPy in the simulator); the one route every GEMM takes, so the
    profiler can count them."""
    return xp.matmul(a, b)


def contiguous(a):
    """``a`` as a C-contiguous array of this module's ``xp`` (a view when it already is)."""
    return xp.ascontiguousarray(a)


def flat_view(a):
    """A 1-D view of a C-contiguous array, for kernels that update it in place."""
    if not a.flags.c_contiguous:
        raise ValueError("in-place kernels need C-contiguous arrays")
    return a.reshape(-1)


def in_place(a):
    """``(flat view, None)`` of a C-contiguous array, else ``(flat contiguous copy, a)``: an
    in-place kernel then updates the copy and the caller writes it back with :func:`write_back`."""
    if a.flags.c_contiguous:
        return a.reshape(-1), None
    return xp.ascontiguousarray(a).reshape(-1), a


def write_back(flat, original):
    """Copy a kernel's result from ``in_place``'s copy into the non-contiguous original."""
    if original is not None:
        original[...] = flat.reshape(original.shape)


def scalar(value, dtype):
    """A host scalar typed like the arrays (so float32 kernels do float32 arithmetic)."""
    return np.dtype(dtype).type(value)


def specialised(cache: dict, make, dtype):
    """``make(numba_type)`` built once per dtype (kernels with typed shared memory or constants).

    Example:
        >>> fwd, bwd = specialised(_cache, _make_kernels, np.float32)  # doctest: +SKIP
    """
    key = np.dtype(dtype)
    if key not in cache:
        import numba

        cache[key] = make(numba.from_dtype(key))
    return cache[key]
