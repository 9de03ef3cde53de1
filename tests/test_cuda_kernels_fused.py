"""The fused primitives of the GPU step (issue 12), cuda against the NumPy backend, forward and
backward: the conv and linear bias + ReLU epilogues, conv -> ReLU -> max pool, and the
softmax cross-entropy that reduces its own mean or sum.

Without a GPU these run in Numba's CUDA simulator.  Tolerances as in test_cuda_kernels.py:
float64 differs only by summation order (1e-12), float32 by a few ulps per summed term (2e-5);
ReLU masks and pool routing are exact.
"""
import numpy as np
import pytest

from gpunet import backends

if backends.cuda_unavailable_reason() is not None:
    pytest.skip(f"cuda backend unavailable: {backends.cuda_unavailable_reason()}",
                allow_module_level=True)

from test_cuda_kernels import CU, DTYPES, NP, close, host  # noqa: E402  (after the skip)


@pytest.fixture
def rng():
    return np.random.default_rng(77)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu, need_bias", [(True, True), (False, True), (True, False)])
def test_linear_epilogue(rng, dtype, relu, need_bias):
    y0 = rng.standard_normal((5, 37)).astype(dtype)  # 37 columns: more than one column tile
    b = rng.standard_normal(37).astype(dtype)
    y_c = CU.bias_relu_fwd(CU.asarray(y0.copy()), CU.asarray(b), relu)
    y_n = NP.bias_relu_fwd(y0.copy(), b, relu)
    np.testing.assert_array_equal(host(y_c), y_n)  # one add, one max: exact
    gy = rng.standard_normal(y0.shape).astype(dtype)
    g_c, gb_c = CU.bias_relu_bwd(CU.asarray(gy), y_c, relu, need_bias)
    g_n, gb_n = NP.bias_relu_bwd(gy, y_n, relu, need_bias)
    np.testing.assert_array_equal(host(g_c), g_n)
    if need_bias:
        close(gb_c, gb_n, dtype)
    else:
        assert gb_c is None and gb_n is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_epilogue_forward_and_backward(rng, dtype):
    x = rng.standard_normal((3, 2, 6, 5)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y_c, cols_c = CU.conv2d_fwd(CU.asarray(x), CU.asarray(w), CU.asarray(b), (1, 1), (1, 1), relu=True)
    y_n, cols_n = NP.conv2d_fwd(x, w, b, (1, 1), (1, 1), relu=True)
    close(y_c, y_n, dtype)
    assert (y_n == 0).any() and (y_n > 0).any()
    gy = rng.standard_normal(y_n.shape).astype(dtype)
    # the mask comes from each backend's own output, so compare through the same y
    g_c, gb_c = CU.conv2d_bwd_bias_relu(CU.asarray(gy), CU.asarray(y_n), True, True)
    g_n, gb_n = NP.conv2d_bwd_bias_relu(gy, y_n, True, True)
    close(gb_c, gb_n, dtype)
    args = ((1, 1), (1, 1))
    close(CU.conv2d_bwd_data(g_c, CU.asarray(w), x.shape, *args, cols_c),
          NP.conv2d_bwd_data(g_n, w, x.shape, *args, cols_n), dtype)
    close(CU.conv2d_bwd_weight(g_c, CU.asarray(x), w.shape, *args, cols_c),
          NP.conv2d_bwd_weight(g_n, x, w.shape, *args, cols_n), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(6, 8), (5, 7)], ids=["fused", "odd"])
def test_conv_relu_max_pool(rng, dtype, hw):
    x = rng.standard_normal((3, 2) + hw).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    p_c, cols_c, s_c = CU.conv2d_relu_max_pool_fwd(CU.asarray(x), CU.asarray(w), CU.asarray(b),
                                                   (1, 1), (1, 1), 2)
    p_n, cols_n, s_n = NP.conv2d_relu_max_pool_fwd(x, w, b, (1, 1), (1, 1), 2)
    close(p_c, p_n, dtype)
    gp = rng.standard_normal(p_n.shape).astype(dtype)
    g_c, gb_c = CU.conv2d_relu_max_pool_bwd(CU.asarray(gp), s_c)
    g_n, gb_n = NP.conv2d_relu_max_pool_bwd(gp, s_n)
    close(gb_c, gb_n, dtype)
    args = ((1, 1), (1, 1))
    close(CU.conv2d_bwd_weight(g_c, CU.asarray(x), w.shape, *args, cols_c),
          NP.conv2d_bwd_weight(g_n, x, w.shape, *args, cols_n), dtype)


def test_each_stream_has_its_own_loss_ticket(monkeypatch):
    """Two launches in flight on two streams must not count each other's blocks."""
    from cuda_kernels import _launch, checks

    on = {"stream": 1}
    monkeypatch.setattr(_launch, "stream_key", lambda: (0, on["stream"]))
    first = checks.reduction_ticket()
    on["stream"] = 2
    second = checks.reduction_ticket()
    assert first is not second and int(host(second)[0]) == 0
    on["stream"] = 1
    assert checks.reduction_ticket() is first


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n, c", [(5, 7), (9, 3)])  # 9 rows: more rows than simulated blocks
def test_softmax_cross_entropy_reduced_in_the_kernel(rng, dtype, reduction, n, c):
    logits = rng.standard_normal((n, c)).astype(dtype)
    labels = rng.integers(0, c, size=n)
    loss_c, p_c, _ = CU.softmax_cross_entropy_fwd(CU.asarray(logits), CU.asarray(labels), reduction)
    loss_n, p_n, _ = NP.softmax_cross_entropy_fwd(logits, labels, reduction)
    assert host(loss_c).shape == () and host(loss_c).dtype == dtype
    close(loss_c, loss_n, dtype)
    for _ in range(2):  # the block ticket is reset: a second launch reduces correctly too
        again, _, _ = CU.softmax_cross_entropy_fwd(CU.asarray(logits), CU.asarray(labels), reduction)
        close(again, loss_n, dtype)
    gloss = np.asarray(0.7, dtype)
    close(CU.softmax_cross_entropy_bwd(p_c, CU.asarray(labels), CU.asarray(gloss), reduction),
          NP.softmax_cross_entropy_bwd(p_n, labels, gloss, reduction), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, smoothing", [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.1)])
def test_softmax_cross_entropy_weight_ignore_index_and_smoothing(rng, dtype, reduction, weighted, smoothing):
    """PyTorch's class weights, ignore_index and label_smoothing in the same fused launches:
    9 rows (more than the simulator's blocks), two of them ignored (-1), one label 0."""
    n, c = 9, 5
    logits = rng.standard_normal((n, c)).astype(dtype)
    labels = np.array([0, -1, 4, 2, -1, 1, 3, 3, 0])
    weight = rng.uniform(0.5, 2.0, c).astype(dtype) if weighted else None
    args = (reduction, weight, -1, smoothing)
    loss_c, p_c, w_c = CU.softmax_cross_entropy_fwd(CU.asarray(logits), CU.asarray(labels), reduction,
                                                    None if weight is None else CU.asarray(weight), -1,
                                                    smoothing)
    loss_n, p_n, w_n = NP.softmax_cross_entropy_fwd(logits, labels, *args)
    close(loss_c, loss_n, dtype)
    if reduction != "none":
        close(host(w_c)[:1], w_n[:1], dtype)  # the mean's divisor
    gloss = rng.standard_normal(n).astype(dtype) if reduction == "none" else np.asarray(0.7, dtype)
    close(CU.softmax_cross_entropy_bwd(p_c, CU.asarray(labels), CU.asarray(gloss), reduction,
                                       None if weight is None else CU.asarray(weight), -1, smoothing, w_c),
          NP.softmax_cross_entropy_bwd(p_n, labels, gloss, *args, w_n), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_reductions_are_exact_repeatable_and_leave_their_tickets_at_zero(rng, dtype):
    """Bias (conv and linear) and LayerNorm parameter gradients are summed in splits of rows
    (2 per block in the simulator): 5 rows make 3 uneven splits, 6 channels more than the
    simulator's 4 blocks, 37 columns several tiles.  A second launch gives the same bits, so
    each launch sets every ticket it took back to 0."""
    from cuda_kernels import checks, layer_norm

    gy = rng.standard_normal((5, 6, 3, 2)).astype(dtype)
    gm = rng.standard_normal((5, 37)).astype(dtype)
    x = rng.standard_normal((5, 37)).astype(dtype)
    w, b = np.ones(37, dtype), np.zeros(37, dtype)
    _, saved = layer_norm.layer_norm_fwd(CU.asarray(x), CU.asarray(w), CU.asarray(b), 1e-5)
    runs = []
    for _ in range(2):
        runs.append([host(CU.conv2d_bwd_bias(CU.asarray(gy))),
                     host(CU.bias_relu_bwd(CU.asarray(gm), CU.asarray(gm), False, True)[1]),
                     *(host(a) for a in layer_norm.layer_norm_bwd(CU.asarray(gm), CU.asarray(x),
                                                                  CU.asarray(w), saved)[1:])])
        assert not host(checks.split_tickets(0)).any()
    for a, b_ in zip(*runs):
        np.testing.assert_array_equal(a, b_)
    close(runs[0][0], NP.conv2d_bwd_bias(gy), dtype)
    close(runs[0][1], gm.sum(axis=0), dtype)
    _, saved_n = NP.layer_norm_fwd(x, w, b, 1e-5)
    _, gw_n, gb_n = NP.layer_norm_bwd(gm, x, w, saved_n)
    close(runs[0][2], gw_n, dtype)
    close(runs[0][3], gb_n, dtype)


def test_a_batch_of_64_splits_each_channel_over_4_blocks():
    from cuda_kernels import _launch

    assert _launch.splits_for(64, 16) == (4, 16) and _launch.splits_for(256, 16) == (16, 16)
    assert _launch.splits_for(10 ** 7, 16)[0] == 65535  # a grid's y extent at most


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_relu_max_pool_passes_nan_and_blocks_the_relu_as_the_numpy_twin(dtype):
    """A 1x1 identity conv, so the conv output is x: a window holding a NaN pools to NaN and
    passes its gradient; a window of negatives pools to 0 and passes none; ties go first."""
    x = np.array([[[[np.nan, 1.0, -1.0, -2.0],
                    [0.5, 2.0, -3.0, -0.5],
                    [3.0, 3.0, 0.0, 0.0],
                    [1.0, -1.0, 0.0, 0.0]]]], dtype)
    w, b = np.ones((1, 1, 1, 1), dtype), np.zeros(1, dtype)
    p_c, _, s_c = CU.conv2d_relu_max_pool_fwd(CU.asarray(x), CU.asarray(w), CU.asarray(b),
                                              (1, 1), (0, 0), 2)
    p_n, _, s_n = NP.conv2d_relu_max_pool_fwd(x, w, b, (1, 1), (0, 0), 2)
    np.testing.assert_array_equal(host(p_c), p_n)  # NaN where NaN; selections only: exact
    assert np.isnan(p_n[0, 0, 0, 0]) and p_n[0, 0, 0, 1] == 0
    gp = np.arange(1, 5, dtype=dtype).reshape(1, 1, 2, 2)
    g_c, gb_c = CU.conv2d_relu_max_pool_bwd(CU.asarray(gp), s_c)
    g_n, gb_n = NP.conv2d_relu_max_pool_bwd(gp, s_n)
    np.testing.assert_array_equal(host(g_c).reshape(-1), np.asarray(g_n).reshape(-1))
    np.testing.assert_array_equal(host(gb_c), gb_n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, pool", [((4, 6), 2), ((5, 7), 2), ((6, 6), 3)],
                         ids=["fused", "odd", "pool3"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_relu_max_pool(rng, dtype, hw, pool, affine):
    x = rng.standard_normal((3, 2) + hw).astype(dtype)
    # channel 1's weight is negative: the NumPy twin pools -x there
    w = np.array([1.3, -0.7], dtype) if affine else None
    b = np.array([-0.8, -1.2], dtype) if affine else None
    dev = (lambda a: None if a is None else CU.asarray(a))
    out_c = CU.batch_norm_relu_max_pool_fwd(CU.asarray(x), dev(w), dev(b), 1e-5, pool)
    out_n = NP.batch_norm_relu_max_pool_fwd(x, w, b, 1e-5, pool)
    for got, want in zip(out_c[:4], out_n[:4]):
        close(got, want, dtype)
    if affine:
        assert (out_n[0] == 0).any() and (out_n[0] > 0).any()  # the ReLU both stops and passes
    gp = rng.standard_normal(out_n[0].shape).astype(dtype)
    for need_input in (True, False):
        got = CU.batch_norm_relu_max_pool_bwd(CU.asarray(gp), out_c[4], out_c[1], out_c[3], dev(w),
                                              need_input)
        want = NP.batch_norm_relu_max_pool_bwd(gp, out_n[4], out_n[1], out_n[3], w, need_input)
        assert (got[0] is None) == (want[0] is None) == (not need_input)
        for g, e in zip(got, want):
            if e is not None:
                close(g, e, dtype)


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_batch_norm_kernels_take_weight_or_bias_alone_as_numpy_does(rng, which):
    """The missing one of the pair is the identity (ones or zeros) on both backends."""
    x = rng.standard_normal((3, 2, 4, 4))
    v = np.array([1.5, -0.5])
    w, b = (v, None) if which == "weight" else (None, v)
    dev = (lambda a: None if a is None else CU.asarray(a))
    close(CU.batch_norm_fwd(CU.asarray(x), dev(w), dev(b), 1e-5)[0],
          NP.batch_norm_fwd(x, w, b, 1e-5)[0], np.float64)
    close(CU.batch_norm_relu_max_pool_fwd(CU.asarray(x), dev(w), dev(b), 1e-5)[0],
          NP.batch_norm_relu_max_pool_fwd(x, w, b, 1e-5)[0], np.float64)
