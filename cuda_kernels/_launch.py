"""Launch plumbing shared by every kernel family: array module, grid sizes, streams.

On a real GPU each launch goes to CuPy's *current* stream.  Two routes (``fast_launch``):

* fast (the default): the compiled kernel is looked up once per argument-type signature and
  its arguments are marshalled here -- a CuPy array is Numba's seven fields (meminfo, parent,
  size, itemsize, pointer, shape, strides) read straight off the array -- then handed to
  ``cuda.core.launch``, as Numba's own ``_Kernel.launch`` does after its slower per-argument
  work (numba-cuda issues 477, 539, 578; PR 694).  No wrapper object per argument, no stream
  synchronise, no launch-configuration object per call.
* plain: ``kernel[grid, block, stream](*args)`` with each CuPy array wrapped by
  ``numba.cuda.as_cuda_array(a, sync=False)``; configurations are cached, and Numba's
  low-occupancy warning is silenced for our launches only.

The first launch on a GPU checks the fast route against the plain one with a tiny kernel; if
it fails, every launch takes the plain route and one line is logged.  ``GPUNET_FAST_LAUNCH=0``
chooses the plain route.  The simulator has no streams and takes NumPy arrays as they are,
so there kernels are launched plainly.

Example:
    >>> from cuda_kernels import _launch                       # doctest: +SKIP
    >>> _launch.launch(kernel, _launch.blocks_for(n), _launch.TPB, x, y)  # doctest: +SKIP
"""
from __future__ import annotations

import ctypes
import logging
import os
import warnings

import numpy as np
from numba import cuda

from .simulator import simulator_on

log = logging.getLogger("gpunet")


SIMULATOR: bool = simulator_on()  # numba is loaded now, so this is its config's answer

if SIMULATOR:
    from . import _simulator_patch

    _simulator_patch.apply()  # the simulator's shared arrays, allocated once per block
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
    """Numba's and cuda.core's handles of CuPy's current stream (made once per stream)."""
    ptr = cupy.cuda.get_current_stream().ptr
    key = (cupy.cuda.runtime.getDevice(), ptr)
    stream = _streams.get(key)
    if stream is None:
        numba_stream = cuda.external_stream(ptr)
        from numba.cuda.cudadrv import driver

        stream = _streams[key] = (numba_stream, driver._to_core_stream(numba_stream))
    return stream


def launch(kernel, grid, block, *args) -> None:
    """``kernel[grid, block, <CuPy's current stream>](*args)`` without a per-call synchronise,
    by the fast route when it works here (see the module docstring).

    In the simulator this is simply ``kernel[grid, block](*args)``.
    """
    if SIMULATOR:
        # The simulator copies every array argument back after the launch, which fails on
        # read-only inputs (e.g. broadcast views): hand it writable copies of those.
        args = tuple(a.copy() if isinstance(a, np.ndarray) and not a.flags.writeable else a
                     for a in args)
        kernel[grid, block](*args)
        return
    if _fast.enabled is None:
        _fast.check()
    if _fast.enabled:
        _fast.launch(kernel, grid, block, args)
    else:
        plain_launch(kernel, grid, block, args)


_configs: dict = {}


def plain_launch(kernel, grid, block, args) -> None:
    """Numba's own launch path, with cached configurations and CuPy arrays wrapped without sync."""
    numba_stream = _current_stream()[0]
    key = (kernel, grid, block, numba_stream)
    configured = _configs.get(key)
    if configured is None:
        from numba.core.errors import NumbaPerformanceWarning

        with warnings.catch_warnings():  # "Grid size N will likely result in ... low occupancy"
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            configured = _configs[key] = kernel[grid, block, numba_stream]
    configured(*(_wrap(a) for a in args))


def _wrap(a):
    if isinstance(a, tuple):
        return tuple(_wrap(x) for x in a)
    return cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a


class _FastRoute:
    """Kernel lookup by argument signature and argument marshalling without Numba's wrappers."""

    def __init__(self):
        self.enabled = None if os.environ.get("GPUNET_FAST_LAUNCH", "1") != "0" else False
        self._kernels = {}  # (dispatcher, signature key) -> (cuda.core kernel, marshal plan)
        self._configs = {}  # (grid, block) -> cuda.core LaunchConfig
        self._core = None  # cuda.core's (launch, LaunchConfig), imported by check()

    @staticmethod
    def signature_key(args):
        key = []
        for a in args:
            if isinstance(a, tuple):
                key.append(tuple((x.dtype.char, x.ndim, x.flags.c_contiguous) for x in a))
            elif hasattr(a, "__cuda_array_interface__"):
                key.append((a.dtype.char, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous))
            else:
                key.append(type(a))
        return tuple(key)

    def lookup(self, kernel, args):
        key = (kernel, self.signature_key(args))
        found = self._kernels.get(key)
        if found is None:
            argtypes = tuple(kernel.typeof_pyval(a) for a in args)
            compiled = kernel.compile(argtypes)  # from memory, the disk cache, or compiled now
            handle = compiled._codelibrary.get_cufunc().kernel
            found = self._kernels[key] = (handle, tuple(plan_for(t) for t in argtypes))
        return found

    def launch(self, kernel, grid, block, args):
        core_launch, launch_config = self._core
        handle, plan = self.lookup(kernel, args)
        config = self._configs.get((grid, block))
        if config is None:
            config = self._configs[(grid, block)] = launch_config(grid=grid, block=block, shmem_size=0)
        core_launch(_current_stream()[1], config, handle, *marshal(plan, args))

    def check(self):
        """Run a probe kernel both ways once; keep the fast route only if it agrees."""
        try:
            from cuda.core import LaunchConfig, launch as core_launch  # numba-cuda's own launcher

            self._core = (core_launch, LaunchConfig)
            x = cupy.arange(300, dtype=np.float32)
            outs = []
            for route in (plain_launch, self.launch):
                y = cupy.zeros((2, 300), np.float32)
                route(_probe_kernel, (2, 2), 64, (x, (y[0], y[1]), np.float32(0.5), 7, True))
                outs.append(cupy.asnumpy(y))
            want = np.stack([np.arange(300) * 0.5 + 7, np.arange(300) * 0.5 + 8]).astype(np.float32)
            if not (np.array_equal(outs[0], want) and np.array_equal(outs[1], want)):
                raise RuntimeError("the probe kernel's results differ between the routes")
            self.enabled = True
        except Exception as exc:  # any failure: the plain route is always there
            self.enabled = False
            log.warning("gpunet: fast kernel launches unavailable (%s: %s); using Numba's launch "
                        "path", type(exc).__name__, exc)


_ARRAY, _TUPLE, _BOOL = "array", "tuple", "bool"


def plan_for(numba_type):
    """How one argument of ``numba_type`` is marshalled (Numba's _Kernel._prepare_args rules)."""
    from numba.cuda import types

    if isinstance(numba_type, types.Array):
        return _ARRAY
    if isinstance(numba_type, types.BaseTuple) and all(isinstance(t, types.Array) for t in numba_type):
        return _TUPLE
    if numba_type == types.boolean:
        return _BOOL
    if isinstance(numba_type, types.Integer):
        return getattr(ctypes, f"c_{numba_type}")
    if numba_type == types.float32:
        return ctypes.c_float
    if numba_type == types.float64:
        return ctypes.c_double
    raise TypeError(f"fast launch: no marshalling for an argument of type {numba_type}")


def marshal(plan, args):
    """The flat argument list ``cuda.core.launch`` takes: per array (meminfo 0, parent 0, size,
    itemsize, device pointer, *shape, *strides in bytes), as Numba's array data model lays it out."""
    out = []
    for kind, a in zip(plan, args):
        if kind is _ARRAY:
            out += (0, 0, a.size, a.itemsize, a.data.ptr, *a.shape, *a.strides)
        elif kind is _TUPLE:
            for x in a:
                out += (0, 0, x.size, x.itemsize, x.data.ptr, *x.shape, *x.strides)
        elif kind is _BOOL:
            out.append(bool(a))
        else:
            out.append(kind(a))
    return out


@cuda.jit(cache=True)
def _probe_kernel(x, ys, scale, offset, flag):
    """ys[j][i] = x[i] * scale + offset + j (when flag): every kind of argument the kernels use."""
    y = ys[cuda.blockIdx.y]
    for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, x.size,
                   cuda.gridDim.x * cuda.blockDim.x):
        if flag:
            y[i] = x[i] * scale + offset + cuda.blockIdx.y


_fast = _FastRoute()


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
