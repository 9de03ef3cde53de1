"""What the GPU check ran on: the GPU, driver, CUDA versions and the Python packages.

Prints one ``key: value`` line each: ``nvidia-smi``'s GPU name, driver and CUDA version; the
CUDA runtime CuPy was built for and the driver's CUDA version as CuPy reads them; numba,
numba-cuda, cuda-bindings, CuPy, PyTorch (and its CUDA) versions; and gpunet's own verdict,
``gpunet.backends.cuda_unavailable_reason()`` (``None`` means the cuda backend runs here).
``--gpu-slug`` prints only a file-name-safe GPU name, e.g. ``nvidia-h100-80gb-hbm3``.
Exits 1 (still printing everything) when ``--require-gpu`` is given and the cuda backend cannot
run on a real GPU.

Example:
    $ python benchmarks/gpu_env.py
    gpu: NVIDIA H100 80GB HBM3 | driver 580.159.04 | CUDA 13.0
    ...
    $ python benchmarks/gpu_env.py --gpu-slug
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def nvidia_smi() -> str | None:
    """``name | driver | CUDA x.y`` of the first GPU from nvidia-smi, or None without one."""
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                                "--format=csv,noheader"], capture_output=True, text=True,
                               timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if query.returncode != 0 or not query.stdout.strip():
        return None
    name, driver = [s.strip() for s in query.stdout.splitlines()[0].split(",", 1)]
    cuda = re.search(r"CUDA Version:\s*([0-9.]+)", header.stdout)
    return f"{name} | driver {driver} | CUDA {cuda.group(1) if cuda else '?'}"


def slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())) or "gpu"


def package_lines():
    from gpunet.backends.cuda_versions import installed_version, version_text

    for dist in ("numpy", "numba", "numba-cuda", "cuda-bindings", "cupy-cuda12x", "cupy-cuda13x",
                 "torch", "pytest"):
        yield dist, installed_version(dist) or "not installed"
    try:
        import cupy

        rt = cupy.cuda.runtime
        yield "cupy CUDA runtime (built for)", version_text(rt.runtimeGetVersion())
        driver = rt.driverGetVersion()
        yield "cupy driver CUDA version", version_text(driver) if driver else "none (no driver)"
    except Exception as exc:
        yield "cupy", f"unusable ({type(exc).__name__}: {exc})"
    if installed_version("torch"):
        import torch

        yield "torch CUDA", f"{torch.version.cuda} (available: {torch.cuda.is_available()})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu-slug", action="store_true", help="print only the GPU's file name")
    p.add_argument("--require-gpu", action="store_true", help="exit 1 unless a real GPU runs")
    args = p.parse_args(argv)
    gpu = nvidia_smi()
    if args.gpu_slug:
        print(slug(gpu.split("|")[0]) if gpu else "no-gpu")
        return 0
    print(f"gpu: {gpu or 'none (nvidia-smi found no GPU)'}")
    print(f"python: {platform.python_version()} ({sys.executable})")
    print(f"NUMBA_ENABLE_CUDASIM: {os.environ.get('NUMBA_ENABLE_CUDASIM', '(unset)')}")
    for key, value in package_lines():
        print(f"{key}: {value}")
    import gpunet

    reason = gpunet.backends.cuda_unavailable_reason()
    print(f"gpunet: {Path(gpunet.__file__).parent}")
    print(f"gpunet cuda backend: {'runs here' if reason is None else 'unavailable: ' + reason}")
    if args.require_gpu and (reason is not None or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"):
        print("FAILED: the cuda backend cannot run on a real GPU here")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
