"""Python µs per kernel launch on the fast route, with the driver call replaced by a no-op.

No GPU is needed, so it runs on any machine with CuPy and numba-cuda installed: the arrays are
real ``cupy.ndarray`` objects over memory that is never touched (``cupy.cuda.UnownedMemory``),
the compiled kernel of each signature is a placeholder put in the route's cache (compiling
needs a GPU; a real launch pays it once per signature), and ``cuda.core.launch`` is a function
that does nothing.  What is left is exactly what ``cuda_kernels._launch.launch`` does in Python
for every launch: the signature lookup, the argument marshalling, the launch configuration
and the stream lookup.  The driver's own cost (``cuda.core``'s argument packing and
``cuLaunchKernel``, a few µs) comes on top; ``benchmarks/launch_overhead.py`` times the whole
launch on a GPU.

Each case is timed ``--reps`` times over ``--launches`` launches; prints the median and range.

Example:
    $ python benchmarks/launch_host_cost.py --launches 20000 --reps 5
    ...
    6-argument launch (4 arrays, float32, int64): 10.31 µs [10.27-10.58]

    (measured on the 2-core development VM, CPython 3.11 without PGO, 2026-12-03)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fake_device_arrays(shapes, dtype):
    """Real ``cupy.ndarray`` objects over an address range nothing ever reads or writes."""
    import cupy
    import numpy as np

    out, ptr = [], 1 << 20
    for shape in shapes:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        mem = cupy.cuda.UnownedMemory(ptr, max(nbytes, 1), None, device_id=0)
        out.append(cupy.ndarray(shape, dtype, memptr=cupy.cuda.MemoryPointer(mem, 0)))
        ptr += max(nbytes, 256)
    return out


def install_no_op_driver(launch_module):
    """Replace the driver end of the fast route: cuda.core's launch does nothing, and CuPy's
    current-stream and current-device queries (C calls that need a GPU) answer at once."""
    import cupy

    route = launch_module._fast
    route._core = (lambda stream, config, handle, *args: None,
                   lambda grid, block, shmem_size: (grid, block, shmem_size))
    route.array_type = cupy.ndarray
    route.enabled = True
    null_stream = types.SimpleNamespace(ptr=0)
    cupy.cuda.get_current_stream = lambda: null_stream
    cupy.cuda.runtime.getDevice = lambda: 0
    launch_module._core_streams[(0, 0)] = object()


def prime(launch_module, kernel, args):
    """Put a placeholder compiled kernel for this signature in the route's cache, with the
    marshalling plan of the types Numba gives ``args`` (as the first real launch would; the
    types come from NumPy views of the same dtype, shape and strides)."""
    import cupy
    import numpy as np

    def host_view(a):
        if isinstance(a, cupy.ndarray):
            return np.lib.stride_tricks.as_strided(np.empty(1, a.dtype), a.shape, a.strides)
        return tuple(host_view(x) for x in a) if isinstance(a, tuple) else a

    argtypes = tuple(kernel.typeof_pyval(host_view(a)) for a in args)
    launch_module._fast.store(kernel, args, object(), argtypes)


def time_case(launch_module, kernel, args, launches, reps):
    grid, block = launch_module.blocks_for(1024), launch_module.TPB
    launch = launch_module.launch
    for _ in range(100):
        launch(kernel, grid, block, *args)
    per = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(launches):
            launch(kernel, grid, block, *args)
        per.append((time.perf_counter() - t0) / launches * 1e6)
    return per


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--launches", type=int, default=20000)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
    import numpy as np
    from numba import cuda

    from cuda_kernels import _launch

    if _launch.SIMULATOR:
        print("the simulator is on: this measures the fast route, which it never takes")
        return 2

    @cuda.jit
    def six_args(out, a, b, c, scale, n):
        pass

    @cuda.jit
    def one_arg(x):
        pass

    out, a, b, c = fake_device_arrays([(64, 6, 28, 28)] * 4, np.float32)
    cases = [("1-argument launch (1 array)", one_arg, (out,)),
             ("6-argument launch (4 arrays, float32, int64)", six_args,
              (out, a, b, c, np.float32(0.5), out.size)),
             ("6-argument launch, a strided view", six_args,
              (out[:, :3], a, b, c, np.float32(0.5), 7))]
    install_no_op_driver(_launch)
    print(f"# Python µs per launch on the fast route, driver call a no-op; {args.launches} launches "
          f"x {args.reps} runs; median [min-max]; {sys.version.split()[0]}, CuPy "
          f"{sys.modules['cupy'].__version__}; load average {[round(v, 2) for v in os.getloadavg()]}")
    for name, kernel, kargs in cases:
        prime(_launch, kernel, kargs)
        per = time_case(_launch, kernel, kargs, args.launches, args.reps)
        print(f"{name}: {statistics.median(per):.2f} µs [{min(per):.2f}-{max(per):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
