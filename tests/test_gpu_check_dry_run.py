"""``bash scripts/gpu_check.sh --dry-run``: every part of the GPU check runs in the simulator.

The GPU check itself needs an NVIDIA GPU; its dry run runs the same Python entry points in
Numba's CUDA simulator on tiny sizes (about a minute on a busy 2-core machine), so CI proves
that each part runs and writes its file.  The figures it writes mean nothing for speed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"preflight": "1-preflight.txt", "kernels": "2-kernels.txt", "lenet-step": "3-lenet-step.txt",
         "launch": "4-launch.txt", "profile": "5-profile.txt", "tests": "6-tests.txt"}


def _gpu_check(*args, timeout=300, path_prefix=None):
    env = dict(os.environ, PYTHON=sys.executable)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", "scripts/gpu_check.sh", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _unpack(out):
    """The part files of a run: the check leaves summary.txt and gpu-check.tar.gz alone in its
    results folder (a lent GPU machine returns at most 8 files), the parts inside the tarball."""
    import tarfile

    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tar.gz", "summary.txt"]
    parts = out / "parts"
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        tar.extractall(parts, filter="data")
    return parts


def test_dry_run_runs_every_part_and_writes_its_file(tmp_path):
    out_dir = tmp_path / "out"
    run = _gpu_check("--dry-run", "--out", str(out_dir), timeout=540)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    summary = (out_dir / "summary.txt").read_text()
    tmp_path = _unpack(out_dir)
    assert "DRY RUN" in summary and "all parts passed" in summary, summary
    for part, file in PARTS.items():
        assert re.search(rf"^{re.escape(part)} +ok +\d+s +{re.escape(file)}$", summary, re.M), \
            f"no ok line for {part!r} in:\n{summary}"
        assert (tmp_path / file).stat().st_size > 0, file
    text = {part: (tmp_path / file).read_text() for part, file in PARTS.items()}
    assert "preflight: ok (6 checks" in text["preflight"], text["preflight"]
    assert "lenet step: loss after one step: cuda" in text["preflight"], text["preflight"]
    assert re.search(r"\d+ passed", text["tests"]) and "failed" not in text["tests"], text["tests"]
    assert "every result matches" in text["kernels"], text["kernels"]
    assert re.search(r"^batch 2 +ratio gpunet/PyTorch images/s \S+ \[", text["lenet-step"], re.M)
    assert re.search(r"^batch 2 +gpunet-graph +on simulator: step ms \S+ \[.*host us/step",
                     text["lenet-step"], re.M), text["lenet-step"]  # the captured step (issue 24)
    assert re.search(r"^batch 2 +torch-graph +not run: PyTorch's CUDA graphs need a GPU",
                     text["lenet-step"], re.M), text["lenet-step"]
    for row in ("gpunet _launch.launch, 1 array", "gpunet _launch.launch, 4 arrays",
                "torch torch.add(a, b, out=c) on cpu"):
        assert re.search(rf"^{re.escape(row)} +\d+\.\d\d \[", text["launch"], re.M), text["launch"]
    assert "CuPy skipped" in text["launch"]
    assert re.search(r"^total +\d+ +\d+ +\d+", text["profile"], re.M), text["profile"]
    assert re.search(r"# \d+ kernel launches, \d+ GEMMs", text["profile"]), text["profile"]
    step = json.loads((tmp_path / "3-lenet-step.json").read_text())
    assert step["2"]["runs"]["gpunet"][0]["device"] == "simulator"
    launch = json.loads((tmp_path / "4-launch.json").read_text())
    assert set(launch) == {"gpunet", "torch"}


def test_a_spent_budget_stops_at_the_preflight_and_fails(tmp_path):
    run = _gpu_check("--dry-run", "--out", str(tmp_path), "--budget", "0", timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    summary = (tmp_path / "summary.txt").read_text()
    assert summary.count("NOT RUN (budget spent)") == 1, summary
    assert "FAILED: preflight (see 1-preflight.txt); nothing else was run" in summary


def test_the_planned_part_limits_add_up_to_the_budget():
    """One command on a lent GPU may run 600 s: the plan leaves a rerun's worth of the 15 minutes."""
    for args, total in ((("--plan",), 360), (("--plan", "--dry-run"), None)):
        run = _gpu_check(*args, timeout=60)
        assert run.returncode == 0, run.stderr
        found = re.search(r"\): (.*) = (\d+) s \(budget (\d+) s\)", run.stdout)
        limits = dict(kv.split(":") for kv in found.group(1).split())
        assert list(limits) == list(PARTS)
        assert sum(map(int, limits.values())) == int(found.group(2)) == int(found.group(3))
        assert total is None or int(found.group(3)) == total
    assert "budget 100 s" in _gpu_check("--plan", "--budget", "100", timeout=60).stdout


def test_a_test_past_its_time_limit_fails_alone(tmp_path):
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(30)\n\n"
                                          "def test_quick():\n    pass\n")
    env = dict(os.environ, GPUNET_TEST_TIMEOUT="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-p", "conftest", str(tmp_path / "test_hang.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "ran past GPUNET_TEST_TIMEOUT=1 s" in run.stdout


def _real_gpu() -> bool:
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


@pytest.mark.skipif(_real_gpu(), reason="a real GPU is usable here: the kernels part would pass")
def test_a_part_that_exits_0_without_its_results_fails(tmp_path):
    """bench_cuda_kernels.py says "no GPU" and exits 0 where CuPy sees no GPU: still a failure.

    A fake ``nvidia-smi`` makes the script take its real-GPU path; ``--only`` runs one part.
    """
    pytest.importorskip("cupy")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text('#!/bin/sh\ncase "$*" in *driver_version*) echo "Fake GPU, 1.0";;'
                                     ' *) echo "Fake GPU";; esac\n')
    (fake / "nvidia-smi").chmod(0o755)
    run = _gpu_check("--only", "kernels", "--out", str(tmp_path / "out"), timeout=120,
                     path_prefix=fake)
    assert run.returncode == 1, run.stdout + run.stderr
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "kernels     FAILED (output lacks /^# every result matches/)" in summary, summary
    assert "preflight   skipped (--only)" in summary and "# gpu Fake GPU, 1.0" in summary
    assert "no GPU" in (_unpack(tmp_path / "out") / "2-kernels.txt").read_text()


def test_bad_arguments_are_named():
    run = _gpu_check("--budget", "ten", timeout=60)
    assert run.returncode == 2 and "--budget must be whole seconds, got 'ten'" in run.stderr
    run = _gpu_check("--frobnicate", timeout=60)
    assert run.returncode == 2 and "unknown argument '--frobnicate'" in run.stderr
    run = _gpu_check("--only", "kernels,speed", timeout=60)
    assert run.returncode == 2 and "--only got 'speed'; the parts are: preflight kernels" in run.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="nvidia-smi is installed here")
def test_without_a_gpu_the_real_check_says_so_and_points_to_the_dry_run():
    run = _gpu_check(timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no NVIDIA GPU here" in run.stderr and "--dry-run" in run.stderr
