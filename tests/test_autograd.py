"""Tensor basics and the autograd engine."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F


def test_gradients_accumulate_for_reused_tensors(backend):
    x = gn.tensor([2.0, 3.0], requires_grad=True)
    y = x * x + x  # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])
    (x * 1.0).sum().backward()  # a second backward adds on, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_diamond_graph_backprop_is_chain_rule(backend):
    x = gn.tensor([1.5], requires_grad=True)
    a = F.tanh(x)
    b = F.sigmoid(x)
    (a * b).sum().backward()
    ta, sb = np.tanh(1.5), 1 / (1 + np.exp(-1.5))
    expected = (1 - ta ** 2) * sb + ta * sb * (1 - sb)
    assert x.grad.item() == pytest.approx(expected, rel=1e-6)


def test_broadcast_gradient_is_summed_to_input_shape(backend):
    a = gn.tensor(np.ones((4, 3)), requires_grad=True)
    b = gn.tensor(np.ones((3,)), requires_grad=True)
    c = gn.tensor(2.0, requires_grad=True)
    ((a + b) * c).sum().backward()
    assert b.grad.shape == (3,) and np.all(b.grad.numpy() == 8.0)
    assert c.grad.shape == () and c.grad.item() == 24.0


def test_no_grad_and_detach(backend):
    x = gn.tensor([1.0], requires_grad=True)
    with gn.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert not (x * 2).detach().requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_tensor_properties_and_conversions(backend):
    x = gn.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert x.shape == (2, 3) and x.dtype == np.float32 and x.ndim == 2 and x.numel() == 6 and x.size() == (2, 3)
    assert x.backend.name == backend and isinstance(x.numpy(), np.ndarray)
    assert x.sum().item() == 15.0 and gn.tensor([1.5]).dtype == np.float32
    assert gn.tensor([1, 2]).dtype == np.int64
    moved = x.to("numpy")
    assert moved.backend.name == "numpy" and np.array_equal(moved.numpy(), x.numpy())
    assert "tensor(" in repr(x)


def test_backward_needs_scalar_or_grad(backend):
    x = gn.tensor(np.ones(3), requires_grad=True)
    y = x * 3
    with pytest.raises(ValueError, match="needs a scalar"):
        y.backward()
    y.backward(np.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), 3.0)


def test_operators_match_numpy(backend, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    A, B = gn.tensor(a), gn.tensor(b)
    np.testing.assert_allclose((A @ B).numpy(), a @ b)
    np.testing.assert_allclose((2 - A / 3).numpy(), 2 - a / 3)
    np.testing.assert_allclose((A ** 2).max(axis=0).values.numpy(), (a ** 2).max(0))
    np.testing.assert_array_equal((A > 0).numpy(), a > 0)
    np.testing.assert_array_equal(A.argmax(axis=1).numpy(), a.argmax(1))
