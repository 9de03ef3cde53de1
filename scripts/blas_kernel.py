"""Print the OpenBLAS kernel NumPy runs here, or with ``--other`` a second kernel whose float32
rounding differs, for running the training-claim tests again (issue 19).

A kernel is what ``OPENBLAS_CORETYPE`` names.  Haswell (AVX2 + FMA) is the other kernel of any
AVX-512 kernel; an AVX2 machine's other kernel is SkylakeX when the CPU has AVX-512, else
Sandybridge (AVX, no FMA).

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


def cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


def other(kernel: str) -> str:
    if kernel.lower() not in ("haswell", "zen"):
        return "Haswell"
    return "SkylakeX" if cpu_has_avx512() else "Sandybridge"


if __name__ == "__main__":
    print(other(current()) if "--other" in sys.argv[1:] else current())
