"""Every kernel's disk cache works: numba-cuda pickles a kernel's closure variables into the
key of its cache (``caching.py``'s ``_index_key``), and a kernel built inside a factory closes
over a float type and device functions.  The key is computed here for every kernel of both
float types, as the first compile on a GPU computes it; a closure that does not pickle turns
the cache off for that kernel with one logged line instead of stopping its compile.

Runs without the simulator (which keeps no cache) in a fresh interpreter: no GPU is needed.
"""
import textwrap

from conftest import run_outside_simulator

EVERY_KERNEL = textwrap.dedent("""
    import importlib, pkgutil
    import numpy as np
    from numba.cuda.dispatcher import CUDADispatcher
    import cuda_kernels

    class Codegen:  # what _index_key asks of the target's code generator
        def magic_tuple(self):
            return ("nvptx64-nvidia-cuda", "sm_90", "")

    kernels = {}
    for info in pkgutil.iter_modules(cuda_kernels.__path__):
        module = importlib.import_module("cuda_kernels." + info.name)
        for name, value in vars(module).items():
            if isinstance(value, CUDADispatcher) and not value.targetoptions.get("device"):
                kernels[f"{info.name}.{name}"] = value
            elif callable(value) and (name == "kernels" or name.endswith("_kernel")) \\
                    and not isinstance(value, CUDADispatcher):
                for dtype in (np.float32, np.float64):
                    made = value(dtype)
                    for k in (made if isinstance(made, tuple) else (made,)):
                        kernels[f"{info.name}.{name}({dtype.__name__}).{k.py_func.__name__}"] = k
    for where, k in sorted(kernels.items()):
        assert type(k._cache).__name__ == "CUDACache", (where, type(k._cache))
        k._cache._index_key(("sig",), Codegen())  # pickles the closure, as a compile does
    print("KEYS", len(kernels))
""")


def test_every_kernel_has_a_disk_cache_whose_key_can_be_made():
    proc = run_outside_simulator(EVERY_KERNEL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = int(proc.stdout.split("KEYS")[1])
    assert count >= 40, proc.stdout  # module-level kernels and both float types of the factories


def test_a_closure_that_does_not_pickle_turns_the_cache_off_with_one_line():
    proc = run_outside_simulator(textwrap.dedent("""
        import logging, threading
        logging.basicConfig(format="LOG %(message)s")
        from cuda_kernels import _launch

        def make():
            lock = threading.Lock()   # a lock cannot be pickled

            @_launch.cached_jit
            def locked_kernel(x):
                if lock is not None:
                    x[0] = 1
            return locked_kernel

        k = make()
        print("CACHE", type(k._cache).__name__)
    """))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CACHE NullCache" in proc.stdout, proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.startswith("LOG ")]
    assert len(lines) == 1 and "locked_kernel is compiled without a disk cache" in lines[0], proc.stderr
