"""The ``*_like`` factories, ``gn.empty`` and ``gn.Size`` against PyTorch's, on both backends."""
from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn

torch = pytest.importorskip("torch")

from test_tensor_ops_pytorch import _np_dtype  # noqa: E402  (after the skip)


# --- factories and Size -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_like_factories_match_pytorch(backend, dtype):
    src = np.arange(6).reshape(2, 3).astype(dtype)
    g, t = gn.tensor(src), torch.tensor(src)
    for name, args in [("zeros_like", ()), ("ones_like", ()), ("full_like", (7,)), ("empty_like", ())]:
        got, want = getattr(gn, name)(g, *args), getattr(torch, name)(t, *args)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype), name
        assert got.backend is g.backend and not got.requires_grad
        if name != "empty_like":
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        got = getattr(gn, name)(g, *args, dtype=gn.float64, requires_grad=True)
        want = getattr(torch, name)(t, *args, dtype=torch.float64, requires_grad=True)
        assert got.dtype == np.float64 == _np_dtype(want.dtype) and got.requires_grad
    for name in ("rand_like", "randn_like"):
        if dtype == "int64":  # torch: "check_uniform_bounds" not implemented for 'Long'
            continue
        got, want = getattr(gn, name)(g), getattr(torch, name)(t)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype)
    u = gn.rand_like(gn.zeros(2000, dtype=gn.float64)).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
    z = gn.randn_like(gn.zeros(2000, dtype=gn.float64)).numpy()
    assert abs(z.mean()) < 0.15 and abs(z.std() - 1) < 0.1


def test_like_factories_take_a_device(backend):
    other = "numpy" if backend == "cuda" else "cuda"
    device = {"numpy": "cpu", "cuda": "cuda"}[other]
    g = gn.zeros(2, 3)
    for name, args in [("zeros_like", ()), ("ones_like", ()), ("full_like", (2.5,)), ("empty_like", ()),
                       ("rand_like", ()), ("randn_like", ())]:
        out = getattr(gn, name)(g, *args, device=device)
        assert out.backend.name == other and tuple(out.shape) == (2, 3), name
    assert gn.full_like(g, 2.5, device=device).tolist() == [[2.5] * 3] * 2


def test_empty_matches_pytorch(backend):
    for args, kw in [((2, 3), {}), (((2, 3),), {}), ((0,), {}), (((),), {}), ((4,), dict(dtype="float64"))]:
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        got, want = gn.empty(*args, **kw), torch.empty(*args, **tkw)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype)
        assert got.backend is gn.get_backend()
    assert gn.empty(2, requires_grad=True).requires_grad


def test_size_behaves_as_torch_size():
    g, t = gn.zeros(2, 3, 4).shape, torch.zeros(2, 3, 4).shape
    assert isinstance(g, gn.Size) and isinstance(g, tuple)
    assert g == t == (2, 3, 4) and list(g) == list(t)
    assert repr(g) == "gpunet.Size([2, 3, 4])" and repr(t) == "torch.Size([2, 3, 4])"
    assert isinstance(g[1:], gn.Size) and tuple(g[1:]) == tuple(t[1:]) and g[-1] == t[-1] == 4
    assert isinstance(g + (5,), gn.Size) and tuple(g + (5,)) == tuple(t + (5,))
    assert g.numel() == t.numel() == 24 and gn.Size([]).numel() == torch.Size([]).numel() == 1
    assert gn.zeros(2, 3).size() == gn.Size([2, 3]) and gn.zeros(2, 3).size(1) == 3
    assert hash(gn.Size([2, 3])) == hash((2, 3))
    assert tuple(gn.Size(torch.Size([1, 2]))) == (1, 2)
    assert gn.zeros(gn.Size([2, 2])).shape == (2, 2)
