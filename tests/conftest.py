"""Test set-up: every op test runs on each backend; without a GPU, `cuda` runs in Numba's simulator."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _real_gpu() -> bool:
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:  # cupy missing, or no driver
        return False


# Must happen before numba is imported anywhere.
if not _real_gpu():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
os.environ.setdefault("GPUNET_BACKEND", "numpy")

import gpunet as gn  # noqa: E402

_cuda_reason = gn.backends.cuda_unavailable_reason()
if _cuda_reason is not None:
    # With the simulator on (or a GPU present) the cuda backend must run: never drop its tests silently.
    raise RuntimeError(f"the cuda backend should run in these tests but cannot: {_cuda_reason}")
BACKENDS = ["numpy", "cuda"]
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if SIMULATED:
    # The simulator runs a Python thread per CUDA thread and polls them; at the default 5 ms
    # GIL switch interval every cuda.syncthreads() costs milliseconds. 0.5 ms is ~6x faster.
    sys.setswitchinterval(5e-4)


def pytest_report_header(config):
    """The BLAS kernel and thread counts: training-claim tests must pass on any of them."""
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('architecture')} ({i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return (f"BLAS: {', '.join(blas) or 'none found'}; OPENBLAS_CORETYPE="
            f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; GPUNET_NUM_THREADS="
            f"{os.environ.get('GPUNET_NUM_THREADS', '(unset)')}")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of each available backend; the test body is written once."""
    with gn.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def run_outside_simulator(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python from the repository root with Numba's real CUDA target
    (the simulator switched off): for checks that need numba-cuda's own compiler or launcher."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=root, timeout=300)


# GPUNET_TEST_TIMEOUT=S (the GPU check sets 60) fails any one test that runs longer than S
# seconds, with its traceback, so a hung kernel costs one test rather than the whole lease.
_TEST_TIMEOUT = float(os.environ.get("GPUNET_TEST_TIMEOUT", "0") or 0)


class TestTimeout(Exception):
    """A test ran past GPUNET_TEST_TIMEOUT."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    import signal
    import threading

    if _TEST_TIMEOUT <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TestTimeout(f"{item.nodeid} ran past GPUNET_TEST_TIMEOUT={_TEST_TIMEOUT:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, _TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
