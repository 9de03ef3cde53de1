"""The kernels sit at the bottom (issue 20): numpy_kernels, cuda_kernels and kernel_geometry
import nothing from gpunet, read from their source and from a fresh interpreter alike."""
import ast
import re
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


# Above the seam nothing imports a GPU library or asks what kind of array or machine it has:
# the backend answers (errstate, to_host, timer, simulator_on).  gpunet/backends/ is the seam;
# gpunet/distributed/nccl.py is NCCL's own layer over CuPy.
BELOW_THE_SEAM = ("gpunet/backends/", "gpunet/distributed/nccl.py")
BACKEND_CHECKS = re.compile(r"^\s*(import|from)\s+(cupy|numba|cuda_kernels)\b|NUMBA_ENABLE_CUDASIM"
                            r"|hasattr\(\s*xp\b|xp\.errstate|__module__[^\n]*cupy|\.get\(\) if hasattr")


def test_no_backend_checks_above_the_seam():
    found = []
    for path in sorted((ROOT / "gpunet").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(BELOW_THE_SEAM):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if BACKEND_CHECKS.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []


def _gpunet_import_graph():
    """Module -> the gpunet modules it imports, at any depth of the file (lazy imports inside
    functions count: they only postpone a circle).  Importing a submodule from its package
    (``from . import backends``) is an arrow to the submodule, not to the package."""
    modules = {}
    for path in (ROOT / "gpunet").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - max(node.level - 1, 0)] \
                    if node.level else []
                full = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in modules else full
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def test_gpunet_has_no_import_circles():
    graph, circles = _gpunet_import_graph(), []
    state = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_both_backends_give_every_primitive_one_signature():
    """One contract per primitive: the same parameter names, order and defaults on each side
    (the backend adapts, not the op).  The two kernels of a family pair drift apart silently
    otherwise: ``saved`` against ``argmax``, or extra device arguments on one side."""
    import inspect

    import gpunet as gn
    from gpunet.profiler import PRIMITIVES

    numpy_be, cuda_be = gn.backends.backend("numpy"), gn.backends.backend("cuda")
    drift = []
    for name in PRIMITIVES:
        a, b = (inspect.signature(getattr(be, name)) for be in (numpy_be, cuda_be))
        if [(p.name, p.kind, p.default) for p in a.parameters.values()] != \
                [(p.name, p.kind, p.default) for p in b.parameters.values()]:
            drift.append(f"{name}: numpy{a} cuda{b}")
    assert drift == []
