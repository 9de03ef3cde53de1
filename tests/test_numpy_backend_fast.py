"""The fast NumPy backend's own code paths: CN layout, both input-gradient strategies, the pool.

Each fast path is compared with a plain reference written here (loops over window offsets on
contiguous NCHW arrays, as the first NumPy backend did), so the semantics cannot drift.
"""
import gc

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet.backends import numpy_backend as nb
from gpunet.backends.array_pool import ArrayPool


def _ref_conv(x, w, stride, padding):
    """Direct definition: y[n,k,a,b] = sum_{c,i,j} x_pad[n,c,a*sh+i,b*sw+j] w[k,c,i,j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    k, c, kh, kw = w.shape
    ho, wo = nb.out_size(x.shape[2], kh, sh, ph), nb.out_size(x.shape[3], kw, sw, pw)
    y = np.zeros((x.shape[0], k, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            y += np.einsum("nchw,kc->nkhw", win, w[:, :, i, j])
    return y


def _ref_conv_grad_x(gy, w, x_shape, stride, padding):
    """Adjoint of _ref_conv in x, by scatter over window offsets."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    ho, wo = gy.shape[2:]
    gx = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), gy.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += np.einsum(
                "nkhw,kc->nchw", gy, w[:, :, i, j])
    return gx[:, :, ph:ph + h, pw:pw + wd]


def _ref_conv_grad_w(gy, x, w_shape, stride, padding):
    """gw[k,c,i,j] = sum over n, a, b of gy[n,k,a,b] * x_pad[n,c,a*sh+i,b*sw+j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = gy.shape[2:]
    gw = np.zeros(w_shape, gy.dtype)
    for i in range(w_shape[2]):
        for j in range(w_shape[3]):
            win = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            gw[:, :, i, j] = np.einsum("nkhw,nchw->kc", gy, win)
    return gw

def _ref_max_pool(x, kernel, stride, padding, gy):
    """Forward and backward with an explicit first-maximum argmax (strict >, row-major order)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    ho, wo = nb.out_size(x.shape[2], kh, sh, ph), nb.out_size(x.shape[3], kw, sw, pw)
    win = lambda a, i, j: a[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    y, arg = win(xp, 0, 0).copy(), np.zeros(gy.shape, int)
    for t in range(1, kh * kw):
        v = win(xp, t // kw, t % kw)
        arg = np.where(v > y, t, arg)
        y = np.where(v > y, v, y)
    gx = np.zeros_like(xp)
    for t in range(kh * kw):
        win(gx, t // kw, t % kw)[...] += gy * (arg == t)
    return y, gx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 7, 5), (4, 3, 3, 3), (1, 1), (1, 1)),
    ((1, 2, 6, 9), (3, 2, 5, 3), (1, 1), (2, 0)),
    ((3, 1, 8, 8), (2, 1, 3, 2), (1, 1), (0, 1)),
    ((2, 4, 9, 7), (5, 4, 3, 3), (2, 1), (1, 1)),
    ((2, 3, 5, 5), (2, 3, 1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
def test_conv_paths_match_reference(rng, xs, ws, stride, padding):
    be = nb.NumpyBackend()
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y, saved = be.conv2d_fwd(x, w, None, stride, padding)
    np.testing.assert_allclose(y, _ref_conv(x, w, stride, padding), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    want = _ref_conv_grad_x(gy, w, xs, stride, padding)
    np.testing.assert_allclose(be.conv2d_bwd_data_scatter(gy, w, xs, stride, padding), want,
                               rtol=1e-10, atol=1e-10)
    if stride == (1, 1):  # the transposed convolution gives the very same gradient
        np.testing.assert_allclose(be.conv2d_bwd_data_transposed(gy, w, xs, padding), want,
                                   rtol=1e-10, atol=1e-10)
    got_gw = be.conv2d_bwd_weight(gy, x, ws, stride, padding, saved)
    np.testing.assert_allclose(got_gw, _ref_conv_grad_w(gy, x, ws, stride, padding), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_array_equal(got_gw, be.conv2d_bwd_weight(gy, x, ws, stride, padding, None))

def test_bwd_data_dispatch_picks_transposed_for_big_convs(rng, monkeypatch):
    be = nb.NumpyBackend()
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    y, saved = be.conv2d_fwd(x, w, None, (1, 1), (1, 1))
    gy = rng.standard_normal(y.shape)
    small = be.conv2d_bwd_data(gy, w, x.shape, (1, 1), (1, 1), saved)
    monkeypatch.setattr(nb, "TRANSPOSED_MIN_ELEMENTS", 1)
    called = []
    real = be.conv2d_bwd_data_transposed
    monkeypatch.setattr(be, "conv2d_bwd_data_transposed", lambda *a: called.append(1) or real(*a))
    np.testing.assert_allclose(be.conv2d_bwd_data(gy, w, x.shape, (1, 1), (1, 1), saved), small)
    assert called


def test_conv_accepts_cn_layout_views(rng):
    """Inputs stored channel-major (what conv outputs are) give the same result as copies."""
    be = nb.NumpyBackend()
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32).transpose(1, 0, 2, 3)  # CN memory
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, _ = be.conv2d_fwd(x, w, None, (1, 1), (1, 1))
    y2, _ = be.conv2d_fwd(np.ascontiguousarray(x), w, None, (1, 1), (1, 1))
    np.testing.assert_array_equal(y, y2)
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 5)


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                                                     ((2, 3), (1, 2), (0, 1)), ((1, 1), (1, 1), (0, 0))])
@pytest.mark.parametrize("kind", ["ties", "constant", "random"])
def test_max_pool_first_max_matches_reference(rng, kernel, stride, padding, kind):
    be = nb.NumpyBackend()
    x = {"ties": np.round(rng.standard_normal((2, 3, 7, 6))), "constant": np.full((2, 3, 7, 6), 0.5),
         "random": rng.standard_normal((2, 3, 7, 6))}[kind].astype(np.float32)
    y, arg = be.max_pool2d_fwd(x, kernel, stride, padding)
    gy = rng.integers(1, 5, size=y.shape).astype(np.float32)
    y_ref, gx_ref = _ref_max_pool(x, kernel, stride, padding, gy)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(be.max_pool2d_bwd(gy, arg, x.shape, kernel, stride, padding), gx_ref)


def test_pool_never_hands_out_a_live_buffer():
    pool = ArrayPool(min_bytes=0)
    a = pool.empty((8, 8), np.float32)
    b = pool.empty((8, 8), np.float32)
    assert a is not b
    view = a[2:]  # a view keeps its base alive
    del a
    c = pool.empty((8, 8), np.float32)
    assert c is not view.base and c is not b
    del view, c
    gc.collect()
    d = pool.empty((8, 8), np.float32)
    assert d is not b and pool.hits == 1  # reused a free one, never the live b


def test_pool_respects_limits():
    pool = ArrayPool(min_bytes=0, max_bytes=4096, per_key=2)
    held = [pool.empty((16, 16), np.float32) for _ in range(4)]  # 1 KiB each; only 2 are pooled
    assert pool.nbytes == 2048
    del held
    for _ in range(5):  # new keys evict the free old ones instead of growing past max_bytes
        pool.empty((17 + _, 16), np.float32)
        assert pool.nbytes <= 4096


def test_saved_columns_survive_later_calls(rng):
    """Saved im2col columns live in the pool but are never overwritten while the graph holds them."""
    be = nb.NumpyBackend(pool=ArrayPool(min_bytes=0))
    x1, x2 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    _, cols1 = be.conv2d_fwd(x1, w, None, (1, 1), (1, 1))
    keep = cols1.copy()
    for _ in range(3):
        be.conv2d_fwd(x2, w, None, (1, 1), (1, 1))
    np.testing.assert_array_equal(cols1, keep)


def test_lenet_step_stays_float32(rng):
    """No accidental float64 promotion anywhere in a conv/pool/linear/softmax-CE step."""
    with gn.use_backend("numpy"):
        x = gn.tensor(rng.standard_normal((4, 1, 12, 12)).astype(np.float32))
        ws = [gn.tensor(rng.standard_normal(s).astype(np.float32) * 0.1, requires_grad=True)
              for s in ((3, 1, 3, 3), (3,), (10, 3 * 6 * 6))]
        h = F.max_pool2d(F.relu(F.conv2d(x, ws[0], ws[1], padding=1)), 2)
        logits = F.linear(F.flatten(h), ws[2])
        loss = F.softmax_cross_entropy(logits, gn.tensor([1, 2, 3, 4]))
        assert h.dtype == logits.dtype == loss.dtype == np.float32
        loss.backward()
        assert all(w.grad.dtype == np.float32 for w in ws)


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES[:4])
def test_weight_grad_per_image_and_single_gemm_agree(rng, monkeypatch, xs, ws, stride, padding):
    be = nb.NumpyBackend()
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y, saved = be.conv2d_fwd(x, w, None, stride, padding)
    gy = rng.standard_normal(y.shape)
    per_image = be.conv2d_bwd_weight(gy, x, ws, stride, padding, saved)
    monkeypatch.setattr(nb, "PER_IMAGE_GEMM_MAX", 0)
    np.testing.assert_allclose(be.conv2d_bwd_weight(gy, x, ws, stride, padding, saved), per_image,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(per_image, _ref_conv_grad_w(gy, x, ws, stride, padding), rtol=1e-10,
                               atol=1e-10)
