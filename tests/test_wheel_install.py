"""A non-editable install carries both packages and the embedded data, and its kernels run.

pip builds the wheel from a copy of this checkout's sources (no stale ``build/`` folder can
leak into it) and installs it (no dependencies: they are already in
this environment) into a temporary folder; a fresh interpreter, started elsewhere so that the
checkout is not on its path, imports gpunet, cuda_kernels and numpy_kernels from there and runs a conv2d
gradient check on the ``cuda`` backend (the simulator without a GPU) and the embedded dataset.
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    target = Path(sys.argv[1]).resolve()
    import numpy as np
    import cuda_kernels
    import numpy_kernels
    import kernel_geometry
    import gpunet as gn
    from gpunet import functional as F
    for mod in (gn, cuda_kernels, numpy_kernels, kernel_geometry):
        assert target in Path(mod.__file__).resolve().parents, (mod.__name__, mod.__file__)
    with gn.use_backend("cuda"):
        rng = np.random.default_rng(0)
        x = gn.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
        w = gn.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
        gn.gradcheck(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1), (x, w))
    (x_train, _), (x_test, _) = gn.datasets.digits()  # package data travelled with the wheel
    print("WHEEL_OK", len(x_train), len(x_test), len(gn.datasets.shakespeare()))
""")


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    src, target = tmp_path / "src", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("gpunet", "cuda_kernels", "numpy_kernels", "kernel_geometry"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-compile", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    assert (target / "cuda_kernels" / "conv.py").is_file()
    assert not list(target.glob("__editable__*")), "pip made an editable install"

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    run = subprocess.run([sys.executable, "-c", CHECK, str(target)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WHEEL_OK 4000 1000 199994" in run.stdout, run.stdout
