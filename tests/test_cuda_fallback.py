"""Fallback a user can trust: with no usable GPU, gpunet imports, ``auto`` picks numpy and says
why, and asking for ``cuda`` raises an error that says why.

Each case runs in a fresh interpreter WITHOUT ``NUMBA_ENABLE_CUDASIM`` (the test process has it
set by conftest), so the real detection path runs.  The "CuPy installed, no GPU" case is what a
CI machine with ``gpunet[cuda]`` installed looks like; "no CuPy" is simulated by blocking the
import.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import logging, sys
    if {block_cupy}:
        sys.modules["cupy"] = None  # `import cupy` now raises ImportError
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(name)s %(message)s")
    import gpunet
    print("HEAVY_IMPORTS", [m for m in ("cupy", "numba") if sys.modules.get(m) is not None])
    from gpunet import backends
    print("AUTO", backends.backend("auto").name)
    try:
        gpunet.set_backend("cuda")
        print("CUDA_OK")
    except gpunet.BackendUnavailableError as exc:
        print("CUDA_ERROR", exc)
    print("DEFAULT", gpunet.get_backend().name)
""")


def _real_gpu() -> bool:
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


def _cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:
        return False
    return True


def _run(block_cupy: bool) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_ENABLE_CUDASIM", "GPUNET_BACKEND")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(block_cupy=block_cupy)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _line(out: str, tag: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith(tag)]
    assert lines, f"no {tag!r} line in:\n{out}"
    return lines[0]


def _check_fallback(out: str, reason_words) -> None:
    assert _line(out, "HEAVY_IMPORTS") == "HEAVY_IMPORTS []"  # import gpunet stays light
    assert _line(out, "AUTO") == "AUTO numpy"
    assert _line(out, "DEFAULT") == "DEFAULT numpy"
    logs = [ln for ln in out.splitlines() if ln.startswith("LOG gpunet")]
    assert len(logs) == 1, out  # one line, not one per call
    assert "using 'numpy' because" in logs[0]
    err = _line(out, "CUDA_ERROR")
    for text in (logs[0], err):
        for word in reason_words:
            assert word in text, f"{word!r} missing from: {text}"


@pytest.mark.skipif(_real_gpu(), reason="a GPU is usable here: auto picks cuda")
@pytest.mark.skipif(not _cupy_importable(), reason="CuPy is not installed here")
def test_cupy_installed_but_no_gpu():
    _check_fallback(_run(block_cupy=False), ["CuPy is installed", "no usable NVIDIA GPU"])


def test_cupy_missing():
    _check_fallback(_run(block_cupy=True), ["CuPy is not installed", 'pip install "gpunet[cuda]"'])
