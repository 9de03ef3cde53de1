"""scripts/train.sh picks gpunet[cuda12] or gpunet[cuda13] from nvidia-smi's CUDA version, and
installs nothing where Python already has a working CuPy and numba-cuda.

A fake ``nvidia-smi`` and a fake ``python3`` on PATH stand in for a GPU machine;
``GPUNET_TRAIN_PLAN=1`` makes the script print its plan instead of installing and training.
The script is copied into an empty folder, so no real ``.venv`` is looked at.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NVIDIA_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"; exit 0; fi
echo "| NVIDIA-SMI 580.159.04    Driver Version: 580.159.04    CUDA Version: {cuda}     |"
"""


def _plan(tmp_path, cuda=None, stack_works=False):
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    (repo / "scripts").mkdir(parents=True)
    bin_dir.mkdir()
    shutil.copy(ROOT / "scripts" / "train.sh", repo / "scripts" / "train.sh")
    if cuda is not None:
        (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI.format(cuda=cuda))
    (bin_dir / "python3").write_text(f"#!/bin/sh\nexit {0 if stack_works else 1}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    # PATH keeps the basic tools (sed, head) but not a real nvidia-smi or python3
    keep = tmp_path / "tools"
    keep.mkdir()
    for tool in ("sed", "head"):
        os.symlink(shutil.which(tool), keep / tool)
    env = {"PATH": f"{bin_dir}:{keep}", "GPUNET_TRAIN_PLAN": "1", "HOME": str(tmp_path)}
    run = subprocess.run([shutil.which("bash"), str(repo / "scripts" / "train.sh")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.strip()


@pytest.mark.parametrize("cuda,extra", [("13.0", "cuda13"), ("13.1", "cuda13"),
                                        ("12.4", "cuda12"), ("12.9", "cuda12")])
def test_the_cuda_extra_follows_nvidia_smi(tmp_path, cuda, extra):
    assert _plan(tmp_path, cuda) == f"plan: pip install -e .[train,{extra}] into .venv"


def test_no_gpu_installs_only_the_train_extra(tmp_path):
    assert _plan(tmp_path, cuda=None) == "plan: pip install -e .[train] into .venv"


def test_a_working_cupy_and_numba_cuda_means_nothing_is_installed(tmp_path):
    assert _plan(tmp_path, "13.0", stack_works=True) == "plan: run with python3, install nothing"
