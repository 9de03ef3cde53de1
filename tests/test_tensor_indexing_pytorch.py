"""gather, masked_fill, sort and topk (gpunet/ops/indexing.py) against PyTorch, over drawn
geometry, on both backends; the shared helpers are in tests/test_tensor_ops_pytorch.py.

Ties: sort and topk results with equal values are compared with torch's ``stable=True`` sort,
which is the order gpunet promises."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpunet as gn

torch = pytest.importorskip("torch")

from test_tensor_ops_pytorch import (DTYPES, SIZE, _array, _compare,  # noqa: E402  (after the skip)
                                     _dim, _settings, _shape, seeds)


# --- gather -------------------------------------------------------------------
@st.composite
def gather_case(draw, size):
    shape = _shape(draw, size, min_size=1)
    d = _dim(draw, len(shape))
    # the index may be smaller than the input in every dim but `dim`, where it may be longer
    index_shape = tuple(draw(st.integers(0, size)) if k == d % len(shape) else draw(st.integers(0, n))
                        for k, n in enumerate(shape))
    return shape, d, index_shape, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_gather_matches_pytorch(backend):
    """Repeated indices must sum their gradients; int64 indices, as torch requires."""
    @_settings(backend)
    @given(gather_case(SIZE[backend]))
    def check(case):
        shape, d, index_shape, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        index = rng.integers(0, shape[d], index_shape).astype(np.int64)
        if function_form:
            fns = (lambda x: gn.gather(x, d, gn.tensor(index)), lambda x: torch.gather(x, d, torch.tensor(index)))
        else:
            fns = (lambda x: x.gather(d, gn.tensor(index)), lambda x: x.gather(d, torch.tensor(index)))
        _compare(*fns, [_array(rng, shape, dtype)], seed)

    check()


def test_gather_index_dtypes(backend):
    x = np.arange(12.0).reshape(3, 4)
    index = np.array([[3, 0], [1, 1], [2, 0]])
    want = torch.tensor(x).gather(1, torch.tensor(index)).numpy()
    for dtype in (np.int64, np.int32):
        np.testing.assert_array_equal(gn.tensor(x).gather(1, gn.tensor(index.astype(dtype))).numpy(), want)


# --- masked_fill ----------------------------------------------------------------
@st.composite
def masked_fill_case(draw, size):
    shape = _shape(draw, size, min_dims=0)
    mask_shape = [draw(st.sampled_from([n, 1])) for n in shape]  # broadcast along some dims
    mask_shape = mask_shape[draw(st.integers(0, len(shape))):]  # and fewer dims
    if len(mask_shape) == len(shape) and draw(st.integers(0, 4)) == 0:
        mask_shape = [draw(st.integers(1, 2))] + mask_shape  # a mask with more dims than input
    dtype = draw(st.sampled_from(DTYPES))
    values = [0.0, 2.5, -3, 7] + ([float("-inf"), float("inf"), float("nan")] if dtype != "int64" else [])
    value = draw(st.sampled_from(values))
    value_kind = draw(st.sampled_from(["number", "tensor"] if dtype == "int64" else ["number", "tensor", "grad"]))
    return shape, tuple(mask_shape), value, value_kind, draw(st.booleans()), dtype, draw(seeds)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf * gy summed: a NaN loss
def test_masked_fill_matches_pytorch(backend):
    """Broadcast masks, -inf/inf/nan fills; a 0-d value tensor gets the masked gradient."""
    @_settings(backend)
    @given(masked_fill_case(SIZE[backend]))
    def check(case):
        shape, mask_shape, value, value_kind, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        mask = rng.random(mask_shape) < 0.5
        arrays = [_array(rng, shape, dtype)]
        if value_kind == "grad":
            arrays.append(np.array(value, dtype=dtype))

        def run(lib):
            def op(x, *v):
                if value_kind == "number":
                    fill = value
                elif value_kind == "tensor":
                    fill = lib.tensor(np.array(value, dtype=dtype))
                else:
                    fill = v[0]
                m = lib.tensor(mask)
                return getattr(lib, "masked_fill")(x, m, fill) if function_form else x.masked_fill(m, fill)
            return op

        _compare(run(gn), run(torch), arrays, seed)

    check()


def test_masked_fill_softmax_with_minus_inf(backend):
    """The attention idiom: -inf where masked, then softmax; the gradient is torch's."""
    scores = np.random.default_rng(3).standard_normal((2, 4, 4))
    causal = np.triu(np.ones((4, 4), bool), 1)
    _compare(lambda s: gn.softmax(s.masked_fill(gn.tensor(causal), float("-inf")), -1),
             lambda s: torch.softmax(s.masked_fill(torch.tensor(causal), float("-inf")), -1),
             [scores], 4, exact=False)


# --- sort, topk -----------------------------------------------------------------
@st.composite
def sort_case(draw, size):
    shape = _shape(draw, size + 1, min_dims=0)
    return (shape, _dim(draw, len(shape)), draw(st.booleans()), draw(st.sampled_from([None, False, True])),
            draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds))


def test_sort_matches_pytorch_stable(backend):
    """Values exactly; indices (with ties and NaNs) as torch's stable sort gives them."""
    @_settings(backend, factor=2)
    @given(sort_case(SIZE[backend]))
    def check(case):
        shape, d, descending, stable, nan, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        kw = dict(dim=d, descending=descending, **({} if stable is None else dict(stable=stable)))
        x = _array(rng, shape, dtype, ties=True, nan=nan)
        fn = (lambda t: gn.sort(t, **kw)) if function_form else (lambda t: t.sort(**kw))
        ys = _compare(fn, lambda t: torch.sort(t, dim=d, descending=descending, stable=True), [x], seed)
        assert ys[1].dtype == np.int64
        # the namedtuple fields, as torch.return_types.sort
        out = gn.tensor(x).sort(**kw)
        np.testing.assert_array_equal(out.values.numpy(), ys[0].numpy())
        np.testing.assert_array_equal(out.indices.numpy(), ys[1].numpy())

    check()


@pytest.mark.parametrize("descending", [False, True])
def test_sort_ties_keep_their_first_order(backend, descending):
    x = [1.0, 2.0, 1.0, 2.0, 0.0, 2.0, 1.0]
    got = gn.tensor(x).sort(descending=descending)
    want = torch.tensor(x).sort(descending=descending, stable=True)
    assert got.values.tolist() == want.values.tolist()
    assert got.indices.tolist() == want.indices.tolist()


@st.composite
def topk_case(draw, size):
    shape = _shape(draw, size + 1, min_dims=0)
    d = _dim(draw, len(shape))
    n = shape[d] if shape else 1
    return (shape, d, draw(st.integers(0, n)), draw(st.booleans()), draw(st.booleans()),
            draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds))


def test_topk_matches_pytorch(backend):
    """Values as torch.topk's; indices (ties included) and gradients as torch's stable sort's
    first k (torch.topk itself picks among tied elements in an unspecified order)."""
    @_settings(backend, factor=2)
    @given(topk_case(SIZE[backend]))
    def check(case):
        shape, d, k, largest, nan, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        x = _array(rng, shape, dtype, ties=True, nan=nan)

        def reference(t):
            if t.ndim == 0:
                return torch.topk(t, k, largest=largest)
            s = torch.sort(t, dim=d, descending=largest, stable=True)
            return s.values.narrow(d, 0, k), s.indices.narrow(d, 0, k)

        kw = dict(dim=d, largest=largest)
        fn = (lambda t: gn.topk(t, k, **kw)) if function_form else (lambda t: t.topk(k, **kw))
        ys = _compare(fn, reference, [x], seed)
        values = torch.topk(torch.tensor(x), k, dim=d, largest=largest).values.numpy()
        np.testing.assert_array_equal(ys[0].numpy(), values)
        assert ys[1].dtype == np.int64

    check()
