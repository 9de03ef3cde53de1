"""Channels-last arrays on the NumPy backend: patch-row convs write their outputs and input
gradients channels-last (``numpy_kernels/_im2row.channels_last``), and BatchNorm, ReLU, 1x1
convs and adds keep that layout, so a ResNet's chain of convs skips the NCHW <-> NHWC copies.
Values never depend on the layout: every chain here matches PyTorch in float64, and every
kernel given mixed layouts matches itself given NCHW arrays.

Tolerance: float64 sums of the same terms in another order differ by a few ulps of the largest
partial sum; BatchNorm divides by the batch's standard deviation (drawn >= 2 values per
channel, N(0, 1) inputs), so 1e-9 is still ~1e6 ulps below any misplaced term.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpunet as gn
from gpunet import functional as F
from numpy_kernels import _conv_pointwise, _im2row, activation, batch_norm

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-9, atol=1e-9)


def last(a):
    """``a`` (N, C, H, W) with the same values in channels-last memory."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _block(ns, x, w1, w2, ws, g1, b1, g2, b2, stride):
    """A ResNet basic block with a 1x1 shortcut, in ``ns``'s functional names."""
    out = ns.relu(ns.batch_norm(ns.conv2d(x, w1, stride=stride, padding=1), None, None, g1, b1,
                                training=True))
    out = ns.batch_norm(ns.conv2d(out, w2, padding=1), None, None, g2, b2, training=True)
    return ns.relu(out + ns.conv2d(x, ws, stride=stride))


@st.composite
def block_geometry(draw):
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 7)), draw(st.integers(2, 7))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ho, wo = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
    if n * ho * wo < 2:  # BatchNorm needs two values per channel
        n += 1
    return dict(n=n, cin=draw(st.integers(1, 4)), cout=draw(st.integers(1, 4)), h=h, w=w,
                stride=stride, seed=draw(st.integers(0, 2 ** 16)))


def test_resnet_block_on_channels_last_arrays_matches_pytorch(monkeypatch):
    """With patch rows for every channel count, each conv of the block gives channels-last
    arrays and the BatchNorms, ReLUs, 1x1 shortcut and add run on them: forward and every
    gradient agree with torch over drawn shapes and strides."""
    monkeypatch.setattr(_im2row, "ROWS_MIN_CHANNELS", 1)

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(block_geometry())
    def check(g):
        rng = np.random.default_rng(g["seed"])
        ci, co = g["cin"], g["cout"]
        arrays = [rng.standard_normal((g["n"], ci, g["h"], g["w"])), rng.standard_normal((co, ci, 3, 3)),
                  rng.standard_normal((co, co, 3, 3)), rng.standard_normal((co, ci, 1, 1)),
                  *(rng.standard_normal(co) for _ in range(4))]
        ours = [gn.tensor(a, requires_grad=True) for a in arrays]
        assert _im2row.channels_last(F.conv2d(ours[0], ours[1], padding=1)._data) is not None
        y = _block(F, *ours, g["stride"])
        gy = rng.standard_normal(y.shape)
        (y * gn.tensor(gy)).sum().backward()
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        ty = _block(TF, *theirs, g["stride"])
        (ty * torch.tensor(gy)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), err_msg="output", **TOL)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"grad {i}", **TOL)

    check()


def test_view_of_a_channels_last_conv_output_flattens_in_pytorch_order():
    """``y.view(n, -1)`` of a channels-last conv output lists its values in (C, H, W) order, as
    PyTorch's contiguous output does, and the gradient flows back through it."""
    rng = np.random.default_rng(0)
    x, w, lin = rng.standard_normal((2, 16, 5, 5)), rng.standard_normal((16, 16, 3, 3)), rng.standard_normal((3, 400))
    ours = [gn.tensor(a, requires_grad=True) for a in (x, w, lin)]
    y = F.conv2d(ours[0], ours[1], padding=1)
    assert _im2row.channels_last(y._data) is not None and not y._data.flags.c_contiguous
    (y.view(2, -1) @ ours[2].T).sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, lin)]
    ty = TF.conv2d(theirs[0], theirs[1], padding=1)
    (ty.view(2, -1) @ theirs[2].T).sum().backward()
    np.testing.assert_allclose(y.view(2, -1).numpy(), ty.view(2, -1).detach().numpy(), **TOL)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL)


LAYOUTS = ["CC", "CL", "LC", "LL"]  # (gradient, forward value): NCHW or channels-last


def _as(layout, a):
    return last(a) if layout == "L" else np.ascontiguousarray(a)


@pytest.mark.parametrize("layouts", LAYOUTS)
def test_relu_bwd_given_mixed_layouts_matches_nchw(layouts):
    rng = np.random.default_rng(1)
    gy, y = rng.standard_normal((2, 16, 4, 3)), np.maximum(rng.standard_normal((2, 16, 4, 3)), 0)
    got = activation.relu_bwd(_as(layouts[0], gy), _as(layouts[1], y))
    np.testing.assert_array_equal(got, activation.relu_bwd(gy, y))
    assert (layouts[1] == "L") == (not got.flags.c_contiguous)  # gx in y's layout


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("layouts", LAYOUTS)
def test_batch_norm_given_mixed_layouts_matches_nchw(layouts, relu):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 16, 5, 7)) * 2 + 1
    weight, bias = rng.standard_normal(16), rng.standard_normal(16)
    gy = rng.standard_normal(x.shape)
    y, mean, var, inv_std = batch_norm.batch_norm_fwd(_as(layouts[1], x), weight, bias, 1e-5, relu)
    y0, mean0, var0, inv0 = batch_norm.batch_norm_fwd(x, weight, bias, 1e-5, relu)
    for got, want in ((y, y0), (mean, mean0), (var, var0), (inv_std, inv0)):
        np.testing.assert_allclose(got, want, **TOL)
    got = batch_norm.batch_norm_bwd(_as(layouts[0], gy), _as(layouts[1], x), mean, inv_std, weight,
                                    y=y if relu else None)
    want = batch_norm.batch_norm_bwd(gy, x, mean0, inv0, weight, y=y0 if relu else None)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layouts", LAYOUTS)
def test_pointwise_conv_given_mixed_layouts_matches_nchw(layouts, stride):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((3, 16, 5, 7)), rng.standard_normal((8, 16, 1, 1)), rng.standard_normal(8)
    s = (stride, stride)
    y, saved = _conv_pointwise.pointwise_fwd(_as(layouts[1], x), w, b, s, True, relu=True)
    y0, saved0 = _conv_pointwise.pointwise_fwd(x, w, b, s, True, relu=True)
    np.testing.assert_allclose(y, y0, **TOL)
    gy = rng.standard_normal(y.shape)
    gw = _conv_pointwise.pointwise_bwd_weight(_as(layouts[0], gy), _as(layouts[1], x), w.shape, s, saved)
    np.testing.assert_allclose(gw, _conv_pointwise.pointwise_bwd_weight(gy, x, w.shape, s, saved0), **TOL)
    gx = _conv_pointwise.pointwise_bwd_data(_as(layouts[0], gy), w, x.shape, stride, stride)
    np.testing.assert_allclose(gx, _conv_pointwise.pointwise_bwd_data(gy, w, x.shape, stride, stride), **TOL)


def test_views_and_detach_of_a_channels_last_output_share_its_memory():
    """As PyTorch's contiguous conv output: a write through ``view`` or ``detach()`` reaches
    the tensor (it is made C-ordered before anything aliases it)."""
    with gn.no_grad():
        y = F.conv2d(gn.randn(2, 16, 5, 5), gn.randn(16, 16, 3, 3), padding=1)
        assert not y._data.flags.c_contiguous
        y.view(2, -1).zero_()
        assert float(y.abs().sum()) == 0.0
        y.detach().add_(1.0)
        assert float(y.sum()) == y.numel()
        assert y.contiguous() is y


def test_batch_norm_on_channels_last_arrays_in_several_chunks_matches_nchw():
    """Images past the 8 MB chunk (here 32 of 16x32x32 float64 per chunk, then a shorter
    one) and whole rows of ROW values: the chunks' statistics combine as one pass's."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 16, 32, 32)) * 3 + 5
    weight, bias, gy = rng.standard_normal(16), rng.standard_normal(16), rng.standard_normal(x.shape)
    got = batch_norm.batch_norm_fwd(last(x), weight, bias, 1e-5, True)
    want = batch_norm.batch_norm_fwd(x, weight, bias, 1e-5, True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)
    for g, w in zip(batch_norm.batch_norm_bwd(last(gy), last(x), got[1], got[3], weight, y=got[0]),
                    batch_norm.batch_norm_bwd(gy, x, want[1], want[3], weight, y=want[0])):
        np.testing.assert_allclose(g, w, **TOL)


def test_float32_batch_norm_statistics_on_channels_last_arrays_are_float32_exact():
    """Channel sums fold in float64: float32 input far from 0 (mean 1000) gives the mean to
    within float32 rounding of 1000 (a few ulps, 6e-5 each) and the same inverse std as the
    NCHW path."""
    x = (np.random.default_rng(5).standard_normal((64, 16, 32, 32)) + 1000).astype(np.float32)
    exact = x.astype(np.float64).mean(axis=(0, 2, 3))
    _, mean, _, inv_std = batch_norm.batch_norm_fwd(last(x), None, None, 1e-5)
    _, mean0, _, inv0 = batch_norm.batch_norm_fwd(x, None, None, 1e-5)
    assert np.abs(mean - exact).max() <= 4 * np.spacing(np.float32(1000))
    np.testing.assert_allclose(inv_std, inv0, rtol=1e-5)
