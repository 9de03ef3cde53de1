"""The NumPy kernels' own code paths: chunking over threads, both input-gradient strategies,
kept and rebuilt columns, per-thread scratch.

Each path is compared with a plain reference written here (loops over window offsets on
contiguous NCHW arrays), in float64 to 1e-10, for one thread and for three threads with tiny
chunks (so every chunk boundary and every thread is exercised).
"""
import threading
import time

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from kernel_geometry import out_size
from gpunet.backends.numpy_backend import NumpyBackend
from numpy_kernels import _conv_pointwise, _im2row, _parallel, conv, pooling


def _ref_conv(x, w, stride, padding):
    """Direct definition: y[n,k,a,b] = sum_{c,i,j} x_pad[n,c,a*sh+i,b*sw+j] w[k,c,i,j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    k, c, kh, kw = w.shape
    ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
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
    """Forward and backward with PyTorch's argmax rule: a larger value or a NaN takes over."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
    win = lambda a, i, j: a[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    y, arg = win(xp, 0, 0).copy(), np.zeros(gy.shape, int)
    for t in range(1, kh * kw):
        v = win(xp, t // kw, t % kw)
        takes = (v > y) | np.isnan(v)
        arg = np.where(takes, t, arg)
        y = np.where(takes, v, y)
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
    ((2, 2, 6, 11), (3, 2, 3, 3), (1, 2), (1, 1)),  # im2col's row-shifted copy, column stride 2
    ((1, 2, 5, 20), (3, 2, 3, 3), (1, 1), (1, 1)),  # rows wider than ROW_RUNS_MAX_WIDTH: direct copy
    ((3, 4, 7, 6), (5, 4, 1, 1), (2, 3), (0, 0)),  # a strided 1x1 (ResNet shortcut): no col2im
    ((2, 3, 8, 8), (6, 3, 1, 1), (2, 2), (0, 0)),
    ((2, 2, 16, 17), (3, 2, 3, 3), (1, 1), (1, 1)),  # >= ONE_GEMM_MIN_POSITIONS: per image
]


@pytest.fixture(params=["one thread", "three threads, tiny chunks"])
def chunking(request, monkeypatch):
    """Run a test with the kernels serial, then split over 3 threads in chunks of ~1 image."""
    threads = _parallel.num_threads()
    if request.param != "one thread":
        _parallel.set_num_threads(3)
        assert _parallel.can_parallelise(), "threadpoolctl (dev extra) is needed to run chunks on threads"
        for name in ("FWD_CHUNK_BYTES", "BWD_DATA_CHUNK_BYTES", "BWD_WEIGHT_CHUNK_BYTES"):
            monkeypatch.setattr(conv, name, 1)
        monkeypatch.setattr(pooling, "POOL_CHUNK_BYTES", 1)
        monkeypatch.setattr(_conv_pointwise, "CHUNK_BYTES", 1)
    else:
        _parallel.set_num_threads(1)
    yield request.param
    _parallel.set_num_threads(threads)


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("layout", ["columns", "patch rows"])
def test_conv_paths_match_reference(rng, monkeypatch, chunking, xs, ws, stride, padding, transposed,
                                    layout):
    be = NumpyBackend()
    monkeypatch.setattr(_im2row, "ROWS_MIN_CHANNELS", 1 if layout == "patch rows" else 10 ** 9)
    monkeypatch.setattr(conv, "KEEP_ROWS_MAX_RATIO", 10 ** 9)  # keep them: both paths below
    if transposed:  # every stride-1 input gradient takes the transposed-convolution path
        monkeypatch.setattr(conv, "use_transposed",
                            lambda x_shape, y_shape, kh, kw, stride, padding:
                            tuple(stride) == (1, 1) and padding[0] < kh and padding[1] < kw)
    else:
        monkeypatch.setattr(conv, "use_transposed", lambda *args: False)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y, cols = be.conv2d_fwd(x, w, b, stride, padding)
    np.testing.assert_allclose(y, _ref_conv(x, w, stride, padding) + b.reshape(-1, 1, 1),
                               rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(be.conv2d_bwd_data(gy, w, xs, stride, padding, cols),
                               _ref_conv_grad_x(gy, w, xs, stride, padding), rtol=1e-10, atol=1e-10)
    want_w = _ref_conv_grad_w(gy, x, ws, stride, padding)
    pointwise_s1 = _conv_pointwise.applies(ws, padding) and tuple(stride) == (1, 1)
    assert (cols is None) == pointwise_s1  # kept (small), but a 1x1's backward reads x itself
    for saved in (cols, None):  # kept columns, and columns rebuilt chunk by chunk
        np.testing.assert_allclose(be.conv2d_bwd_weight(gy, x, ws, stride, padding, saved), want_w,
                                   rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(be.conv2d_bwd_bias(gy), gy.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_columns_are_dropped_beyond_the_cap_or_when_not_asked(rng, monkeypatch):
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    assert conv.conv2d_fwd(x, w, None, (1, 1), (1, 1), keep_cols=False)[1] is None
    monkeypatch.setattr(conv, "KEEP_COLS_MAX_BYTES", 100)
    y, cols = conv.conv2d_fwd(x, w, None, (1, 1), (1, 1))
    assert cols is None and y.shape == (2, 4, 6, 6)


@pytest.mark.parametrize("stride, kept", [((1, 1), False), ((2, 2), True)])
def test_patch_rows_are_kept_only_up_to_a_multiple_of_the_input(rng, stride, kept):
    """A 3x3 'same' conv's patch rows are 9x its input: rebuilt by the weight gradient; at
    stride 2 (2.25x) they are kept.  Either way the weight gradient is the same."""
    x, w = rng.standard_normal((2, 16, 6, 6)), rng.standard_normal((4, 16, 3, 3))
    assert _im2row.uses_rows(16) and conv.KEEP_ROWS_MAX_RATIO == 4
    y, saved = conv.conv2d_fwd(x, w, None, stride, (1, 1))
    assert (saved is not None) == kept
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(conv.conv2d_bwd_weight(gy, x, w.shape, stride, (1, 1), saved),
                               _ref_conv_grad_w(gy, x, w.shape, stride, (1, 1)), rtol=1e-10, atol=1e-10)


def test_conv_accepts_non_contiguous_views(rng, chunking):
    """Inputs stored channel-major, or sliced, give the same result as contiguous copies."""
    be = NumpyBackend()
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32).transpose(1, 0, 2, 3)  # CN memory
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, _ = be.conv2d_fwd(x, w, None, (1, 1), (1, 1))
    y2, _ = be.conv2d_fwd(np.ascontiguousarray(x), w, None, (1, 1), (1, 1))
    np.testing.assert_array_equal(y, y2)
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 5) and y.flags.c_contiguous
    gy = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)[:, :, ::-1]  # a reversed view
    r = be.relu_fwd(y)  # relu_bwd reads the ReLU's output
    np.testing.assert_array_equal(be.relu_bwd(gy, r), np.ascontiguousarray(gy) * (r > 0))


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                                                     ((2, 3), (1, 2), (0, 1)), ((1, 1), (1, 1), (0, 0))])
@pytest.mark.parametrize("kind", ["ties", "constant", "random", "nans"])
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 2, 8, 10)])
def test_max_pool_first_max_matches_reference(rng, chunking, kernel, stride, padding, kind, shape):
    be = NumpyBackend()
    x = {"ties": np.round(rng.standard_normal(shape)), "constant": np.full(shape, 0.5),
         "random": rng.standard_normal(shape),
         "nans": np.where(rng.random(shape) < 0.3, np.nan, rng.standard_normal(shape))}[kind]
    x = x.astype(np.float32)
    y, arg = be.max_pool2d_fwd(x, kernel, stride, padding)
    gy = rng.integers(1, 5, size=y.shape).astype(np.float32)
    y_ref, gx_ref = _ref_max_pool(x, kernel, stride, padding, gy)
    np.testing.assert_array_equal(y, y_ref)  # NaN positions compare equal here
    np.testing.assert_array_equal(be.max_pool2d_bwd(gy, arg, x.shape, kernel, stride, padding), gx_ref)


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


def test_scratch_is_per_thread_and_never_fails_on_a_shape():

    a = _parallel.scratch("t", (3, 4), np.float32)
    b = _parallel.scratch("t", (1000, 7), np.float32)  # grows
    assert a.shape == (3, 4) and b.shape == (1000, 7)
    assert _parallel.scratch("t", (0, 5), np.float64).shape == (0, 5)
    seen = []
    t = threading.Thread(target=lambda: seen.append(_parallel.scratch("t", (1000, 7), np.float32)))
    t.start()
    t.join()
    assert not np.shares_memory(seen[0], b)


def test_parallel_for_reraises_a_worker_error():
    _parallel.set_num_threads(2)

    def fail(lo, hi):
        if lo > 0:
            raise ZeroDivisionError(f"chunk {lo}")

    with pytest.raises(ZeroDivisionError, match="chunk"):
        _parallel.parallel_for(10, 5, fail)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        _parallel.set_num_threads(0)


def test_parallel_for_runs_every_chunk_once_whichever_thread_is_free():
    threads = _parallel.num_threads()
    _parallel.set_num_threads(3)
    try:
        for n, chunk in ((100, 1), (7, 3), (1, 5)):
            seen, names = [], set()

            def record(lo, hi):
                time.sleep(0.0005 * (lo % 3))  # uneven chunks: free threads claim the next one
                seen.append((lo, hi))
                names.add(threading.current_thread().name)

            _parallel.parallel_for(n, chunk, record)
            assert sorted(seen) == [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
        assert names
    finally:
        _parallel.set_num_threads(threads)


def test_concurrently_returns_each_result_in_order_and_reraises(backend):
    backend = gn.backends.backend(backend)
    assert backend.concurrently(lambda: "a", lambda: (1, 2), lambda: None) == ("a", (1, 2), None)

    def fail():
        raise KeyError("second")

    with pytest.raises(KeyError, match="second"):
        backend.concurrently(lambda: 1, fail)


def test_concurrently_runs_the_thunks_at_once_on_numpy():
    threads = _parallel.num_threads()
    _parallel.set_num_threads(2)
    try:
        both = threading.Barrier(2, timeout=10)  # run one after the other, each would wait alone
        names = gn.backends.backend("numpy").concurrently(
            lambda: (both.wait(), threading.current_thread().name)[1],
            lambda: (both.wait(), threading.current_thread().name)[1])
        assert len(set(names)) == 2
    finally:
        _parallel.set_num_threads(threads)


def test_blas_runs_on_one_thread_inside_kernels_and_is_restored():
    from threadpoolctl import threadpool_info

    blas = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]  # noqa: E731
    before, seen = blas(), []
    _parallel.parallel_for(4, 1, lambda lo, hi: seen.append(blas()))
    assert seen and all(s == [1] * len(before) for s in seen)
    assert blas() == before


def test_matmul_of_a_stack_by_a_matrix_splits_rows_and_keeps_the_shape(rng):
    from numpy_kernels.linalg import matmul

    b = rng.standard_normal((6, 5))
    for a in (rng.standard_normal((3, 4, 6)), rng.standard_normal((4, 3, 6)).transpose(1, 0, 2),
              rng.standard_normal((2, 1, 3, 6))):
        got = matmul(a, b)
        assert got.shape == a.shape[:-1] + (5,)
        np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-12)
