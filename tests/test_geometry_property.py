"""Search the geometry, don't pick it: conv2d, max/avg pooling and the fused conv -> ReLU -> pool
against PyTorch over drawn shapes, on both backends (cuda in Numba's simulator, tiny sizes).

Each example draws batch, channels, H and W independently (1 included), kernel, per-axis stride,
padding, dilation and groups, and compares the output and every gradient with torch's in
float64.  The first hand-picked suites never drew unequal H/W strides, and a wrong numpy input
gradient for stride (2, 1) went unseen (issue 19); the cases of that report are pinned with
their own tests, and a random search of this size found it within 40 examples.

Tolerance: float64 results of the same sums in another order differ by a few ulps of the
largest partial sum (at most ~100 products of N(0, 1) numbers here), so 1e-10 absolute and
relative is ~1e5 ulps of room and still fails on any misplaced or missing term.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpunet as gn
from kernel_geometry import out_hw
from gpunet import functional as F
from numpy_kernels import _im2row

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-10, atol=1e-10)
# numpy is fast enough for a real search; the simulator runs every CUDA thread in Python.
# A plain conv draws the unequal-stride 1-wide case of issue 19 about once in 54 examples.
EXAMPLES = {"numpy": 400, "cuda": 40}
SIZES = {"numpy": dict(n=3, c=3, hw=9), "cuda": dict(n=2, c=2, hw=5)}


def _settings(backend):
    return settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _compare(backend, gn_fn, torch_fn, arrays, seed):
    """Run ``gn_fn`` on ``backend`` and ``torch_fn`` on torch with the same float64 ``arrays``
    (None entries pass through), back-propagate one random upstream gradient through both, and
    compare the outputs and the gradients of every array."""
    with gn.use_backend(backend):
        ours = [None if a is None else gn.tensor(a, requires_grad=True) for a in arrays]
        y = gn_fn(*ours)
        gy = np.random.default_rng(seed).standard_normal(y.shape)
        (y * gn.tensor(gy)).sum().backward()
        got = [y.numpy()] + [None if t is None else t.grad.numpy() for t in ours]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    ty = torch_fn(*theirs)
    (ty * torch.tensor(gy)).sum().backward()
    want = [ty.detach().numpy()] + [None if t is None else t.grad.numpy() for t in theirs]
    for name, g, w in zip(["output"] + [f"grad of input {i}" for i in range(len(arrays))], got, want):
        if w is None:
            continue
        assert g.shape == w.shape, f"{name}: shape {g.shape}, PyTorch {w.shape}"
        np.testing.assert_allclose(g, w, err_msg=name, **TOL)


def _extent(draw, k, d, p, limit):
    """An input size from the smallest the (dilated) window fits in, up to ``limit`` more."""
    smallest = max(1, d * (k - 1) + 1 - 2 * p)
    return draw(st.integers(smallest, smallest + limit))


@st.composite
def conv_geometry(draw, n, c, hw, plain=False):
    """A conv2d call's shapes and arguments; ``plain``: no groups or dilation (the fused op)."""
    groups = 1 if plain else draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, c)), groups * draw(st.integers(1, c))
    kh, kw, sh, sw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                      draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dh, dw = (1, 1) if plain else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h, w = _extent(draw, kh, dh, ph, hw), _extent(draw, kw, dw, pw, hw)
    return dict(x=(draw(st.integers(1, n)), cin, h, w), weight=(cout, cin // groups, kh, kw),
                bias=draw(st.booleans()), stride=(sh, sw), padding=(ph, pw),
                dilation=(dh, dw), groups=groups, seed=draw(st.integers(0, 2 ** 16)))


def _conv_arrays(g):
    rng = np.random.default_rng(g["seed"])
    return [rng.standard_normal(g["x"]), rng.standard_normal(g["weight"]),
            rng.standard_normal(g["weight"][0]) if g["bias"] else None]


def _conv_kwargs(g):
    return dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"], groups=g["groups"])


def _case(x, weight, stride, padding, bias=False, dilation=(1, 1), groups=1, seed=0):
    return dict(x=x, weight=weight, bias=bias, stride=stride, padding=padding,
                dilation=dilation, groups=groups, seed=seed)


# The geometries of issue 19's report: the numpy input gradient was wrong for all but the last.
REPORTED = [_case((2, 3, 8, 8), (4, 3, 1, 1), (2, 1), (0, 0)),
            _case((2, 3, 8, 1), (4, 3, 1, 1), (2, 2), (0, 0)),
            _case((2, 3, 9, 2), (4, 3, 3, 1), (2, 1), (1, 0)),
            _case((1, 1, 3, 1), (1, 1, 1, 1), (2, 1), (0, 0)),
            _case((1, 2, 6, 4), (2, 2, 3, 1), (2, 1), (1, 0))]


def _check_conv(backend, g):
    _compare(backend, lambda x, w, b: F.conv2d(x, w, b, **_conv_kwargs(g)),
             lambda x, w, b: TF.conv2d(x, w, b, **_conv_kwargs(g)), _conv_arrays(g), g["seed"] + 1)


@pytest.mark.parametrize("geometry", REPORTED, ids=lambda g: f"x{g['x']}-w{g['weight']}-s{g['stride']}")
def test_conv2d_reported_geometries_match_pytorch(backend, geometry):
    _check_conv(backend, geometry)


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
@pytest.mark.parametrize("plain", [True, False], ids=["plain", "groups-dilation"])
def test_conv2d_any_geometry_matches_pytorch(backend, plain):
    """Plain convs and grouped or dilated ones take different kernel paths: each is searched."""
    @_settings(backend)
    @given(conv_geometry(**SIZES[backend], plain=plain))
    def check(g):
        _check_conv(backend, g)

    check()


@pytest.mark.parametrize("fused", [False, True], ids=["conv2d", "conv2d_relu_max_pool2d"])
def test_conv_on_patch_rows_any_geometry_matches_pytorch(monkeypatch, fused):
    """NumPy convs with many input channels run on patch rows (``numpy_kernels/_im2row.py``):
    with the threshold at one channel every plain conv does, and is searched like the rest."""
    monkeypatch.setattr(_im2row, "ROWS_MIN_CHANNELS", 1)

    @_settings("numpy")
    @given(conv_geometry(**SIZES["numpy"], plain=True), st.integers(1, 3))
    def check(g, pool):
        assert _im2row.uses_rows(g["x"][1])
        if not fused:
            _check_conv("numpy", g)
            return
        conv = dict(stride=g["stride"], padding=g["padding"])
        pool = min(pool, *out_hw(g["x"], g["weight"][2:], g["stride"], g["padding"]))
        _compare("numpy", lambda x, w, b: F.conv2d_relu_max_pool2d(x, w, b, pool=pool, **conv),
                 lambda x, w, b: TF.max_pool2d(TF.relu(TF.conv2d(x, w, b, **conv)), pool),
                 _conv_arrays(g), g["seed"] + 1)

    check()


@st.composite
def pool_geometry(draw, n, c, hw):
    """A pooling call's shapes and arguments (padding at most half the window, as PyTorch needs)."""
    kh, kw, sh, sw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                      draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h, w = _extent(draw, kh, 1, ph, hw), _extent(draw, kw, 1, pw, hw)
    return dict(x=(draw(st.integers(1, n)), draw(st.integers(1, c)), h, w), kernel_size=(kh, kw),
                stride=(sh, sw), padding=(ph, pw), ceil_mode=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 16)))


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_any_geometry_matches_pytorch(backend, kind):
    @_settings(backend)
    @given(pool_geometry(**SIZES[backend]))
    def check(g):
        args = dict(kernel_size=g["kernel_size"], stride=g["stride"], padding=g["padding"])
        x = np.random.default_rng(g["seed"]).standard_normal(g["x"])
        if kind == "max":
            _compare(backend, lambda t: F.max_pool2d(t, ceil_mode=g["ceil_mode"], **args),
                     lambda t: TF.max_pool2d(t, ceil_mode=g["ceil_mode"], **args), [x], g["seed"])
        else:
            _compare(backend, lambda t: F.avg_pool2d(t, **args),
                     lambda t: TF.avg_pool2d(t, **args), [x], g["seed"])

    check()


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_conv_relu_max_pool_any_geometry_matches_pytorch(backend):
    @_settings(backend)
    @given(conv_geometry(**SIZES[backend], plain=True), st.integers(1, 3))
    def check(g, pool):
        conv = dict(stride=g["stride"], padding=g["padding"])
        ho, wo = out_hw(g["x"], g["weight"][2:], g["stride"], g["padding"])
        pool = min(pool, ho, wo)
        _compare(backend, lambda x, w, b: F.conv2d_relu_max_pool2d(x, w, b, pool=pool, **conv),
                 lambda x, w, b: TF.max_pool2d(TF.relu(TF.conv2d(x, w, b, **conv)), pool),
                 _conv_arrays(g), g["seed"] + 1)

    check()
