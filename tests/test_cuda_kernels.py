"""Every cuda-backend primitive against the NumPy backend, forward and backward (the random
kernels: test_cuda_kernels_random.py).

Without a GPU these run in Numba's CUDA simulator (conftest sets NUMBA_ENABLE_CUDASIM=1), one
Python thread per CUDA thread, so shapes stay tiny; the simulator's launch geometry (32-thread
blocks, at most 4 blocks) makes every grid-stride and block-reduction loop take several trips.

Tolerances: float64 results differ only by summation order (GEMM, window sums), so 1e-12
relative; float32 sums of at most ~60 O(1) terms carry a few ulps (eps = 1.2e-7) each, so
2e-5.  Max-pool routing and relu are exact: compared with ``assert_array_equal``.
"""
import numpy as np
import pytest

from gpunet import backends
from gpunet.backends.numpy_backend import NumpyBackend

if backends.cuda_unavailable_reason() is not None:
    pytest.skip(f"cuda backend unavailable: {backends.cuda_unavailable_reason()}",
                allow_module_level=True)

from numba import cuda  # noqa: E402  (after the skip: numba comes with the cuda backend)

from cuda_kernels import _launch  # noqa: E402
from cuda_kernels._device import covering_windows, unravel_plane  # noqa: E402

CU = backends.backend("cuda")
NP = NumpyBackend()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def dev(a):
    return CU.asarray(a)


def host(a):
    return CU.to_host(a)


def close(got, want, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(host(got), want, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_backend_identity():
    assert CU.name == "cuda"
    assert backends.cuda_unavailable_reason() is None
    x = dev(np.arange(3.0))
    assert CU.is_array(x) and isinstance(host(x), np.ndarray)


@cuda.jit
def window_helpers_kernel(cases, out):
    """covering_windows of each (h, pad, k, s, n_out) row and unravel_plane(row, 3, 4)."""
    for i in range(cuda.grid(1), cases.shape[0], cuda.gridsize(1)):
        h, pad, k, s, n_out = cases[i, 0], cases[i, 1], cases[i, 2], cases[i, 3], cases[i, 4]
        out[i, 0], out[i, 1] = covering_windows(h, pad, k, s, n_out)
        out[i, 2], out[i, 3], out[i, 4] = unravel_plane(i, 3, 4)


def test_window_index_helpers_match_brute_force():
    # The device functions behind every pooling and col2im kernel, run in a kernel of their
    # own over all small geometries (k, s <= 4, legal padding, inputs up to 9 wide).
    cases, want = [], []
    for k in range(1, 5):
        for s in range(1, 5):
            for pad in range(0, k // 2 + 1):
                for size in range(k, 10):
                    n_out = (size + 2 * pad - k) // s + 1
                    for h in range(size):
                        cover = [o for o in range(n_out) if o * s - pad <= h <= o * s - pad + k - 1]
                        cases.append((h, pad, k, s, n_out))
                        want.append(cover)
    cases = np.array(cases, dtype=np.int64)
    out = CU.xp.zeros((len(cases), 5), dtype=np.int64)
    _launch.launch(window_helpers_kernel, _launch.blocks_for(len(cases)), _launch.TPB, dev(cases), out)
    out = host(out)
    for i, (case, cover) in enumerate(zip(cases, want)):
        assert list(range(out[i, 0], out[i, 1] + 1)) == cover, tuple(case)
        assert tuple(out[i, 2:]) == (i // 12, i % 12 // 4, i % 4)


# x shape, w shape, stride, padding, with bias
CONV_CASES = [
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0), True),
    ((2, 3, 7, 5), (5, 3, 3, 2), (2, 1), (1, 2), False),
    ((3, 1, 5, 7), (1, 1, 1, 3), (1, 3), (0, 1), True),
    ((1, 3, 7, 7), (3, 3, 3, 3), (2, 2), (1, 1), True),
    ((2, 2, 6, 7), (3, 2, 1, 2), (2, 3), (0, 1), False),  # stride > kernel: gaps
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, stride, padding, bias", CONV_CASES)
def test_conv2d(rng, dtype, xs, ws, stride, padding, bias):
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    y_n, s_n = NP.conv2d_fwd(x, w, b, stride, padding)
    y_c, s_c = CU.conv2d_fwd(dev(x), dev(w), None if b is None else dev(b), stride, padding)
    assert y_c.shape == y_n.shape and y_c.dtype == dtype
    close(y_c, y_n, dtype)
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    close(CU.conv2d_bwd_data(dev(gy), dev(w), xs, stride, padding, s_c),
          NP.conv2d_bwd_data(gy, w, xs, stride, padding, s_n), dtype)
    gw_n = NP.conv2d_bwd_weight(gy, x, ws, stride, padding, s_n)
    close(CU.conv2d_bwd_weight(dev(gy), dev(x), ws, stride, padding, s_c), gw_n, dtype)
    close(CU.conv2d_bwd_weight(dev(gy), dev(x), ws, stride, padding, None), gw_n, dtype)
    close(CU.conv2d_bwd_bias(dev(gy)), NP.conv2d_bwd_bias(gy), dtype)


# x shape, w shape, stride, padding, dilation, groups
GENERAL_CONV_CASES = [
    ((2, 4, 7, 6), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2),
    ((1, 3, 8, 7), (3, 1, 3, 2), (2, 1), (2, 0), (2, 3), 3),  # depthwise, dilated, strided
    ((2, 2, 9, 9), (3, 2, 3, 3), (1, 2), (0, 1), (3, 1), 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", GENERAL_CONV_CASES)
def test_grouped_and_dilated_conv2d(rng, dtype, xs, ws, stride, padding, dilation, groups):
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    kw = dict(dilation=dilation, groups=groups)
    y_n, s_n = NP.conv2d_fwd(x, w, b, stride, padding, **kw)
    y_c, s_c = CU.conv2d_fwd(dev(x), dev(w), dev(b), stride, padding, **kw)
    close(y_c, y_n, dtype)
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    close(CU.conv2d_bwd_data(dev(gy), dev(w), xs, stride, padding, s_c, **kw),
          NP.conv2d_bwd_data(gy, w, xs, stride, padding, s_n, **kw), dtype)
    gw_n = NP.conv2d_bwd_weight(gy, x, ws, stride, padding, s_n, **kw)
    close(CU.conv2d_bwd_weight(dev(gy), dev(x), ws, stride, padding, s_c, **kw), gw_n, dtype)
    close(CU.conv2d_bwd_weight(dev(gy), dev(x), ws, stride, padding, None, **kw), gw_n, dtype)


# kernel, stride, padding: overlapping windows (k > s), non-square, padded, k == s
POOL_CASES = [
    ((3, 3), (2, 2), (1, 1)),
    ((2, 3), (1, 2), (0, 1)),
    ((2, 2), (2, 2), (0, 0)),
    ((3, 1), (1, 1), (1, 0)),
    ((1, 2), (3, 3), (0, 1)),  # stride > kernel: inputs between windows get no gradient
]
POOL_SHAPE = (2, 3, 7, 6)


def _pool_inputs(rng, dtype, kind):
    if kind == "ties":  # rounded values: many equal maxima inside one window
        return np.round(rng.standard_normal(POOL_SHAPE)).astype(dtype)
    if kind == "constant":  # every window tied everywhere: the first element must win
        return np.full(POOL_SHAPE, 0.5, dtype=dtype)
    if kind == "nans":  # a NaN takes over its windows; the last NaN of a window wins
        x = rng.standard_normal(POOL_SHAPE)
        return np.where(rng.random(POOL_SHAPE) < 0.3, np.nan, x).astype(dtype)
    return -np.abs(rng.standard_normal(POOL_SHAPE)).astype(dtype) - 1  # padding must not win


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["ties", "constant", "negative", "nans"])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
def test_max_pool2d(rng, dtype, kind, ceil_mode, kernel, stride, padding):
    x = _pool_inputs(rng, dtype, kind)
    y_n, a_n = NP.max_pool2d_fwd(x, kernel, stride, padding, ceil_mode=ceil_mode)
    y_c, a_c = CU.max_pool2d_fwd(dev(x), kernel, stride, padding, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(host(y_c), y_n)  # NaNs in the same places compare equal
    # Small integers sum exactly in any order, so routing differences cannot hide.
    gy = rng.integers(1, 5, size=y_n.shape).astype(dtype)
    g_n = NP.max_pool2d_bwd(gy, a_n, x.shape, kernel, stride, padding, ceil_mode=ceil_mode)
    g_c = CU.max_pool2d_bwd(dev(gy), a_c, x.shape, kernel, stride, padding, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(host(g_c), g_n)
    assert host(g_c).sum() == gy.sum()  # every output routes to exactly one input


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
def test_avg_pool2d(rng, dtype, kernel, stride, padding):
    x = rng.standard_normal(POOL_SHAPE).astype(dtype)
    y_n = NP.avg_pool2d_fwd(x, kernel, stride, padding)
    close(CU.avg_pool2d_fwd(dev(x), kernel, stride, padding), y_n, dtype)
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    close(CU.avg_pool2d_bwd(dev(gy), x.shape, kernel, stride, padding),
          NP.avg_pool2d_bwd(gy, x.shape, kernel, stride, padding), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu(rng, dtype):
    x = rng.standard_normal((3, 10, 11)).astype(dtype)  # 330 elements: several grid strides
    x[0, 0, :3] = 0.0
    x[1, 1, :2] = np.nan  # NaN passes forward and its gradient passes backward
    xt = x.transpose(2, 0, 1)  # non-contiguous input
    y_n = NP.relu_fwd(xt)
    y_c = CU.relu_fwd(dev(xt))
    np.testing.assert_array_equal(host(y_c), y_n)
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    np.testing.assert_array_equal(host(CU.relu_bwd(dev(gy), y_c)), NP.relu_bwd(gy, y_n))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.01, 0.5])
def test_leaky_relu(rng, dtype, slope):
    x = rng.standard_normal((3, 10, 11)).astype(dtype)  # several grid strides
    x[0, 0, :3] = 0.0  # x = 0 takes the slope backward, as in PyTorch
    x[1, 1, :2] = np.nan
    xt = x.transpose(2, 0, 1)  # non-contiguous input
    y_n = NP.leaky_relu_fwd(xt, slope)
    np.testing.assert_array_equal(host(CU.leaky_relu_fwd(dev(xt), slope)), y_n)
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    np.testing.assert_array_equal(host(CU.leaky_relu_bwd(dev(gy), dev(xt), slope)),
                                  NP.leaky_relu_bwd(gy, xt, slope))


# rows, classes: C=1, small C, C > a block (300 > 256 threads), rows > simulated grid (5 > 4)
SCE_CASES = [(3, 1), (5, 7), (2, 300)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("n, c", SCE_CASES)
def test_softmax_cross_entropy(rng, dtype, scale, n, c):
    logits = (rng.standard_normal((n, c)) * scale).astype(dtype)
    labels = rng.integers(0, c, size=n)
    loss_n, p_n, _ = NP.softmax_cross_entropy_fwd(logits, labels)
    loss_c, p_c, _ = CU.softmax_cross_entropy_fwd(dev(logits), dev(labels))
    assert np.isfinite(host(loss_c)).all() and host(loss_c).dtype == dtype
    # The loss carries the rounding of logits of size `scale`: relative tolerance covers it.
    close(loss_c, loss_n, dtype, scale=scale)
    close(p_c, p_n, dtype)
    gloss = rng.standard_normal(n).astype(dtype)
    close(CU.softmax_cross_entropy_bwd(p_c, dev(labels), dev(gloss)),
          NP.softmax_cross_entropy_bwd(p_n, labels, gloss), dtype)


def test_softmax_cross_entropy_int32_labels(rng):
    logits = rng.standard_normal((4, 9))
    labels = np.array([0, 8, 3, 3], dtype=np.int32)
    loss_n, p_n, _ = NP.softmax_cross_entropy_fwd(logits, labels)
    loss_c, p_c, _ = CU.softmax_cross_entropy_fwd(dev(logits), dev(labels))
    close(loss_c, loss_n, np.float64)
    close(CU.softmax_cross_entropy_bwd(p_c, dev(labels), dev(np.full(4, 0.25))),
          NP.softmax_cross_entropy_bwd(p_n, labels, np.full(4, 0.25)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_range_check_flags_only_values_outside(dtype):
    from cuda_kernels import checks

    inside = np.linspace(0.0, 1.0, 150).astype(dtype)  # both ends included: 150 > simulated grid
    cases = [(inside, 0), (np.append(inside, 1.0001), 1), (np.insert(inside, 70, -1e-30), 1),
             (np.append(inside, np.nan), 1), (inside[:0], 0)]
    for values, want in cases:
        flags = CU.xp.zeros(3, dtype=np.int32)
        checks.flag_outside_range(dev(values), 0.0, 1.0, flags, 2)
        np.testing.assert_array_equal(host(flags), [0, 0, want])
    with pytest.raises(ValueError, match="slot 3 is outside flags of shape"):
        checks.flag_outside_range(dev(inside), 0.0, 1.0, CU.xp.zeros(3, dtype=np.int32), 3)


def _run_steps(be, update, arrays, rng_seed, steps=3):
    """Apply ``update`` for a few steps with the same gradients on both backends."""
    g_rng = np.random.default_rng(rng_seed)
    state = [be.asarray(a.copy()) for a in arrays]
    for i in range(steps):
        grad = be.asarray(g_rng.standard_normal(arrays[0].shape).astype(arrays[0].dtype))
        update(be, state, grad, i)
    return [be.to_host(a) for a in state]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, dampening, wd, nesterov", [
    (0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False), (0.9, 0.1, 1e-2, False),
    (0.9, 0.0, 1e-2, True),
])
def test_sgd_update(rng, dtype, momentum, dampening, wd, nesterov):
    p0 = rng.standard_normal((5, 7)).astype(dtype)  # 35 elements: several grid strides

    def update(be, state, grad, i):
        be.sgd_update(state[0], grad, state[1], 0.1, momentum, dampening, wd, nesterov, i == 0)

    got = _run_steps(CU, update, [p0, np.zeros_like(p0)], 7)
    want = _run_steps(NP, update, [p0, np.zeros_like(p0)], 7)
    for g, w in zip(got, want):
        close(g, w, dtype)


def test_sgd_update_without_buffer(rng):
    p = rng.standard_normal(40)
    p_c = dev(p.copy())  # in the simulator dev() does not copy
    g = rng.standard_normal(40)
    CU.sgd_update(p_c, dev(g), None, 0.5, 0.0, 0.0, 0.0, False, True)
    close(p_c, p - 0.5 * g, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd, decoupled", [(0.0, False), (1e-2, False), (1e-2, True)])
def test_adam_update(rng, dtype, wd, decoupled):
    p0 = rng.standard_normal((6, 6)).astype(dtype)

    def update(be, state, grad, i):
        be.adam_update(state[0], grad, state[1], state[2], 1e-2, 0.9, 0.999, 1e-8, wd,
                       i + 1, decoupled)

    init = [p0, np.zeros_like(p0), np.zeros_like(p0)]
    for g, w in zip(_run_steps(CU, update, init, 11), _run_steps(NP, update, init, 11)):
        close(g, w, dtype)


def test_empty_batch_conv_and_non_contiguous_parameter_updates():
    """Issue 12's defects: conv2d with an empty batch, SGD/Adam on a non-contiguous parameter."""
    x = np.zeros((0, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    for be in (CU, NP):
        y, saved = be.conv2d_fwd(be.asarray(x), be.asarray(w), be.asarray(np.ones(3)), (1, 1), (1, 1))
        assert y.shape == (0, 3, 5, 5)
        gy = be.asarray(np.zeros((0, 3, 5, 5)))
        assert be.conv2d_bwd_data(gy, be.asarray(w), x.shape, (1, 1), (1, 1), saved).shape == x.shape
        assert host(be.conv2d_bwd_weight(gy, be.asarray(x), w.shape, (1, 1), (1, 1), saved)).sum() == 0
        assert host(be.conv2d_bwd_bias(gy)).tolist() == [0, 0, 0]
    base = np.arange(12.0).reshape(3, 4)
    for make in (lambda be, p, g, st: be.sgd_update(p, g, st[0], 0.1, 0.9, 0.0, 0.0, False, False),
                 lambda be, p, g, st: be.adam_update(p, g, st[0], st[1], 0.1, 0.9, 0.999, 1e-8,
                                                     0.0, 1, False)):
        results = []
        for be in (CU, NP):
            p = be.asarray(base.copy()).T  # a non-contiguous parameter
            state = [be.asarray(np.ones((3, 4))).T, be.asarray(np.ones((3, 4))).T]
            make(be, p, be.asarray(np.ones((4, 3))), state)
            results.append((host(p), host(state[0])))
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
        assert not np.array_equal(results[0][0], base.T)  # the update landed in the original
