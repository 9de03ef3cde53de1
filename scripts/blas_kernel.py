"""Print the OpenBLAS kernel NumPy runs here, or with ``--other`` a second kernel whose float32
rounding differs, for running the training-claim tests again (issue 19).

A kernel is what ``OPENBLAS_CORETYPE`` names.  Haswell (AVX2 + FMA) is the other kernel of any
kernel but itself where the CPU has AVX2 and FMA; Haswell's (or Zen's) other kernel is
SkylakeX where the CPU has AVX-512, else Sandybridge (AVX, no FMA).

    python scripts/blas_kernel.py            # e.g. SkylakeX
    python scripts/blas_kernel.py --other    # e.g. Haswell
"""
from __future__ import annotations

import sys

import numpy  # noqa: F401  (loads NumPy's OpenBLAS, so threadpoolctl sees it)
from threadpoolctl import threadpool_info


def current() -> str:
    """The architecture OpenBLAS reports for NumPy's BLAS ('unknown' for another BLAS)."""
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return (blas[0].get("architecture") or "unknown") if blas else "unknown"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((l for l in f if l.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[-1].split())


def other(kernel: str) -> str:
    flags = cpu_flags()
    if kernel.lower() not in ("haswell", "zen") and {"avx2", "fma"} <= flags:
        return "Haswell"
    if kernel.lower() in ("haswell", "zen") and "avx512f" in flags:
        return "SkylakeX"
    return "Sandybridge" if "avx" in flags else "Nehalem"


if __name__ == "__main__":
    print(other(current()) if "--other" in sys.argv[1:] else current())
