"""Batch normalisation's fused kernels (``batch_norm_fwd``/``_bwd``): the geometry searched
against PyTorch on both backends (cuda in Numba's simulator, tiny sizes), the cuda kernels
against the NumPy ones in float32 and float64, repeatable bits, the running statistics, and
precision when the mean dwarfs the spread.

Tolerances: float64 differs from PyTorch only by summation order (test_geometry_property.py's);
float32 kernel against kernel by a few ulps per summed term (test_cuda_kernels.py's).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpunet as gn
from gpunet import backends, nn
from gpunet.nn import functional as F
from numpy_kernels import batch_norm as numpy_bn
from test_geometry_property import _compare, _settings

torch = pytest.importorskip("torch")
TF = torch.nn.functional
SIZES = {"numpy": dict(n=5, c=4, hw=6), "cuda": dict(n=3, c=3, hw=3)}


@st.composite
def batch_norm_case(draw, size):
    ndim = draw(st.sampled_from([2, 3, 4]))
    n = draw(st.integers(2, size["n"]))
    c = draw(st.integers(1, size["c"]))
    spatial = tuple(draw(st.integers(1, size["hw"])) for _ in range(ndim - 2))
    return (n, c) + spatial, draw(st.booleans()), draw(st.sampled_from([0.0, 3.0])), \
        draw(st.integers(0, 2 ** 16))


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_batch_norm_matches_pytorch_over_its_geometry(backend):
    @_settings(backend)
    @given(batch_norm_case(SIZES[backend]))
    def check(case):
        shape, affine, offset, seed = case
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(shape) * 2 + offset
        w, b = (rng.standard_normal(shape[1]), rng.standard_normal(shape[1])) if affine else (None, None)
        _compare(backend, lambda *a: F.batch_norm(a[0], None, None, *a[1:], training=True),
                 lambda *a: TF.batch_norm(a[0], None, None, *a[1:], training=True), [x, w, b], seed)

    check()


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_running_statistics_and_eval_match_pytorch(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32) * 3 + 1
    with gn.use_backend(backend):
        ours = nn.BatchNorm2d(3)
        for _ in range(3):
            ours(gn.tensor(x))
        ours.eval()
        y = ours(gn.tensor(x)).numpy()
    theirs = torch.nn.BatchNorm2d(3)
    for _ in range(3):
        theirs(torch.tensor(x))
    theirs.eval()
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_a_mean_far_from_zero_loses_no_more_than_float32_input_rounding():
    """x = 1000 + 0.01 z: the variance comes from centred values (Chan's combination of row
    moments), not from sum(x^2) - n mean^2, which would cancel to noise here."""
    rng = np.random.default_rng(0)
    x = (1000 + 0.01 * rng.standard_normal((8, 3, 64))).astype(np.float32)
    _, mean, var, _ = numpy_bn.batch_norm_fwd(x, None, None, 1e-5)
    exact = x.astype(np.float64).var(axis=(0, 2))
    # float32 rounding of x itself is 1000 * 2**-24 = 6e-5, against a spread of 0.01
    np.testing.assert_allclose(var, exact, rtol=2e-3)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-6)


def test_numpy_results_repeat_bit_for_bit():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4, 9, 9)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.standard_normal(4).astype(np.float32)
    runs = []
    for _ in range(2):
        y, mean, var, inv_std = numpy_bn.batch_norm_fwd(x, w, w, 1e-5)
        runs.append([y, mean, var, *numpy_bn.batch_norm_bwd(gy, x, mean, inv_std, w)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


needs_cuda = pytest.mark.skipif(backends.cuda_unavailable_reason() is not None,
                                reason=f"cuda backend unavailable: {backends.cuda_unavailable_reason()}")


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, affine", [((5, 6, 3, 2), True), ((7, 3), False), ((3, 2, 5), True)])
@pytest.mark.parametrize("relu", [False, True], ids=["bn", "bn+relu"])
def test_cuda_kernels_match_numpy_and_repeat(dtype, shape, affine, relu):
    """5 and 7 images: uneven splits of 2 per block in the simulator; 6 channels: more than the
    simulator's 4 blocks.  A second launch gives the same bits (every ticket back at 0)."""
    from test_cuda_kernels import CU, NP, close, host
    from cuda_kernels import checks

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    b = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    want = NP.batch_norm_fwd(x, w, b, 1e-5, relu)
    want_g = NP.batch_norm_bwd(gy, x, want[1], want[3], w, True, want[0] if relu else None)
    dev = lambda a: None if a is None else CU.asarray(a)  # noqa: E731
    runs = []
    for _ in range(2):
        got = CU.batch_norm_fwd(dev(x), dev(w), dev(b), 1e-5, relu)
        got_g = CU.batch_norm_bwd(dev(gy), dev(x), got[1], got[3], dev(w), True,
                                  got[0] if relu else None)
        runs.append([host(a) for a in (*got, *got_g)])
        assert not host(checks.split_tickets(0)).any()
    for a, b_ in zip(*runs):
        np.testing.assert_array_equal(a, b_)
    for a, exp in zip(runs[0], [*want, *want_g]):
        close(a, exp, dtype)
    assert CU.batch_norm_bwd(dev(gy), dev(x), got[1], got[3], dev(w), need_input=False)[0] is None


@pytest.mark.parametrize("shape", [(6, 4, 5, 3), (9, 5)], ids=["2d", "1d"])
def test_batch_norm_then_relu_in_sequential_equals_the_two_ops_bit_for_bit(backend, shape):
    """nn.Sequential runs BatchNorm, ReLU as one pass (the ReLU in the normalise pass, its mask
    read by the backward); values and gradients are those of the two ops."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0] = np.nan  # a NaN passes both ways, as through nn.ReLU
    gy = rng.standard_normal(shape).astype(np.float32)
    bn = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1])
    bn.weight.data.copy_(gn.tensor(rng.standard_normal(shape[1]).astype(np.float32)))
    results = []
    for fused in (True, False):
        t = gn.tensor(x, requires_grad=True)
        bn.weight.grad = bn.bias.grad = None
        y = nn.Sequential(bn, nn.ReLU())(t) if fused else nn.ReLU()(bn(t))
        (y * gn.tensor(gy)).sum().backward()
        results.append([y.numpy(), t.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@st.composite
def batch_norm_pool_case(draw, size):
    pool = draw(st.integers(1, 3))
    n, c = draw(st.integers(2, size["n"])), draw(st.integers(1, size["c"]))
    h, w = (draw(st.integers(pool, pool + size["hw"])) for _ in range(2))
    return (n, c, h, w), pool, draw(st.booleans()), draw(st.integers(0, 2 ** 16))


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_batch_norm_relu_max_pool_matches_pytorch_over_its_geometry(backend):
    """The fused BatchNorm2d -> ReLU -> MaxPool2d (weights of either sign: the NumPy kernel
    pools -x where the scale is negative) against PyTorch's three ops."""
    @_settings(backend)
    @given(batch_norm_pool_case(SIZES[backend]))
    def check(case):
        shape, pool, affine, seed = case
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(shape) * 2 + 1
        w, b = (rng.standard_normal(shape[1]), rng.standard_normal(shape[1])) if affine else (None, None)
        _compare(backend,
                 lambda *a: F.batch_norm(a[0], None, None, *a[1:], training=True, _pool=pool),
                 lambda *a: TF.max_pool2d(TF.relu(TF.batch_norm(a[0], None, None, *a[1:], training=True)), pool),
                 [x, w, b], seed)

    check()


@pytest.mark.parametrize("shape", [(6, 3, 8, 6), (4, 2, 5, 7)], ids=["fused", "odd"])
def test_batch_norm_relu_max_pool_in_sequential_equals_the_three_ops(backend, shape):
    """nn.Sequential runs BatchNorm2d, ReLU, MaxPool2d(2) as one primitive in training: the
    values and running statistics of the three ops (bit for bit on NumPy), the gradients up to
    float32 summation order; in eval it runs the ops in turn."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    gp = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
    weight = np.linspace(-1, 1.5, shape[1]).astype(np.float32)  # one channel flips the pool
    results = []
    for fused in (True, False):
        bn = nn.BatchNorm2d(shape[1])
        bn.weight.data.copy_(gn.tensor(weight))
        t = gn.tensor(x, requires_grad=True)
        with gn.profiler.profile() as prof:
            y = (nn.Sequential(bn, nn.ReLU(), nn.MaxPool2d(2))(t) if fused
                 else nn.MaxPool2d(2)(nn.ReLU()(bn(t))))
        assert (f"{gn.get_backend().name}.batch_norm_relu_max_pool_fwd" in prof.rows) == fused
        (y * gn.tensor(gp)).sum().backward()
        results.append([y.numpy(), bn.running_mean.numpy(), bn.running_var.numpy(),
                        t.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy()])
        bn.eval()
        results[-1].append(nn.Sequential(bn, nn.ReLU(), nn.MaxPool2d(2))(gn.tensor(x)).numpy())
    (y_f, *rest_f), (y_u, *rest_u) = results
    same = (np.testing.assert_array_equal if gn.get_backend().name == "numpy"
            else lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6))
    same(y_f, y_u)
    for got, want in zip(rest_f[:2] + rest_f[5:], rest_u[:2] + rest_u[5:]):
        same(got, want)
    for got, want in zip(rest_f[2:5], rest_u[2:5]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_batch_norm_relu_max_pool_of_a_non_contiguous_input(backend):
    """A permuted view (not the conv output it usually is) gives the contiguous input's results."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((4, 6, 3, 8)).astype(np.float32)
    gp = rng.standard_normal((3, 4, 3, 4)).astype(np.float32)
    results = []
    for x in (base.transpose(2, 0, 1, 3), np.ascontiguousarray(base.transpose(2, 0, 1, 3))):
        bn = nn.BatchNorm2d(4)
        t = gn.tensor(x, requires_grad=True) if x.flags.c_contiguous else gn.tensor(base, requires_grad=True)
        y = nn.Sequential(bn, nn.ReLU(), nn.MaxPool2d(2))(t if x.flags.c_contiguous else t.permute(2, 0, 1, 3))
        (y * gn.tensor(gp)).sum().backward()
        g = t.grad.numpy() if x.flags.c_contiguous else t.grad.numpy().transpose(2, 0, 1, 3)
        results.append([y.numpy(), g, bn.weight.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _bn_relu_pool_pair(c, weight, bias, dtype):
    ours = nn.BatchNorm2d(c, dtype=dtype)
    theirs = torch.nn.BatchNorm2d(c, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    ours.weight.data.copy_(gn.tensor(weight))
    ours.bias.data.copy_(gn.tensor(bias))
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(weight))
        theirs.bias.copy_(torch.tensor(bias))
    return (nn.Sequential(ours, nn.ReLU(), nn.MaxPool2d(2)),
            torch.nn.Sequential(theirs, torch.nn.ReLU(), torch.nn.MaxPool2d(2)), ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_relu_max_pool_ties_in_y_route_as_pytorch(backend, dtype):
    """Channels whose normalised values tie although x differs: a zero scale (y is the bias,
    constant: PyTorch routes to each window's first element) and a constant channel; on NumPy
    also a scale tiny against the bias, where float32 rounds a window's y to a few values (the
    NumPy kernel then pools y as PyTorch's CPU kernel computes it, x * a + b; the cuda kernel
    computes (x - mean) * a + bias, whose ties fall elsewhere).  The gradients are PyTorch's,
    not those of the window's max x."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6, 6, 4)).astype(dtype)
    x[:, 5] = 2.0  # a constant channel
    tiny = 1e-7 if gn.get_backend().name == "numpy" else 0.9
    weight = np.array([0.0, -0.0, tiny, 1.3, -0.7, 1.0], dtype)
    bias = np.array([0.5, 0.5, 1.0, 0.2, -0.3, 0.1], dtype)
    gp = rng.standard_normal((4, 6, 3, 2)).astype(dtype)
    seq, tseq, ours, theirs = _bn_relu_pool_pair(6, weight, bias, dtype)
    t, tt = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (seq(t) * gn.tensor(gp)).sum().backward()
    (tseq(tt) * torch.tensor(gp)).sum().backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for got, want in ((t.grad.numpy(), tt.grad.numpy()), (ours.weight.grad.numpy(), theirs.weight.grad.numpy()),
                      (ours.bias.grad.numpy(), theirs.bias.grad.numpy())):
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("first", ["batch_norm", "conv"])
def test_fused_pools_allow_an_in_place_change_of_their_output(backend, first):
    """PyTorch's max pool saves its input and indices, so y.add_(1) before backward is fine
    there; the fused ops keep the ReLU's mask from the forward, not the output's values."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    gp = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    layer = nn.BatchNorm2d(2) if first == "batch_norm" else nn.Conv2d(2, 2, 3, padding=1)
    grads = []
    for fused in (True, False):
        t = gn.tensor(x, requires_grad=True)
        y = (nn.Sequential(layer, nn.ReLU(), nn.MaxPool2d(2))(t) if fused
             else nn.MaxPool2d(2)(nn.ReLU()(layer(t))))
        y.add_(1.0)
        (y * gn.tensor(gp)).sum().backward()
        grads.append(t.grad.numpy())
        for p in layer.parameters():
            grads.append(p.grad.numpy())
            p.grad = None
    half = len(grads) // 2
    for got, want in zip(grads[:half], grads[half:]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_batch_norm_relu_max_pool_refuses_an_in_place_change_of_its_input(backend):
    leaf = gn.tensor(np.random.default_rng(3).standard_normal((2, 2, 4, 4)).astype(np.float32),
                     requires_grad=True)
    t = leaf * 1
    y = nn.Sequential(nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2))(t)
    t.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
