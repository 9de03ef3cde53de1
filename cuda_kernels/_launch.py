"""Launch plumbing shared by every kernel family: streams, the launch routes, array helpers (the
array module and grid sizes come from ``_platform`` and are re-exported here).

On a real GPU each launch goes to CuPy's *current* stream.  Two routes (``fast_launch``):

* fast (the default): the compiled kernel is looked up once per argument-type signature and
  its arguments are marshalled here -- a CuPy array (recognised by its type) is Numba's seven
  fields (meminfo, parent, size, itemsize, pointer, shape, strides) read straight off the
  array, an int64 or float64 stays a Python number and a narrower scalar becomes its NumPy
  type -- then handed to ``cuda.core.launch`` on ``cuda.core.Stream.from_handle`` of CuPy's
  stream, as Numba's own ``_Kernel.launch`` does after its slower per-argument work
  (numba-cuda issues 477, 539, 578; PR 694).  No wrapper object per argument, no stream
  synchronise, no launch-configuration object per call.  It reads one private attribute of
  numba-cuda (the compiled kernel's cuda.core handle), so it is checked before use and
  numba-cuda is pinned to the releases that launch through cuda.core (>= 0.23).
* plain: ``kernel[grid, block, stream](*args)`` on ``numba.cuda.external_stream`` of CuPy's
  stream, each CuPy array wrapped by ``numba.cuda.as_cuda_array(a, sync=False)``: public
  Numba API only.  Configurations are cached, and Numba's low-occupancy warning is silenced
  for our launches only.

The first launch on a GPU checks the fast route against the plain one with a tiny kernel; if
it fails, every launch takes the plain route and one line is logged.  ``GPUNET_FAST_LAUNCH=0``
chooses the plain route.  The simulator has no streams and takes NumPy arrays as they are,
so there kernels are launched plainly.

Example:
    >>> from cuda_kernels import _launch                       # doctest: +SKIP
    >>> _launch.launch(kernel, _launch.blocks_for(n), _launch.TPB, x, y)  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
import logging
import os
import warnings

import numpy as np
from numba import cuda

from ._platform import (  # noqa: F401  (the kernel families read these as _launch.*)
    MAX_BLOCKS, MIN_REDUCE_TPB, REDUCE_TPB, SHARED_SIZE, SIMULATOR, SPLIT_ROWS, TPB, blocks_for,
    reduce_threads, splits_for, xp)

if not SIMULATOR:
    import cupy

log = logging.getLogger("gpunet")

_numba_streams: dict = {}
_core_streams: dict = {}


def cached_jit(fn=None, **options):
    """``cuda.jit(cache=True, **options)`` for a kernel, or ``cache=False`` with one logged line
    when its closure cannot be pickled: numba-cuda pickles a kernel's closure variables into the key of
    its disk cache (``caching.py``'s ``_index_key``), and a failure there would otherwise stop
    the first compile of the kernel on a GPU.  (The simulator keeps no cache.)

    Example:
        >>> @cached_jit                                              # doctest: +SKIP
        ... def add_one_kernel(x):
        ...     x[cuda.grid(1)] += 1
    """
    if fn is None:
        return lambda f: cached_jit(f, **options)
    if not SIMULATOR and fn.__closure__:
        from numba.cuda.serialize import dumps

        try:
            dumps(tuple(cell.cell_contents for cell in fn.__closure__))
        except ValueError:  # a cell not filled yet: Numba reads it at compile time
            pass
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the cache is off
            log.warning("gpunet: kernel %s is compiled without a disk cache (its closure does not "
                        "pickle: %s: %s)", fn.__name__, type(exc).__name__, exc)
            return cuda.jit(cache=False, **options)(fn)
    return cuda.jit(cache=True, **options)(fn)


def stream_key():
    """(device, stream handle) of CuPy's current stream; None in the simulator (no streams)."""
    if SIMULATOR:
        return None
    return cupy.cuda.runtime.getDevice(), cupy.cuda.get_current_stream().ptr


def _stream(handles, make):
    """``make(pointer)`` of CuPy's current stream, made once per :func:`stream_key` in ``handles``."""
    key = stream_key()
    stream = handles.get(key)
    if stream is None:
        stream = handles[key] = make(key[1])
    return stream


def _numba_stream():
    """Numba's handle of CuPy's current stream (public API)."""
    return _stream(_numba_streams, cuda.external_stream)


def _core_stream():
    """cuda.core's handle of CuPy's current stream (its public ``Stream.from_handle``)."""
    return _stream(_core_streams, _core_stream_of)


def _core_stream_of(ptr):
    from cuda.core import Stream

    return Stream.from_handle(ptr)


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
    numba_stream = _numba_stream()
    key = (kernel, grid, block, numba_stream)
    configured = _configs.get(key)
    if configured is None:
        with warnings.catch_warnings():  # "Grid size N will likely result in ... low occupancy"
            for warning in performance_warnings():
                warnings.simplefilter("ignore", warning)
            configured = _configs[key] = kernel[grid, block, numba_stream]
    configured(*(_wrap(a) for a in args))


def performance_warnings() -> tuple:
    """The class(es) Numba warns about low occupancy with: numba-cuda's own
    (``numba.cuda.core.errors``, which its dispatcher raises) and Numba's, where they differ."""
    found = []
    for module in ("numba.cuda.core.errors", "numba.core.errors"):
        try:
            cls = getattr(importlib.import_module(module), "NumbaPerformanceWarning")
        except (ImportError, AttributeError):
            continue
        if cls not in found:
            found.append(cls)
    return tuple(found)


def _wrap(a):
    if isinstance(a, tuple):
        return tuple(_wrap(x) for x in a)
    return cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a


MIN_NUMBA_CUDA = (0, 23)  # the first numba-cuda whose kernels launch through cuda.core


def numba_cuda_version() -> tuple | None:
    """numba-cuda's (major, minor) from its installed metadata, None when not installed."""
    from importlib import metadata

    try:
        return tuple(int(p) for p in metadata.version("numba-cuda").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None


class _FastRoute:
    """Kernel lookup by argument signature and argument marshalling without Numba's wrappers.

    The hot path per launch is one pass over the arguments (:func:`marshal`: the flat list and
    the signature key together), one dict lookup for the compiled kernel, a cached launch
    configuration and the stream handle.  The first launch of a signature compiles (or loads)
    the kernel and checks that every argument packs as Numba's type of it says.
    """

    def __init__(self):
        self.enabled = None if os.environ.get("GPUNET_FAST_LAUNCH", "1") != "0" else False
        self._kernels = {}  # signature key (dispatcher first) -> cuda.core kernel
        self._configs = {}  # (grid, block) -> cuda.core LaunchConfig
        self._core = None  # cuda.core's (launch, LaunchConfig), imported by check()
        self.array_type = None  # cupy.ndarray, set by check(): the one array type marshalled

    def compile(self, kernel, args):
        """Compile (or load) the kernel for a signature not seen yet, and store it."""
        argtypes = tuple(kernel.typeof_pyval(a) for a in args)
        compiled = kernel.compile(argtypes)  # from memory, the disk cache, or compiled now
        return self.store(kernel, args, compiled._codelibrary.get_cufunc().kernel, argtypes)

    def store(self, kernel, args, handle, argtypes):
        """Keep ``handle`` for the signature of ``args``, once each argument is checked to pack
        (as :func:`marshal` passes it) the way Numba's ``argtypes`` lay it out."""
        for position, (numba_type, a) in enumerate(zip(argtypes, args)):
            kind = plan_for(numba_type)
            arrays = a if kind is _TUPLE else (a,) if kind is _ARRAY else ()
            if any(type(x) is not self.array_type for x in arrays):
                raise TypeError(f"fast launch: argument {position} must be a CuPy array (or a tuple "
                                f"of them), got {type(a).__name__}")
            if kind not in (_ARRAY, _TUPLE) and type(a) not in kind:
                raise TypeError(f"fast launch: argument {position} is a {type(a).__name__}, which "
                                f"does not pack as Numba's {numba_type} (pass one of "
                                f"{[t.__name__ for t in kind]})")
        key, _ = marshal(kernel, args, self.array_type)
        self._kernels[key] = handle
        return handle

    def launch(self, kernel, grid, block, args):
        core_launch, launch_config = self._core
        key, flat = marshal(kernel, args, self.array_type)
        handle = self._kernels.get(key)
        if handle is None:
            handle = self.compile(kernel, args)
        config = self._configs.get((grid, block))
        if config is None:
            config = self._configs[(grid, block)] = launch_config(grid=grid, block=block, shmem_size=0)
        core_launch(_core_stream(), config, handle, *flat)

    def check(self):
        """Run a probe kernel both ways once; keep the fast route only if it agrees."""
        try:
            version = numba_cuda_version()
            if version is None or version < MIN_NUMBA_CUDA:
                raise RuntimeError(f"numba-cuda {version} is older than "
                                   f"{'.'.join(map(str, MIN_NUMBA_CUDA))}, whose kernels launch "
                                   "through cuda.core")
            from cuda.core import LaunchConfig, launch as core_launch  # numba-cuda's own launcher

            self._core = (core_launch, LaunchConfig)
            self.array_type = cupy.ndarray
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


_ARRAY, _TUPLE = "array", "tuple"


def plan_for(numba_type):
    """How an argument of ``numba_type`` is passed: "array", "tuple" (of arrays), or the Python
    and NumPy scalar types that ``cuda.core.launch`` packs at that type's width, passed as they
    are (Numba's ``_Kernel._prepare_args`` makes a ctypes value of the same width)."""
    from numba.cuda import types

    if isinstance(numba_type, types.Array):
        return _ARRAY
    if isinstance(numba_type, types.BaseTuple) and all(isinstance(t, types.Array) for t in numba_type):
        return _TUPLE
    if numba_type == types.boolean:
        return (bool, np.bool_)  # a Python bool goes as Numba passes it (an intptr_t)
    if numba_type == types.int64:
        return (int, np.int64)  # cuda.core packs a Python int as intptr_t: 64 bits here
    if numba_type == types.float64:
        return (float, np.float64)  # a Python float is packed as a C double
    if isinstance(numba_type, (types.Integer, types.Float)):
        return (np.dtype(str(numba_type)).type,)
    raise TypeError(f"fast launch: no marshalling for an argument of type {numba_type}")


def marshal(kernel, args, array_type):
    """``(signature key, flat argument list)`` of one launch, in one pass over ``args``.

    The list is what ``cuda.core.launch`` takes: per array (meminfo 0, parent 0, size, itemsize,
    device pointer, *shape, *strides in bytes), as Numba's array data model lays it out, and
    each scalar as it is.  The key (``kernel`` first) holds each array's dtype, rank and
    layout and each scalar's type: what Numba's type of the arguments depends on.
    """
    key = [kernel]
    flat = []
    for a in args:
        kind = type(a)
        if kind is array_type:
            dtype, shape, c = a.dtype, a.shape, a._c_contiguous
            key += (dtype, len(shape), c, c or a._f_contiguous)
            flat += (0, 0, a.size, dtype.itemsize, a.data.ptr, *shape, *a.strides)
        elif kind is tuple:
            key.append(len(a))
            for x in a:
                dtype, shape, c = x.dtype, x.shape, x._c_contiguous
                key += (dtype, len(shape), c, c or x._f_contiguous)
                flat += (0, 0, x.size, dtype.itemsize, x.data.ptr, *shape, *x.strides)
        else:
            key.append(kind)
            flat.append(a)
    return tuple(key), flat


@cached_jit
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
