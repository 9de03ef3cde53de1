"""The kernels sit at the bottom (issue 20): numpy_kernels, cuda_kernels and kernel_geometry
import nothing from gpunet, read from their source and from a fresh interpreter alike."""
import ast
import inspect
import os
import re
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


def _public_functions(module):
    return {name: fn for name, fn in vars(module).items() if not name.startswith("_")
            and inspect.isfunction(fn) and fn.__module__ == module.__name__}


def _signature(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_every_name_both_kernel_families_share_has_one_signature():
    """One contract per name: a function that ``numpy_kernels/<family>.py`` and
    ``cuda_kernels/<family>.py`` both define takes the same parameter names, order and defaults
    on each side (the backend adapts, not the op), and every declared primitive is among them.
    The two sides drift apart silently otherwise: ``saved`` against ``argmax``, extra device
    arguments on one side, or ``im2col`` returning a different layout under the same name."""
    import importlib

    from gpunet.backends import primitives

    drift, missing = [], []
    for family, declared in {**primitives.FAMILIES, **primitives.SUPPORT_FAMILIES}.items():
        host = _public_functions(importlib.import_module(f"numpy_kernels.{family}"))
        device = _public_functions(importlib.import_module(f"cuda_kernels.{family}"))
        missing += [f"{family}.{name}" for name in declared if name not in host or name not in device]
        for name in sorted(host.keys() & device.keys()):
            if _signature(host[name]) != _signature(device[name]):
                drift.append(f"{family}.{name}: numpy{inspect.signature(host[name])} "
                             f"cuda{inspect.signature(device[name])}")
    assert missing == [] and drift == []


def test_the_backends_profiler_and_docs_read_one_declaration():
    """The primitive list is written once: both backends bind exactly the declared names from
    their kernel packages, the profiler times those, and the base class declares none itself."""
    import gpunet as gn
    from gpunet.backends import primitives
    from gpunet.backends.base import Backend

    assert gn.profiler.PRIMITIVES is primitives.NAMES
    assert not set(primitives.NAMES) & set(vars(Backend))
    for be in (gn.backends.backend("numpy"), gn.backends.backend("cuda")):
        package = "numpy_kernels" if be.name == "numpy" else "cuda_kernels"
        for name in primitives.NAMES:
            fn = getattr(be, name)
            assert fn.__module__ == f"{package}.{primitives.FAMILY_OF[name]}", (be.name, name)
    table = primitives.table()
    assert all(f"`{name}`" in table for name in primitives.NAMES)
    sources = [p for p in (ROOT / "gpunet").rglob("*.py") if p.name != "primitives.py"]
    for path in sources:  # no second hand-kept list of primitive names
        text = path.read_text()
        listed = sum(f'"{name}"' in text for name in primitives.NAMES)
        assert listed < 5, f"{path.relative_to(ROOT)} lists {listed} primitive names"
