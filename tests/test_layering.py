"""The kernels sit at the bottom (issue 20): numpy_kernels, cuda_kernels and kernel_geometry
import nothing from gpunet, read from their source and from a fresh interpreter alike."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOTTOM = ("numpy_kernels", "cuda_kernels", "kernel_geometry")


def _imported_modules(path):
    """Every module an ``import`` or ``from ... import`` in ``path`` names (any depth)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_kernel_source_imports_gpunet():
    upward = [f"{path.relative_to(ROOT)} imports {name}"
              for package in BOTTOM for path in sorted((ROOT / package).rglob("*.py"))
              for name in _imported_modules(path) if name.split(".")[0] == "gpunet"]
    assert upward == []


@pytest.mark.parametrize("package", ["numpy_kernels", "numpy_kernels.conv", "numpy_kernels.pooling",
                                     "cuda_kernels.conv", "cuda_kernels.pooling", "kernel_geometry"])
def test_loading_a_kernel_family_loads_no_gpunet(package):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # cuda_kernels needs a GPU or the simulator
    code = f"import sys, {package}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'gpunet'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
