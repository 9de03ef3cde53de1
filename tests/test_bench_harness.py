"""The fair benchmark harness: one process per measurement, alternating order, ratio per round."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package

from benchmarks import harness  # noqa: E402


def test_worker_times_one_case_in_its_own_process():
    run = subprocess.run([sys.executable, "benchmarks/worker.py", "--framework", "gpunet",
                          "--case", "lenet-step-b16", "--threads", "1", "--reps", "2",
                          "--warmup", "1", "--min-rep-s", "0.001"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rec = json.loads(run.stdout.strip().splitlines()[-1])
    assert rec["framework"] == "gpunet" and rec["case"] == "lenet-step-b16"
    assert rec["threads"] == 1 and rec["items"] == 16 and len(rec["seconds"]) == 2
    assert all(s > 0 for s in rec["seconds"])
    assert Path(rec["source"]) == ROOT / "gpunet"


def test_race_alternates_processes_and_takes_the_ratio_per_round(monkeypatch):
    calls = []
    speed = {"gpunet": [0.02, 0.04, 0.02], "torch": [0.01, 0.01, 0.03]}  # seconds per call

    def fake_worker(framework, case, threads, backend, reps, gpunet_src):
        calls.append(framework)
        t = speed[framework][sum(c == framework for c in calls) - 1]
        return {"seconds": [t, t, t], "items": 64, "flops": None, "source": framework}

    monkeypatch.setattr(harness, "run_worker", fake_worker)
    rec = harness.race("lenet-step-b64", rounds=3, threads=2)
    assert calls == ["gpunet", "torch", "torch", "gpunet", "gpunet", "torch"]
    assert rec["gpunet"]["seconds"]["median"] == 0.02
    # per round: torch time / gpunet time = 0.5, 0.25, 1.5
    assert rec["ratio"] == {"median": 0.5, "min": 0.25, "max": 1.5}
    assert rec["gpunet"]["items_per_s"]["median"] == 64 / 0.02
    assert "ratio  0.50 [0.25–1.50]" in harness.format_record(rec)


def test_case_names_are_checked():
    from benchmarks.cases import build

    with pytest.raises(ValueError, match="unknown benchmark case 'lenet-jump-b3'"):
        build("gpunet", "lenet-jump-b3")


def test_lstm_case_runs_in_both_frameworks():
    pytest.importorskip("torch")
    from benchmarks.cases import build

    for framework in ("gpunet", "torch"):
        case = build(framework, "lstm-fwdbwd")
        case.fn()
        case.sync()
        assert case.items == 64


def test_every_result_records_the_blas_kernel_and_the_load(monkeypatch):
    """A speed figure means little without the OpenBLAS kernel that made it (Haswell's AVX2
    kernel is half as fast as SkylakeX's on an AVX-512 CPU) and the load on the machine."""
    from benchmarks import harness

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # noted when forced, never set by a benchmark
    info = harness.machine_info()
    assert info["blas_kernel"].endswith("(OPENBLAS_CORETYPE=Haswell)") and info["loadavg"] is not None
    assert "BLAS " + info["blas_kernel"] in harness.header(2, 3, "numpy")


@pytest.mark.parametrize("name", ["resnet8", "vgg", "lenetbn", "lstmlm", "grulm"])
def test_user_model_cases_train_the_same_model_in_both_frameworks(name):
    """One source, two frameworks, gpunet's initial weights: the first loss and every
    parameter's gradient agree to float32 rounding (so the race times the same work)."""
    torch = pytest.importorskip("torch")
    import gpunet as gn
    from benchmarks import user_models

    state = user_models.initial_state(name)
    x, y = user_models.data(name, 4)
    ours, theirs = user_models.build_model(gn, name), user_models.build_model(torch, name)
    ours.load_state_dict({k: gn.tensor(v) for k, v in state.items()})
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    loss_g = gn.nn.functional.cross_entropy(ours(gn.tensor(x)), gn.tensor(y))
    loss_t = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    loss_g.backward()
    loss_t.backward()
    np.testing.assert_allclose(loss_g.item(), loss_t.item(), rtol=1e-5)
    grads_t = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    # float32 rounding relative to the largest gradient (a conv bias before BatchNorm has a
    # true gradient of 0: both sides hold rounding noise there)
    scale = max(np.abs(g).max() for g in grads_t.values())
    for k, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads_t[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)


@pytest.mark.parametrize("case", ["resnet8-step-b2", "conv3x3-c16-s2"])
def test_new_cases_build_and_run(case):
    pytest.importorskip("torch")
    from benchmarks.cases import build

    for framework in ("gpunet", "torch"):
        c = build(framework, case)
        c.fn()
        c.sync()
