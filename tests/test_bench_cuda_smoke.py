"""benchmarks/bench_cuda_kernels.py --smoke: the GPU benchmark's logic, run in the simulator."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
ROWS = ["relu fwd", "relu bwd", "max_pool2d fwd", "max_pool2d bwd",
        "softmax-CE fwd 5x7", "softmax-CE bwd 5x7", "softmax-CE fwd+bwd 5x7",
        "softmax-CE fwd 3x300", "softmax-CE bwd 3x300", "softmax-CE fwd+bwd 3x300",
        "conv2d im2col alone", "conv2d fwd ", "conv2d bwd data+weight+bias", "conv2d fwd+bwd"]


@pytest.mark.parametrize("reference", [[], ["--no-torch"]], ids=["torch-if-installed", "numpy-backend"])
def test_smoke_run_checks_every_row(reference):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    run = subprocess.run([sys.executable, "benchmarks/bench_cuda_kernels.py", "--smoke", *reference],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert out.startswith("# SMOKE TEST: Numba's CUDA simulator on the CPU"), out
    assert re.search(r"^host copy .* \d+\.\d+ ms +\d+\.\d+ GB/s$", out, re.M), out
    for name in ROWS:
        assert re.search(rf"^{re.escape(name)}.* \d+\.\d+ ms +\d+\.\d+ \S+ .* match\b", out,
                         re.M), f"no matching row {name!r} in:\n{out}"
    assert "MISMATCH" not in out, out


def test_event_timer_takes_the_median_between_recorded_events():
    from benchmarks.kernel_bench_tools import event_timer

    clock = iter(range(100))

    class Event:
        def record(self):
            self.t = next(clock)

        def synchronize(self):
            pass

    calls = []
    timer = event_timer(Event, lambda s, e: 10.0 * (e.t - s.t), reps=3, warmup=2)
    assert timer(lambda: calls.append(1)) == 10.0
    assert len(calls) == 5


def test_the_torch_reference_is_exact_where_float32_algorithms_differ():
    """Conv and softmax-CE expectations come from float64 (no Winograd/FFT/TF32 stand-in);
    ReLU and pooling only select values, so their float32 results are exact already."""
    import numpy as np
    import torch

    from benchmarks.kernel_bench_tools import TorchReference

    rng = np.random.default_rng(0)
    ref = TorchReference(torch, None, "CPU")
    x, w = rng.standard_normal((2, 3, 6, 5), np.float32), rng.standard_normal((4, 3, 3, 3), np.float32)
    b, gy = rng.standard_normal(4, np.float32), rng.standard_normal((2, 4, 4, 3), np.float32)
    conv = ref.conv2d(x, w, b, gy, (1, 1), (0, 0))
    y, grads = conv["fwd"][0], conv["bwd"][0]
    assert y.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
    want = torch.nn.functional.conv2d(*(torch.from_numpy(a).double() for a in (x, w, b)))
    np.testing.assert_array_equal(y, want.numpy())
    ce = ref.softmax_ce(rng.standard_normal((5, 7), np.float32), rng.integers(0, 7, 5),
                        np.ones(5, np.float32))
    assert ce["fwd"][0].dtype == np.float64 and ce["bwd"][0].dtype == np.float64
