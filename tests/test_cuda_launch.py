"""The fast launch route of cuda_kernels._launch: its argument marshalling equals Numba's own
(``_Kernel._prepare_args``) for every kind of argument our kernels take.

Runs in a fresh interpreter without the simulator (the route exists only for real GPUs), with
a stand-in ``cupy`` module when CuPy is missing: marshalling needs no GPU.  On a GPU the route
is also checked at start-up against Numba's launch path (``_FastRoute.check``), and the whole
test suite runs through it (``scripts/gpu_check.sh``).
"""
import textwrap

from conftest import run_outside_simulator

SCRIPT = textwrap.dedent("""
    import sys, types
    from types import SimpleNamespace as NS
    try:
        import cupy  # noqa: F401
    except Exception:
        sys.modules["cupy"] = types.ModuleType("cupy")
    import numpy as np
    from numba.cuda import types as nt
    from numba.cuda.dispatcher import _Kernel
    from cuda_kernels import _launch
    assert not _launch.SIMULATOR

    def like_cupy(a, ptr):   # what marshal reads off a CuPy array
        return NS(size=a.size, itemsize=a.itemsize, data=NS(ptr=ptr), shape=a.shape, strides=a.strides)

    def like_numba(a, ptr):  # a device array as Numba's _prepare_args reads it
        view = NS(size=a.size, dtype=a.dtype, ptr=ptr, shape=a.shape,
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
        return [getattr(x, "value", x) for x in out]

    a = np.zeros((3, 5), np.float32)[:, 1:4]      # strided, not contiguous
    b = np.zeros((2, 3, 4), np.float64)
    c = [np.zeros(n, np.float32) for n in (7, 0, 2)]
    types_ = (nt.Array(nt.float32, 2, "A"), nt.Array(nt.float64, 3, "C"),
              nt.UniTuple(nt.Array(nt.float32, 1, "C"), 3), nt.float32, nt.float64, nt.int64,
              nt.int32, nt.boolean)
    scalars = (np.float32(0.5), 2.25, 7, np.int32(-3), True)
    ours = _launch.marshal([_launch.plan_for(t) for t in types_],
                           (like_cupy(a, 1000), like_cupy(b, 2000),
                            tuple(like_cupy(x, 3000 + i) for i, x in enumerate(c))) + scalars)
    theirs = numba_args(types_, (like_numba(a, 1000), like_numba(b, 2000),
                                 tuple(like_numba(x, 3000 + i) for i, x in enumerate(c))) + scalars)
    ours = [getattr(x, "value", x) for x in ours]
    assert ours == theirs, (ours, theirs)
    assert len(ours) == 9 + 11 + 3 * 7 + 5  # 5 fields + shape + strides per array
    try:
        _launch.plan_for(nt.complex64)
    except TypeError as exc:
        assert "no marshalling" in str(exc)
    else:
        raise AssertionError("complex64 should be refused")
    print("MATCH", len(ours))
""")


def test_fast_route_marshals_arguments_as_numba_does():
    proc = run_outside_simulator(SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MATCH 46" in proc.stdout, proc.stdout
