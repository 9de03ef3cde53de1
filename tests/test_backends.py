"""Backend selection and moving tensors between backends."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpunet as gn
from gpunet import backends
from conftest import BACKENDS


def test_set_get_and_use_backend():
    gn.set_backend("numpy")
    assert gn.get_backend().name == "numpy"
    with gn.use_backend("numpy") as be:
        assert be is gn.get_backend() and gn.tensor([1.0]).backend is be
    assert gn.get_backend().name == "numpy"


def test_env_variable_picks_the_default_backend():
    code = "import gpunet as gn; print(gn.get_backend().name)"
    env = dict(os.environ, GPUNET_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numpy"


def test_auto_picks_a_real_gpu_and_never_the_simulator():
    expected = "numpy" if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else "cuda"
    assert backends.backend("auto").name == expected
    assert expected in backends.auto_reason and "because" in backends.auto_reason


@pytest.mark.parametrize("target", BACKENDS)
def test_to_moves_values_and_keeps_grad_flag(target):
    x = gn.tensor(np.arange(4.0), requires_grad=True, backend="numpy")
    y = x.to(target)
    assert y.backend.name == target and y.requires_grad
    np.testing.assert_array_equal(y.numpy(), np.arange(4.0))
    assert y.to("numpy").backend.name == "numpy"


def test_mixing_backends_in_one_op_is_a_clear_error():
    a = gn.tensor([1.0], backend="numpy")
    b = gn.tensor([1.0], backend="cuda")
    with pytest.raises(ValueError, match="input 1 is on backend 'cuda' but input 0 is on 'numpy'"):
        a + b


def test_the_seam_offers_errstate_to_host_timer_and_one_simulator_rule(backend, monkeypatch):
    be = gn.get_backend()
    with be.errstate(divide="ignore", invalid="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning here would fail the test
            np.log(np.zeros(1))
    assert be.timer() is None  # host time is device time on the CPU and in the simulator
    t = gn.tensor([1.0, 2.0])
    for value in (t, t.data, np.array([1.0, 2.0], np.float32), [1.0, 2.0]):
        host = gn.backends.to_host(value)
        assert type(host) is np.ndarray and host.tolist() == [1.0, 2.0]
    from cuda_kernels import simulator

    for setting, on in (("1", True), ("0", False), ("", False), (" 1 ", True), ("yes", False)):
        assert simulator.read_setting(setting) is on  # as Numba's config reads the variable
    import numba.cuda  # noqa: F401  (once numba is loaded, its config is the answer)
    from numba.core import config

    assert gn.backends.simulator_on() is bool(config.ENABLE_CUDASIM)
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0" if config.ENABLE_CUDASIM else "1")
    assert gn.backends.simulator_on() is bool(config.ENABLE_CUDASIM)  # numba read it already
