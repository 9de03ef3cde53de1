"""Names PyTorch also has mean what they mean in PyTorch; each silent difference found once is
pinned here, on every backend, against torch itself (CPU torch is in the dev extra)."""
import math

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import optim

torch = pytest.importorskip("torch")


def both(rng, *shape, dtype=np.float32):
    a = rng.standard_normal(shape).astype(dtype)
    return (gn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True))


def same(g, t, rtol=1e-6, atol=1e-6):
    t = t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)
    np.testing.assert_allclose(g.numpy() if hasattr(g, "numpy") else g, t, rtol=rtol, atol=atol)


def test_transpose_swaps_two_dims_and_permute_reorders(backend, rng):
    g, t = both(rng, 2, 3)
    same(g.transpose(0, 1), t.transpose(0, 1))
    g3, t3 = both(rng, 2, 3, 4)
    same(g3.transpose(1, 2), t3.transpose(1, 2))
    same(g3.permute(2, 0, 1), t3.permute(2, 0, 1))
    same(g3.T, t3.permute(2, 1, 0))
    with pytest.raises(TypeError, match="transpose\\(dim0, dim1\\) swaps two dims"):
        g3.transpose(2, 0, 1)


def test_max_with_dim_returns_values_and_indices_and_grads_the_index(backend, rng):
    g, t = both(rng, 3, 5)
    v, i = g.max(1)
    tv, ti = t.max(1)
    same(v, tv)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert i.dtype == np.int64
    (v * gn.tensor(np.arange(3.0, dtype=np.float32))).sum().backward()
    (tv * torch.arange(3.0)).sum().backward()
    same(g.grad, t.grad)
    vk, ik = g.min(dim=0, keepdim=True)
    tvk, tik = t.min(dim=0, keepdim=True)
    same(vk, tvk)
    assert ik.shape == tuple(tik.shape)
    np.testing.assert_array_equal(g.argmax(dim=1, keepdim=True).numpy(), t.argmax(dim=1, keepdim=True).numpy())
    assert g.argmax().item() == t.argmax().item()


def test_tensor_copies_and_from_numpy_shares(backend):
    a = np.ones(3, np.float32)
    t = gn.tensor(a, requires_grad=True)
    a[0] = 7
    assert t.numpy()[0] == 1
    t.grad = gn.tensor(np.ones(3, np.float32))
    optim.SGD([t], lr=0.5).step()
    assert a.tolist() == [7, 1, 1]  # the optimiser step did not rewrite the user's array
    shared = gn.from_numpy(a)
    a[1] = 9
    assert shared.numpy()[1] == 9 and shared.backend.name == "numpy"


def test_power_with_a_tensor_exponent_matches_torch(backend):
    base = np.array([-2.0, -3.0, 0.0, 1.5], np.float32)
    exp = np.array([2.0, 3.0, 2.0, 0.5], np.float32)
    gb, ge = gn.tensor(base, requires_grad=True), gn.tensor(exp, requires_grad=True)
    tb, te = torch.tensor(base, requires_grad=True), torch.tensor(exp, requires_grad=True)
    y, ty = gb ** ge, tb ** te
    same(y, ty)
    y.sum().backward()
    ty.sum().backward()
    same(gb.grad, tb.grad)
    same(ge.grad[2:], te.grad[2:])  # log of a negative base is NaN in both; compare the rest
    assert np.isnan(ge.grad.numpy()[:2]).all() and torch.isnan(te.grad[:2]).all()
    ints = gn.tensor(np.array([1, 2, 3, 2]))
    assert (gn.tensor(base) ** ints).dtype == np.float32  # float32 ** int64 stays float32
    same(2.0 ** gn.tensor(exp), 2.0 ** torch.tensor(exp))


def test_vector_dot_product_backward(backend, rng):
    (ga, ta), (gb, tb) = both(rng, 4), both(rng, 4)
    (ga @ gb).backward()
    (ta @ tb).backward()
    same(ga.grad, ta.grad)
    same(gb.grad, tb.grad)


def test_softmax_cross_entropy_is_exact_at_large_logits(backend):
    logits = gn.tensor(np.array([[9999.0, 10000.0]], np.float32))
    loss = F.softmax_cross_entropy(logits, gn.tensor([0])).item()
    exact = math.log1p(math.exp(1.0))  # 1.3132616875...
    assert abs(loss - exact) / exact < 4e-7  # a few float32 ulps; it was 2e-4


def test_relu_passes_the_gradient_at_nan(backend):
    x = gn.tensor(np.array([-1.0, np.nan, 2.0], np.float32), requires_grad=True)
    F.relu(x).sum().backward()
    tx = torch.tensor([-1.0, float("nan"), 2.0], requires_grad=True)
    torch.relu(tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("make", [
    lambda p: optim.Adam([p], lr=float("nan")), lambda p: optim.SGD([p], lr=float("inf")),
    lambda p: optim.AdamW([p], weight_decay=float("nan")), lambda p: optim.Adam([p], eps=-1.0),
])
def test_optimizers_refuse_non_finite_hyperparameters(make):
    p = gn.tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        make(p)


def test_second_backward_through_a_freed_graph_raises(backend, rng):
    g, _ = both(rng, 3)
    loss = (g * g).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    h, th = both(rng, 3)
    loss, tloss = (h * h).sum(), (th * th).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    tloss.backward(retain_graph=True)
    tloss.backward()
    same(h.grad, th.grad)


def test_everyday_tensor_methods(backend, rng):
    g, t = both(rng, 2, 3, 4)
    assert g.size() == tuple(t.size()) and g.size(1) == t.size(1)
    assert g.dim() == t.dim() and g.numel() == t.numel()
    same(g.view(6, 4), t.view(6, 4))
    same(g.unsqueeze(0).squeeze(0), t)
    same(g.std(), t.std())
    same(g.var(dim=1, keepdim=True), t.var(dim=1, keepdim=True))
    same(g.sum(dim=2), t.sum(dim=2))
    same(g.mean(dim=(0, 2), keepdim=True), t.mean(dim=(0, 2), keepdim=True))
    same(g.clamp(min=-0.5, max=0.5), t.clamp(min=-0.5, max=0.5))
    same((g * g).sqrt(), (t * t).sqrt())
    assert g.double().dtype == np.float64 and g.long().dtype == np.int64
    loss = g.sum()
    assert f"{loss:.3f}" == f"{t.sum().item():.3f}" and float(loss) == pytest.approx(t.sum().item())
    assert g.to("cpu").backend.name == "numpy" and g.cpu().backend.name == "numpy"
    assert g.cuda().backend.name == "cuda" and g.cuda().device == gn.device("cuda", 0) and g.cpu().device == gn.device("cpu")
    assert (gn.tensor([1, 2]) * 2.5).dtype == np.float32  # int tensor times a float


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (2, 1)])
def test_max_pool_routes_nan_windows_like_torch(backend, rng, kernel, stride):
    x = np.where(rng.random((2, 3, 6, 6)) < 0.25, np.nan, rng.standard_normal((2, 3, 6, 6)))
    x = x.astype(np.float32)
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = F.max_pool2d(g, kernel, stride), torch.nn.functional.max_pool2d(t, kernel, stride)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())
