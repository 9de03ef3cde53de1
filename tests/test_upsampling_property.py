"""Search the geometry of the ops that make images bigger, against PyTorch on both backends
(cuda in Numba's simulator, tiny sizes): ``F.conv_transpose2d`` / ``nn.ConvTranspose2d`` (per-axis
stride, padding, output_padding, dilation, groups, bias), ``F.interpolate`` (nearest and
bilinear, size or scale_factor, align_corners) and ``F.pad`` (negative widths crop).

Tolerance: float64, the same sums in another order (see test_geometry_property.py).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpunet as gn
from gpunet import nn
from gpunet.nn import functional as F
from test_geometry_property import _compare, _settings

torch = pytest.importorskip("torch")
TF = torch.nn.functional
SIZES = {"numpy": dict(n=2, c=2, hw=6, examples=200), "cuda": dict(n=1, c=2, hw=3, examples=12)}


@st.composite
def transposed_geometry(draw, size):
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, size["c"]))
    cout = groups * draw(st.integers(1, size["c"]))
    axes = []
    for _ in range(2):
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p = draw(st.integers(0, d * (k - 1)))
        op = draw(st.integers(0, max(s, d) - 1))
        n = draw(st.integers(1, size["hw"]))
        if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1:
            p = 0
        axes.append((k, s, d, p, op, n))
    return groups, cin, cout, axes, draw(st.booleans()), draw(st.integers(0, 2**16))


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_conv_transpose2d_matches_pytorch_over_its_geometry(backend):
    size = SIZES[backend]

    @_settings(backend)
    @given(transposed_geometry(size))
    def check(case):
        groups, cin, cout, axes, bias, seed = case
        (kh, sh, dh, ph, oph, h), (kw, sw, dw, pw, opw, w) = axes
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((size["n"], cin, h, w))
        wt = rng.standard_normal((cin, cout // groups, kh, kw))
        b = rng.standard_normal(cout) if bias else None
        kwargs = dict(stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw), groups=groups,
                      dilation=(dh, dw))
        _compare(backend, lambda *a: F.conv_transpose2d(*a, **kwargs),
                 lambda *a: TF.conv_transpose2d(*a, **kwargs), [x, wt, b], seed)

    check()


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_interpolate_matches_pytorch_over_its_geometry(backend):
    size = SIZES[backend]

    @_settings(backend)
    @given(h=st.integers(1, size["hw"]), w=st.integers(1, size["hw"]),
           mode=st.sampled_from(["nearest", "bilinear-F", "bilinear-T"]),
           by_size=st.booleans(), out=st.tuples(st.integers(1, 9), st.integers(1, 9)),
           scale=st.tuples(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), st.sampled_from([0.5, 1.0, 2.5])),
           seed=st.integers(0, 2**16))
    def check(h, w, mode, by_size, out, scale, seed):
        mode, _, corners = mode.partition("-")
        kwargs = dict(mode=mode, align_corners=None if mode == "nearest" else corners == "T")
        if by_size:
            kwargs["size"] = out
        elif int(h * scale[0]) < 1 or int(w * scale[1]) < 1:
            return
        else:
            kwargs["scale_factor"] = scale
        x = np.random.default_rng(seed).standard_normal((size["n"], size["c"], h, w))
        _compare(backend, lambda a: F.interpolate(a, **kwargs), lambda a: TF.interpolate(a, **kwargs), [x], seed)

    check()


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_pad_matches_pytorch_over_its_geometry(backend):
    @_settings(backend)
    @given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(),
           value=st.sampled_from([0.0, -1.5]), seed=st.integers(0, 2**16))
    def check(shape, data, value, seed):
        widths = []
        for n in reversed(shape[len(shape) - data.draw(st.integers(1, len(shape))):]):
            lo = data.draw(st.integers(-(n - 1), 3))
            widths += [lo, data.draw(st.integers(-(n - 1 + min(lo, 0)), 3))]
        x = np.random.default_rng(seed).standard_normal(shape)
        _compare(backend, lambda a: F.pad(a, widths, value=value),
                 lambda a: TF.pad(a, widths, value=value), [x], seed)

    check()


def test_modules_load_pytorch_state_and_match():
    rng = np.random.default_rng(5)
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2).double()
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 4, 5, 5))
    np.testing.assert_allclose(ours(gn.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours(gn.tensor(x), output_size=(10, 10)).numpy(),
                               theirs(torch.tensor(x), output_size=(10, 10)).detach().numpy(), rtol=1e-10, atol=1e-10)
    assert repr(ours) == repr(theirs)
    up_t, up_g = torch.nn.Upsample(scale_factor=2, mode="bilinear"), nn.Upsample(scale_factor=2, mode="bilinear")
    np.testing.assert_allclose(up_g(gn.tensor(x)).numpy(), up_t(torch.tensor(x)).numpy(), rtol=1e-12)
    assert repr(up_g) == repr(up_t)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="output padding must be smaller"):
        F.conv_transpose2d(gn.ones(1, 2, 3, 3), gn.ones(2, 2, 3, 3), stride=1, output_padding=1)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(gn.ones(1, 1, 2, 2))
    with pytest.raises(NotImplementedError, match="mode='bicubic' is not in gpunet"):
        F.interpolate(gn.ones(1, 1, 2, 2), scale_factor=2, mode="bicubic")
    with pytest.raises(NotImplementedError, match="only 'constant'"):
        F.pad(gn.ones(2, 2), (1, 1), mode="reflect")
