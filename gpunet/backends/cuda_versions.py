"""Name a CUDA-version mismatch when that is why the GPU cannot be used.

CUDA reports versions as ``1000 * major + 10 * minor`` (12080 is CUDA 12.8).  The driver runs
any CUDA runtime of its own major version or older, so the checks compare majors:

* CuPy built for CUDA 13 on a driver that supports only CUDA 12 cannot start;
* a CuPy wheel whose CUDA libraries are missing fails to import (``libcudart.so.13: cannot
  open shared object file``);
* numba-cuda whose CUDA bindings (``cuda-bindings``) are for a newer major than the driver.

Pure logic: callers pass in the CuPy module or the numbers, so the tests use fakes and this
module never imports CuPy or Numba itself.

Example:
    >>> version_text(12080)
    '12.8'
    >>> extra_for_driver(13000)
    'cuda13'
    >>> cupy_driver_mismatch(runtime=13000, driver=12080)[:41]
    'CuPy is built for CUDA 13.0 but the NVIDI'
"""
from __future__ import annotations

import re

EXTRAS = {12: "cuda12", 13: "cuda13"}  # the pip extras, by CUDA major version
OLDEST_DRIVER = {12: "525", 13: "580"}  # the oldest Linux driver branch of each major


def version_text(version: int) -> str:
    """``12080`` -> ``"12.8"``."""
    return f"{version // 1000}.{version % 1000 // 10}"


def extra_for_driver(driver: int) -> str | None:
    """The gpunet extra to install for a driver version (the newest major it runs), or None
    when the driver is older than any CUDA gpunet supports."""
    major = driver // 1000
    supported = [m for m in EXTRAS if m <= major]
    return EXTRAS[max(supported)] if supported else None


def install_hint(driver: int) -> str:
    """What to do on a machine whose driver supports CUDA ``driver``."""
    extra = extra_for_driver(driver)
    if extra is None:
        return (f"gpunet needs CUDA 12 or 13: upgrade the NVIDIA driver (>= {OLDEST_DRIVER[12]} "
                f"for CUDA 12, >= {OLDEST_DRIVER[13]} for CUDA 13)")
    return f'pip install "gpunet[{extra}]"'


def cupy_driver_mismatch(runtime: int, driver: int) -> str | None:
    """The message when CuPy's CUDA (``runtime``) is newer than the driver's, else None.

    ``driver == 0`` (no NVIDIA driver at all, as on any machine without a GPU) is no mismatch.
    """
    if driver <= 0:
        return None
    if runtime // 1000 > driver // 1000:
        major = runtime // 1000
        newer = OLDEST_DRIVER.get(major, f"one for CUDA {major}")
        return (f"CuPy is built for CUDA {version_text(runtime)} but the NVIDIA driver supports "
                f"only CUDA {version_text(driver)}: {install_hint(driver)} (or upgrade the driver "
                f"to >= {newer})")
    return None


def cupy_unusable_reason(cupy) -> str | None:
    """Why an imported CuPy cannot use the GPU, when a version mismatch explains it; else None.

    Example:
        >>> cupy_unusable_reason(fake_cupy(runtime=12080, driver=11080))   # doctest: +SKIP
        'CuPy is built for CUDA 12.8 but the NVIDIA driver supports only CUDA 11.8: ...'
    """
    try:
        runtime = int(cupy.cuda.runtime.runtimeGetVersion())
        driver = int(cupy.cuda.runtime.driverGetVersion())
    except Exception:  # no libcuda at all, or an old CuPy without these calls
        return None
    return cupy_driver_mismatch(runtime, driver)


_LIB = re.compile(r"lib(cudart|nvrtc|cublas|cublasLt|curand|cusparse|cufft|nvJitLink)"
                  r"\.so\.(\d+)")


def cupy_import_error_reason(exc: BaseException) -> str | None:
    """For ``import cupy`` failing on a missing CUDA library: which CUDA major it wanted.

    Example:
        >>> err = ImportError("libcudart.so.13: cannot open shared object file")
        >>> cupy_import_error_reason(err)[:45]
        'CuPy could not load libcudart.so.13 (CUDA 13)'
    """
    m = _LIB.search(str(exc))
    if m is None:
        return None
    lib, major = m.group(1), int(m.group(2))
    extra = EXTRAS.get(major)
    fix = (f'pip install "gpunet[{extra}]" (it brings the CUDA {major} libraries), or the '
           f"extra that matches `nvidia-smi`'s \"CUDA Version\"" if extra else
           'install the CuPy wheel for your driver: pip install "gpunet[cuda12]" or '
           '"gpunet[cuda13]"')
    return (f"CuPy could not load lib{lib}.so.{major} (CUDA {major}): the CuPy wheel expects "
            f"the CUDA {major} libraries, which are missing or do not match the driver; {fix}")


def numba_bindings_mismatch(bindings_version: str | None, driver: int) -> str | None:
    """numba-cuda's CUDA bindings (``cuda-bindings`` version text) newer than the driver's major."""
    if not bindings_version or driver <= 0:
        return None
    try:
        major = int(bindings_version.split(".")[0])
    except ValueError:
        return None
    if major > driver // 1000:
        return (f"numba-cuda's CUDA bindings are for CUDA {major} (cuda-bindings "
                f"{bindings_version}) but the NVIDIA driver supports only CUDA "
                f"{version_text(driver)}: {install_hint(driver)}, which installs numba-cuda"
                f"[cu{driver // 1000}]")
    return None


def installed_version(distribution: str) -> str | None:
    """The installed version of a pip distribution, or None."""
    import importlib.metadata as md

    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None
