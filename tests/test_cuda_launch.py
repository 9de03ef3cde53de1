"""The fast launch route of cuda_kernels._launch: its argument marshalling delivers what Numba's
own (``_Kernel._prepare_args``) delivers for every kind of argument our kernels take, it costs
at most 4 µs of Python per launch, and the plain route uses public Numba API only.

Each check runs in a fresh interpreter without the simulator (the routes exist only for real
GPUs) on real ``cupy.ndarray`` objects over memory nothing touches: marshalling needs no GPU.
On a GPU the route is also checked at start-up against Numba's launch path
(``_FastRoute.check``), and the cuda test files run through it (``scripts/gpu_check.sh``).
"""
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_outside_simulator

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("cupy")

SCRIPT = textwrap.dedent("""
    import ctypes
    import numba
    import numpy as np
    from types import SimpleNamespace as NS
    from numba.cuda import types as nt
    from numba.cuda.dispatcher import _Kernel
    from benchmarks.launch_host_cost import fake_device_arrays
    from cuda_kernels import _launch
    import cupy
    assert not _launch.SIMULATOR

    def like_numba(a):  # a CuPy array as Numba's _prepare_args reads its device array
        view = NS(size=a.size, dtype=a.dtype, ptr=a.data.ptr, shape=a.shape,
                  _layout=NS(strides_in_bytes=a.strides, is_contiguous_c=a.flags.c_contiguous,
                             is_contiguous_f=a.flags.f_contiguous))
        return NS(__cuda_memory__=True, _strided_memory_view_shim=view)

    class Bare:  # just what _Kernel._prepare_args uses of its kernel
        extensions = []
        _prepare_args = _Kernel._prepare_args

    def numba_args(types_, values):
        out = []
        for t, v in zip(types_, values):
            Bare()._prepare_args(t, v, 0, [], out)
        return out

    def delivered(x):
        # (bytes, value) as cuda.core.launch packs an argument: ctypes and NumPy scalars at their
        # own width, a Python int (bool included) as intptr_t, a Python float as a double
        if isinstance(x, ctypes._SimpleCData):
            return ctypes.sizeof(x), x.value
        if isinstance(x, np.generic):
            return x.itemsize, x.item()
        if isinstance(x, (bool, int)):
            return 8, int(x)
        assert isinstance(x, float), type(x)
        return 8, x

    big, b, *c = fake_device_arrays([(3, 5), (2, 3, 4), (7,), (0,), (2,)], np.float32)
    a = big[:, 1:4]                                   # strided, not contiguous
    types_ = (nt.Array(nt.float32, 2, "A"), nt.Array(nt.float32, 3, "C"),
              nt.UniTuple(nt.Array(nt.float32, 1, "C"), 3), nt.float32, nt.float64, nt.int64,
              nt.int32, nt.uint8, nt.boolean, nt.float32, nt.int64)
    scalars = (np.float32(0.5), 2.25, 7, np.int32(-3), np.uint8(200), True, np.float32(0.25),
               np.int64(9))
    # the route passes a scalar as it is, so its type must be the one Numba gives it
    assert [numba.typeof(v) for v in scalars] == list(types_[3:]), [numba.typeof(v) for v in scalars]
    key, ours = _launch.marshal("kernel", (a, b, tuple(c)) + scalars, cupy.ndarray)
    theirs = numba_args(types_, (like_numba(a), like_numba(b), tuple(like_numba(x) for x in c)) + scalars)
    assert [delivered(x) for x in ours] == [delivered(x) for x in theirs], (ours, theirs)
    assert not any(isinstance(x, ctypes._SimpleCData) for x in ours)   # no ctypes object per launch
    assert len(ours) == 9 + 11 + 3 * 7 + 8  # 5 fields + shape + strides per array
    try:
        _launch.plan_for(nt.complex64)
    except TypeError as exc:
        assert "no marshalling" in str(exc)
    else:
        raise AssertionError("complex64 should be refused")

    def signature(*args):
        return _launch.marshal("kernel", args, cupy.ndarray)[0]

    assert signature(a, 1) != signature(big, 1)              # the layout is in the key
    assert signature(b, 1) == signature(b[...], 2)           # the values are not
    assert signature(b, 1) != signature(b, 1.0) != signature(b, np.float32(1))
    route = _launch._FastRoute()
    route.array_type = cupy.ndarray
    for args, argtypes, says in (
            ((np.zeros(3, np.float32),), (nt.Array(nt.float32, 1, "C"),), "must be a CuPy array"),
            ((b, 2.5), (nt.Array(nt.float32, 3, "C"), nt.float32), "does not pack as Numba's float32")):
        try:
            route.store(object(), args, None, argtypes)
        except TypeError as exc:
            assert says in str(exc), exc
        else:
            raise AssertionError(f"the fast route should refuse {args!r} as {argtypes}")
    print("MATCH", len(ours))
""")


def test_fast_route_marshals_arguments_as_numba_does():
    proc = run_outside_simulator(SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MATCH 49" in proc.stdout, proc.stdout


def test_the_launch_cost_microbenchmark_runs_the_real_fast_route():
    """benchmarks/launch_host_cost.py times the whole per-launch Python path (marshalling,
    signature lookup, configuration, stream) with the driver call a no-op.  Its figure goes in
    the notes, never into a test bound; here it must run the route and report each case."""
    proc = run_outside_simulator(
        "import sys; from benchmarks import launch_host_cost as b; "
        "sys.exit(b.main(['--launches', '200', '--reps', '2']))")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for case in ("1-argument launch", "6-argument launch (4 arrays, float32, int64)",
                 "6-argument launch, a strided view"):
        assert re.search(re.escape(case) + r"[^:]*: [\d.]+ µs \[[\d.]+-[\d.]+\]", proc.stdout), proc.stdout


def test_numba_cuda_warning_class_is_the_one_silenced():
    """numba-cuda >= 0.21 warns with its own NumbaPerformanceWarning, not numba's."""
    proc = run_outside_simulator(textwrap.dedent("""
        from numba.cuda import dispatcher
        from cuda_kernels import _launch
        assert dispatcher.errors.NumbaPerformanceWarning in _launch.performance_warnings()
        print("SILENCED")
    """))
    assert proc.returncode == 0 and "SILENCED" in proc.stdout, proc.stdout + proc.stderr


def test_only_the_fast_route_reads_numba_internals_and_numba_cuda_is_pinned_for_it():
    source = (ROOT / "cuda_kernels" / "_launch.py").read_text()
    assert "_to_core_stream" not in source  # cuda.core's public Stream.from_handle instead
    sys.path.insert(0, str(ROOT))
    from cuda_kernels import _launch

    for public in (_launch.plain_launch, _launch._numba_stream, _launch._wrap, _launch._core_stream):
        body = inspect.getsource(public)
        assert not re.search(r"\w\._[a-z]", body), f"{public.__name__} reads a private attribute"
    # attributes of other packages' objects whose names are private: the compiled kernel's
    # cuda.core handle (numba-cuda), and CuPy's contiguity flags (a.flags builds two objects)
    read = set(re.findall(r"\b(?!self\b)[a-z]\w*\.(_[a-z]\w*)", source))
    ours = set(re.findall(r"^(_[a-z]\w*)\b", source, re.M)) | {"_prepare_args"}
    assert read - ours <= {"_codelibrary", "_c_contiguous", "_f_contiguous"}, read - ours
    pins = re.findall(r'"numba-cuda\[cu1[23]\]>=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 3, pins  # cuda12, cuda13 and dev
    assert all((int(a), int(b)) >= _launch.MIN_NUMBA_CUDA for a, b in pins), pins
