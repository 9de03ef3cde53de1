"""Backend selection and moving tensors between backends."""
import os
import subprocess
import sys

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
