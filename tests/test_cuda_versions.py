"""A CUDA-version mismatch is named as the reason the GPU cannot be used (fakes: no GPU needed).

Each test swaps in a fake ``cupy`` (and, where needed, ``numba``) module and runs the real
detection path, ``cuda_backend.unavailable_reason()``, with the simulator switched off.
"""
import sys
import types

import pytest

from gpunet.backends import cuda_backend
from gpunet.backends import cuda_versions as cv


def fake_cupy(runtime=12080, driver=12080, available=True):
    runtime_api = types.SimpleNamespace(runtimeGetVersion=lambda: runtime,
                                        driverGetVersion=lambda: driver)
    return types.SimpleNamespace(is_available=lambda: available,
                                 cuda=types.SimpleNamespace(runtime=runtime_api))


def fake_numba(available):
    return types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: available))


def fake_nvvm(error=None):
    """numba-cuda's ``nvvm`` module: ``NVVM()`` loads libNVVM, or raises ``error`` as it does
    when the library is not found."""
    def load():
        if error is not None:
            raise error
        return types.SimpleNamespace(get_version=lambda: (2, 0))
    return types.SimpleNamespace(NVVM=load)


class _FailingImport:
    """A meta-path finder that makes ``import cupy`` raise ``error``."""

    def __init__(self, error):
        self.error = error

    def find_spec(self, name, path=None, target=None):
        if name == "cupy":
            raise self.error
        return None


@pytest.fixture
def real_path(monkeypatch):
    """The detection path of a machine without the simulator: the variable unset, and a numba
    already loaded here reading it as off (gpunet asks numba's config once numba is loaded)."""
    from cuda_kernels import simulator

    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda.cudadrv.nvvm", fake_nvvm())
    for name in simulator._CONFIG_MODULES:
        if hasattr(sys.modules.get(name), "ENABLE_CUDASIM"):
            monkeypatch.setattr(sys.modules[name], "ENABLE_CUDASIM", 0)
    return monkeypatch


def test_version_numbers_read_as_cuda_writes_them():
    assert cv.version_text(12080) == "12.8" and cv.version_text(13000) == "13.0"
    assert cv.extra_for_driver(13020) == "cuda13"
    assert cv.extra_for_driver(12040) == "cuda12"
    assert cv.extra_for_driver(11080) is None
    assert "upgrade the NVIDIA driver" in cv.install_hint(11080)


def test_cupy_for_cuda13_on_a_cuda12_driver_names_both_and_the_extra(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=13000, driver=12080, available=False))
    reason = cuda_backend.unavailable_reason()
    assert reason.startswith("CuPy is built for CUDA 13.0 but the NVIDIA driver supports only "
                             "CUDA 12.8"), reason
    assert 'pip install "gpunet[cuda12]"' in reason and ">= 580" in reason


def test_cupy_for_cuda12_on_a_cuda11_driver_says_upgrade_the_driver(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=12080, driver=11080, available=False))
    reason = cuda_backend.unavailable_reason()
    assert "built for CUDA 12.8 but the NVIDIA driver supports only CUDA 11.8" in reason
    assert "gpunet needs CUDA 12 or 13: upgrade the NVIDIA driver" in reason


def test_no_driver_at_all_is_no_version_mismatch(real_path):
    """A machine without a GPU reports driver version 0: the plain "no usable GPU" message."""
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=12080, driver=0, available=False))
    reason = cuda_backend.unavailable_reason()
    assert "CuPy is installed but sees no usable NVIDIA GPU" in reason and "built for" not in reason


def test_matching_versions_without_a_device_keep_the_generic_message(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=12080, driver=12020, available=False))
    reason = cuda_backend.unavailable_reason()
    assert "sees no usable NVIDIA GPU" in reason and "built for" not in reason


@pytest.mark.parametrize("lib,major,extra", [("cudart", 13, "cuda13"), ("nvrtc", 12, "cuda12")])
def test_cupy_import_failing_on_a_cuda_library_names_its_major(real_path, lib, major, extra):
    real_path.delitem(sys.modules, "cupy", raising=False)
    real_path.setattr(sys, "meta_path", [_FailingImport(ImportError(
        f"CuPy failed to load lib{lib}.so.{major}: OSError: lib{lib}.so.{major}: cannot open "
        "shared object file: No such file or directory"))] + sys.meta_path)
    reason = cuda_backend.unavailable_reason()
    assert reason.startswith(f"CuPy could not load lib{lib}.so.{major} (CUDA {major})"), reason
    assert f'pip install "gpunet[{extra}]"' in reason


def test_cupy_missing_names_both_extras(real_path):
    real_path.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    reason = cuda_backend.unavailable_reason()
    assert reason.startswith("CuPy is not installed") and "gpunet[cuda13]" in reason


def test_numba_bindings_for_a_newer_major_than_the_driver(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=12080, driver=12080))
    real_path.setitem(sys.modules, "numba", fake_numba(available=False))
    real_path.setattr(cv, "installed_version", lambda name: "13.0.3")
    reason = cuda_backend.unavailable_reason()
    assert reason.startswith("numba-cuda's CUDA bindings are for CUDA 13 (cuda-bindings 13.0.3) "
                             "but the NVIDIA driver supports only CUDA 12.8"), reason
    assert 'pip install "gpunet[cuda12]"' in reason and "numba-cuda[cu12]" in reason


def test_numba_bindings_matching_the_driver_keep_the_generic_message(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=13000, driver=13000))
    real_path.setitem(sys.modules, "numba", fake_numba(available=False))
    real_path.setattr(cv, "installed_version", lambda name: "13.0.3")
    reason = cuda_backend.unavailable_reason()
    assert reason.startswith("Numba cannot use the GPU that CuPy sees"), reason


def test_a_working_pair_has_no_reason(real_path):
    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=13000, driver=13000))
    real_path.setitem(sys.modules, "numba", fake_numba(available=True))
    assert cuda_backend.unavailable_reason() is None


def test_the_mismatch_reaches_auto_and_the_error(real_path):
    """``auto`` logs the mismatch and ``set_backend("cuda")`` raises it (a fresh selection)."""
    import gpunet as gn
    from gpunet import backends

    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=13000, driver=12080, available=False))
    real_path.setattr(backends, "_instances", {})
    real_path.setattr(backends, "auto_reason", "")
    assert backends.backend("auto").name == "numpy"
    assert "CuPy is built for CUDA 13.0" in backends.auto_reason
    with pytest.raises(gn.BackendUnavailableError, match="driver supports only CUDA 12.8"):
        backends.backend("cuda")


def test_a_missing_libnvvm_makes_the_backend_unavailable_and_says_how_to_fix_it(real_path):
    """GPU, CuPy and numba-cuda all work but libNVVM is not found (nvrtc from a wheel, no
    CUDA_HOME): every compile would fail, so ``auto`` must not pick cuda, and the reason
    carries numba-cuda's own message and the fix."""
    from gpunet import backends

    real_path.setitem(sys.modules, "cupy", fake_cupy(runtime=13000, driver=13000))
    real_path.setitem(sys.modules, "numba", fake_numba(available=True))
    missing = OSError("libNVVM cannot be found. Do `conda install cudatoolkit`")
    real_path.setitem(sys.modules, "numba.cuda.cudadrv.nvvm", fake_nvvm(missing))
    reason = cuda_backend.unavailable_reason()
    assert "cannot load libNVVM" in reason and "libNVVM cannot be found" in reason
    assert "numba-cuda[cu13]" in reason and "CUDA_HOME" in reason
    real_path.setattr(backends, "_instances", {})
    real_path.setattr(backends, "auto_reason", "")
    assert backends.backend("auto").name == "numpy"
    assert "libNVVM" in backends.auto_reason
