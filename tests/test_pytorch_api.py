"""The everyday PyTorch API, tested against torch itself on every backend."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gpunet as gn
from gpunet import functional as F
from gpunet import nn, optim

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def same(g, t, rtol=2e-6, atol=2e-6):
    np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("ours, theirs", [
    (F.gelu, TF.gelu), (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    (F.elu, TF.elu), (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    (F.leaky_relu, TF.leaky_relu), (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    (lambda x: F.softmax(x, dim=0), lambda x: TF.softmax(x, dim=0)),
    (lambda x: F.log_softmax(x, dim=1), lambda x: TF.log_softmax(x, dim=1)),
])
def test_activations_match_torch_forward_and_backward(backend, rng, ours, theirs):
    x = rng.standard_normal((4, 6)).astype(np.float32) * 2
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    same(ours(g), theirs(t))
    (ours(g) * gn.tensor(np.arange(6, dtype=np.float32))).sum().backward()
    (theirs(t) * torch.arange(6.0)).sum().backward()
    same(g.grad, t.grad)


@pytest.mark.parametrize("fn", [F.gelu, F.elu, F.leaky_relu, lambda x: F.gelu(x, approximate="tanh")])
def test_new_activations_pass_gradcheck(backend, rng, fn):
    x = gn.tensor(rng.standard_normal((3, 5)), requires_grad=True)  # float64
    assert gn.gradcheck(fn, [x])


def test_nll_loss_and_one_hot(backend, rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 3, 1, 1, 2])
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for reduction in ("mean", "sum", "none"):
        same(F.nll_loss(F.log_softmax(g, dim=1), gn.tensor(y), reduction=reduction),
             TF.nll_loss(TF.log_softmax(t, dim=1), torch.tensor(y), reduction=reduction))
    nn.NLLLoss()(nn.LogSoftmax(dim=1)(g), gn.tensor(y)).backward()
    torch.nn.NLLLoss()(torch.nn.LogSoftmax(dim=1)(t), torch.tensor(y)).backward()
    same(g.grad, t.grad)
    same(F.softmax_cross_entropy(g, gn.tensor(y)), TF.cross_entropy(t, torch.tensor(y)))  # the older name
    np.testing.assert_array_equal(F.one_hot(gn.tensor(y)).numpy(), TF.one_hot(torch.tensor(y)).numpy())
    np.testing.assert_array_equal(F.one_hot(gn.tensor(y), 6).numpy(), TF.one_hot(torch.tensor(y), 6).numpy())
    with pytest.raises(ValueError, match="one_hot: labels must be in \\[0, 3\\)"):
        F.one_hot(gn.tensor(y), 3)


@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9}, {"centered": True, "weight_decay": 0.1},
                                {"alpha": 0.9, "eps": 1e-6}])
def test_rmsprop_matches_torch(backend, rng, kw):
    w0 = rng.standard_normal((5, 3)).astype(np.float32)
    p, tp = gn.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    opt, topt = optim.RMSprop([p], lr=0.01, **kw), torch.optim.RMSprop([tp], lr=0.01, **kw)
    for _ in range(5):
        x = rng.standard_normal((4, 5)).astype(np.float32)
        opt.zero_grad()
        ((gn.tensor(x) @ p) ** 2).sum().backward()
        opt.step()
        topt.zero_grad()
        ((torch.tensor(x) @ tp) ** 2).sum().backward()
        topt.step()
    same(p, tp, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(backend, rng, norm_type):
    gs = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,))]
    ps = [gn.tensor(np.zeros(g.shape, np.float32), requires_grad=True) for g in gs]
    tps = [torch.zeros(g.shape, requires_grad=True) for g in gs]
    for p, tp, g in zip(ps, tps, gs):
        p.grad, tp.grad = gn.tensor(g), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ps, 0.5, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5, norm_type)
    assert float(total) == pytest.approx(float(ttotal), rel=1e-5)
    for p, tp in zip(ps, tps):
        same(p.grad, tp.grad, rtol=1e-5)


def test_creation_functions(backend):
    assert gn.zeros(2, 3).shape == (2, 3) and gn.zeros((2, 3)).dtype == np.float32
    assert gn.ones(4).tolist() == [1.0] * 4 and gn.full((2,), 7.5).tolist() == [7.5, 7.5]
    t = gn.tensor(np.ones((2, 2), np.float64))
    assert gn.zeros_like(t).dtype == np.float64 and gn.ones_like(t).backend is t.backend
    for args in ((5,), (2, 7), (0, 1, 0.25), (10, 0, -3)):
        got, want = gn.arange(*args), torch.arange(*args)
        np.testing.assert_allclose(got.numpy(), want.numpy())
        assert got.dtype == want.numpy().dtype
    gn.manual_seed(3)
    a = gn.rand(2, 3)
    gn.manual_seed(3)
    assert np.array_equal(gn.rand(2, 3).numpy(), a.numpy()) and a.dtype == np.float32
    assert gn.randn(1000).numpy().std() == pytest.approx(1, abs=0.1)
    x = gn.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    y = gn.where(x > 0, x, x * 0.1)
    y.sum().backward()
    assert y.tolist() == pytest.approx([-0.1, 2.0, -0.3]) and x.grad.tolist() == pytest.approx([0.1, 1, 0.1])
    assert gn.cat([gn.ones(2, 1), gn.zeros(2, 2)], dim=1).shape == (2, 3)
    assert gn.stack([gn.ones(2), gn.zeros(2)], dim=1).shape == (2, 2)


def test_module_apply_visits_children_then_self():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
    assert all(not m.bias.numpy().any() for m in model.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("shape, norm", [((4, 6), 6), ((2, 3, 5), (3, 5))])
def test_layer_norm_matches_torch(backend, rng, shape, norm):
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    ln, tln = nn.LayerNorm(norm), torch.nn.LayerNorm(norm)
    w = rng.standard_normal(ln.weight.shape).astype(np.float32)
    ln.load_state_dict({"weight": gn.tensor(w), "bias": gn.tensor(w * 0.5)})
    tln.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(w * 0.5)})
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    same(ln(g), tln(t), rtol=1e-5, atol=1e-5)
    (ln(g) ** 2).sum().backward()
    (tln(t) ** 2).sum().backward()
    same(g.grad, t.grad, rtol=1e-4, atol=1e-4)
    same(ln.weight.grad, tln.weight.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size, out", [((6, 6), 1), ((7, 5), (3, 2)), ((8, 8), (4, 4)), ((5, 9), (5, None))])
def test_adaptive_avg_pool_matches_torch(backend, rng, size, out):
    x = rng.standard_normal((2, 3) + size).astype(np.float32)
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    same(nn.AdaptiveAvgPool2d(out)(g), torch.nn.AdaptiveAvgPool2d(out)(t))
    (nn.AdaptiveAvgPool2d(out)(g) ** 2).sum().backward()
    (torch.nn.AdaptiveAvgPool2d(out)(t) ** 2).sum().backward()
    same(g.grad, t.grad)


CONV_CASES = [  # in channels, out channels, groups, dilation, stride, padding
    (4, 6, 2, 1, 1, 1), (4, 4, 4, 2, 1, 2), (3, 6, 3, (2, 1), 2, (1, 0)), (2, 4, 1, 2, 1, 0),
    (2, 3, 1, (1, 3), (2, 1), 1),
]


@pytest.mark.parametrize("c, k, groups, dilation, stride, padding", CONV_CASES)
def test_grouped_and_dilated_conv_match_torch(backend, rng, c, k, groups, dilation, stride, padding):
    x = rng.standard_normal((2, c, 7, 8))
    w = rng.standard_normal((k, c // groups, 3, 3))
    b = rng.standard_normal(k)
    g = [gn.tensor(a, requires_grad=True) for a in (x, w, b)]
    t = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, ty = F.conv2d(*g, **kw), TF.conv2d(*t, **kw)
    same(y, ty, rtol=1e-12, atol=1e-12)  # float64: only the summation order differs
    gy = rng.standard_normal(ty.shape)
    y.backward(gn.tensor(gy))
    ty.backward(torch.tensor(gy))
    for ours, theirs in zip(g, t):
        assert np.abs(theirs.grad.numpy()).max() > 0.1
        same(ours.grad, theirs.grad, rtol=1e-12, atol=1e-12)


def test_depthwise_conv_module_and_errors(backend):
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=6, dilation=2)
    assert conv.weight.shape == (6, 1, 3, 3) and "groups=6" in repr(conv) and "dilation=(2, 2)" in repr(conv)
    assert conv(gn.zeros(1, 6, 9, 9)).shape == (1, 6, 7, 7)
    with pytest.raises(ValueError, match="groups=4 must divide in_channels \\(6\\)"):
        nn.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="spans 9, more than the padded input height 5"):
        F.conv2d(gn.zeros(1, 1, 5, 5), gn.zeros(1, 1, 3, 3), dilation=4)


@pytest.mark.parametrize("size, kernel, stride, padding", [
    ((7, 7), 2, 2, 0), ((5, 8), 3, 2, 1), ((6, 5), 3, 2, 0), ((7, 9), (2, 3), (2, 2), (1, 0))])
def test_max_pool_ceil_mode_matches_torch(backend, rng, size, kernel, stride, padding):
    x = rng.standard_normal((2, 3) + size)
    g, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)(g)
    ty = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)(t)
    assert y.shape == tuple(ty.shape)
    same(y, ty, rtol=0, atol=0)
    gy = rng.standard_normal(ty.shape)
    y.backward(gn.tensor(gy))
    ty.backward(torch.tensor(gy))
    same(g.grad, t.grad, rtol=1e-15, atol=1e-15)  # overlapping windows: sums in another order


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_matches_torch_and_sums_repeats_deterministically(backend, rng, padding_idx):
    table = rng.standard_normal((7, 5)).astype(np.float32)
    ids = np.array([[1, 2, 1, 6], [0, 1, 2, 2]])
    emb, temb = nn.Embedding(7, 5, padding_idx=padding_idx), torch.nn.Embedding(7, 5, padding_idx=padding_idx)
    emb.load_state_dict({"weight": gn.tensor(table)})
    temb.load_state_dict({"weight": torch.tensor(table)})
    out, tout = emb(gn.tensor(ids)), temb(torch.tensor(ids))
    same(out, tout, rtol=0, atol=0)
    gy = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    out.backward(gn.tensor(gy))
    tout.backward(torch.tensor(gy))
    same(emb.weight.grad, temb.weight.grad, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="embedding: ids must be in \\[0, 7\\)"):
        emb(gn.tensor([[7]])).numpy()


def test_embedding_backward_kernels_agree_in_the_simulator(rng):
    """The cuda kernel (simulated without a GPU) against the NumPy kernel, repeats included."""
    from numpy_kernels.embedding import embedding_bwd as numpy_bwd

    cuda = gn.backends.backend("cuda")
    ids = rng.integers(0, 9, (5, 6))
    gy = rng.standard_normal((5, 6, 3))
    got = cuda.to_host(cuda.embedding_bwd(cuda.asarray(gy), cuda.asarray(ids), 11))
    np.testing.assert_array_equal(got, numpy_bwd(gy, ids, 11))  # same order: bit for bit
    assert got.shape == (11, 3) and not got[9:].any()


@given(st.integers(1, 80), st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**32 - 1))
@example(80, 3, 1, 0)  # one index 80 times: more than MAX_PASSES (np.add.at's way)
@settings(max_examples=60, deadline=None)
def test_embedding_backward_sums_each_row_in_order_as_add_at_does(n, d, vocab, seed):
    """Both of the NumPy kernel's ways (one pass per repeat, and np.add.at when an index repeats
    more than MAX_PASSES times) sum a row's occurrences in their order, bit for bit."""
    from numpy_kernels.embedding import embedding_bwd

    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, n)
    gy = rng.standard_normal((n, d)).astype(np.float32)
    want = np.zeros((vocab, d), np.float32)
    np.add.at(want, ids, gy)  # adds one occurrence after another
    np.testing.assert_array_equal(embedding_bwd(gy, ids, vocab), want)


def test_embedding_backward_adds_a_negative_zero_as_add_at_does():
    from numpy_kernels.embedding import embedding_bwd

    got = embedding_bwd(np.array([[-0.0], [1.0]]), np.array([0, 1]), 2)
    assert not np.signbit(got[0, 0])  # 0.0 + -0.0 is +0.0, in np.add.at and on cuda


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_passes_gradcheck(backend, rng, affine):
    x = gn.tensor(rng.standard_normal((2, 4)), requires_grad=True)  # float64, tiny for the simulator
    params = [gn.tensor(rng.standard_normal(4), requires_grad=True) for _ in range(2)] if affine else []
    assert gn.gradcheck(lambda x, *p: F.layer_norm(x, 4, *p), [x, *params])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_layer_norm_cuda_kernels_match_numpy_kernels_in_the_simulator(rng, dtype, tol):
    from numpy_kernels import layer_norm as ln

    cuda = gn.backends.backend("cuda")
    x = (rng.standard_normal((7, 37)) * 3 + 2).astype(dtype)   # D > the simulator's block size
    w, b, gy = (rng.standard_normal(s).astype(dtype) for s in ((37,), (37,), (7, 37)))
    for weight, bias in ((w, b), (None, None)):
        y, saved = cuda.layer_norm_fwd(cuda.asarray(x), None if weight is None else cuda.asarray(weight),
                                       None if bias is None else cuda.asarray(bias), 1e-5)
        want_y, want_saved = ln.layer_norm_fwd(x, weight, bias, 1e-5)
        np.testing.assert_allclose(cuda.to_host(y), want_y, rtol=tol, atol=tol)
        got = cuda.layer_norm_bwd(cuda.asarray(gy), cuda.asarray(x),
                                  None if weight is None else cuda.asarray(weight), saved)
        want = ln.layer_norm_bwd(gy, x, weight, want_saved)
        for g, wnt in zip(got, want):
            assert (g is None) == (wnt is None)
            if g is not None:
                # gradients: two row reductions and three products per element, ~10x the rounding
                np.testing.assert_allclose(cuda.to_host(g), wnt, rtol=tol, atol=tol * 10)
