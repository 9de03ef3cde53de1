"""sin, cos, maximum/minimum (gpunet/ops/math.py), bmm and multinomial against PyTorch, on both
backends; the shared helpers are in tests/test_tensor_ops_pytorch.py.

maximum/minimum with equal operands split the gradient in half, as torch does; multinomial's
draws are checked against the weights within five standard errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpunet as gn

torch = pytest.importorskip("torch")

from test_tensor_ops_pytorch import (DTYPES, SIZE, _array, _compare,  # noqa: E402  (after the skip)
                                     _np_dtype, _settings, _shape, seeds)


# --- sin, cos, maximum, minimum ------------------------------------------------------
@pytest.mark.parametrize("name", ["sin", "cos"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sin_cos_match_pytorch(backend, name, dtype):
    rng = np.random.default_rng(5)
    for shape in [(), (0,), (7,), (2, 3, 4)]:
        x = np.asarray(3 * rng.standard_normal(shape)).astype(dtype)
        _compare(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [x], 6, exact=False)
        _compare(lambda t: getattr(gn, name)(t), lambda t: getattr(torch, name)(t), [x], 7, exact=False)


@st.composite
def binary_case(draw, size):
    out = _shape(draw, size, min_dims=0)
    a = [draw(st.sampled_from([n, 1])) for n in out][draw(st.integers(0, len(out))):]
    b = [draw(st.sampled_from([n, 1])) for n in out][draw(st.integers(0, len(out))):]
    dtypes = draw(st.sampled_from([("float64", "float64"), ("float32", "float32"), ("int64", "int64"),
                                   ("int64", "float32"), ("float64", "int64")]))
    return (tuple(a), tuple(b), dtypes, draw(st.sampled_from(["maximum", "minimum"])),
            draw(st.sampled_from(["method", "function", "max-min"])), draw(seeds))


def test_maximum_minimum_match_pytorch(backend):
    """Broadcast shapes, int/float promotion, ties (half the gradient to each side)."""
    @_settings(backend, factor=2)
    @given(binary_case(SIZE[backend]))
    def check(case):
        a_shape, b_shape, (da, db), name, form, seed = case
        rng = np.random.default_rng(seed)
        arrays = [_array(rng, a_shape, da, ties=True), _array(rng, b_shape, db, ties=True)]
        if form == "method":
            fns = (lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b))
        elif form == "function":
            fns = (lambda a, b: getattr(gn, name)(a, b), lambda a, b: getattr(torch, name)(a, b))
        else:  # torch.max(a, b) / torch.min(a, b): the elementwise form
            short = name[:3]
            fns = (lambda a, b: getattr(gn, short)(a, b), lambda a, b: getattr(torch, short)(a, b))
        _compare(*fns, arrays, seed)

    check()


def test_maximum_tie_splits_the_gradient_in_half(backend):
    a = gn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gn.tensor([1.0, 5.0, 3.0], requires_grad=True)
    (gn.maximum(a, b) * gn.tensor([2.0, 4.0, 6.0])).sum().backward()
    ta = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    tb = torch.tensor([1.0, 5.0, 3.0], requires_grad=True)
    (torch.maximum(ta, tb) * torch.tensor([2.0, 4.0, 6.0])).sum().backward()
    assert a.grad.tolist() == ta.grad.tolist() == [1.0, 0.0, 3.0]
    assert b.grad.tolist() == tb.grad.tolist() == [1.0, 4.0, 3.0]


def test_maximum_propagates_nan(backend):
    a, b = [1.0, float("nan"), 2.0], [float("nan"), 3.0, 1.0]
    for name in ("maximum", "minimum"):
        got = getattr(gn, name)(gn.tensor(a), gn.tensor(b)).numpy()
        want = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_array_equal(got, want)


# --- bmm --------------------------------------------------------------------------
@st.composite
def bmm_case(draw, size):
    b, n, m, p = (draw(st.integers(0, size)) for _ in range(4))
    return b, n, m, p, draw(st.sampled_from(DTYPES)), draw(st.booleans()), draw(seeds)


def test_bmm_matches_pytorch(backend):
    @_settings(backend)
    @given(bmm_case(SIZE[backend]))
    def check(case):
        b, n, m, p, dtype, function_form, seed = case
        rng = np.random.default_rng(seed)
        arrays = [_array(rng, (b, n, m), dtype), _array(rng, (b, m, p), dtype)]
        fns = ((lambda x, y: gn.bmm(x, y), lambda x, y: torch.bmm(x, y)) if function_form
               else (lambda x, y: x.bmm(y), lambda x, y: x.bmm(y)))
        _compare(*fns, arrays, seed, exact=False)

    check()


# --- multinomial -------------------------------------------------------------------
def _within_5_standard_errors(counts, trials, p):
    se = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(counts - trials * p) <= 5 * se + 1e-9), (counts, trials * p, se)


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_shapes_dtype_and_support(backend, replacement, dtype):
    gn.manual_seed(1)
    w = np.array([[0.0, 1.0, 2.0, 0.0, 3.0], [5.0, 0.0, 0.0, 1.0, 1.0]], dtype)
    for data, n in [(w[0], 3), (w, 3), (w[1], 1), (w, 2)]:
        got = gn.tensor(data).multinomial(n, replacement=replacement)
        want = torch.tensor(data).multinomial(n, replacement=replacement)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == np.int64 == _np_dtype(want.dtype)
        assert got.backend is gn.get_backend()
        rows = got.numpy().reshape(-1, n)
        for row, p in zip(rows, data.reshape(-1, data.shape[-1])):
            assert np.all(p[row] > 0), "a zero-weight category was drawn"
            if not replacement:
                assert len(set(row.tolist())) == n, "a category was drawn twice without replacement"
    many = gn.multinomial(gn.tensor(w[0]), 50, replacement=True).numpy() if replacement else None
    if many is not None:
        assert many.shape == (50,) and np.all(w[0][many] > 0)


def test_multinomial_is_seeded(backend):
    p = gn.tensor([0.1, 0.2, 0.3, 0.4])
    gn.manual_seed(7)
    first = gn.multinomial(p, 20, replacement=True).tolist()
    gn.manual_seed(7)
    assert gn.multinomial(p, 20, replacement=True).tolist() == first


def test_multinomial_with_replacement_follows_the_weights(backend):
    """Unnormalised weights; counts within 5 standard errors of trials * p."""
    gn.manual_seed(0)
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    trials = 20000
    draws = gn.multinomial(gn.tensor(w), trials, replacement=True).numpy()
    _within_5_standard_errors(np.bincount(draws, minlength=5), trials, w / w.sum())
    rows = gn.multinomial(gn.tensor(np.stack([w, w[::-1]])), trials // 2, replacement=True).numpy()
    _within_5_standard_errors(np.bincount(rows[1], minlength=5), trials // 2, w[::-1] / w.sum())


def test_multinomial_without_replacement_follows_the_weights(backend):
    """First draw ~ p; second draw ~ sum_i p_i p_j / (1 - p_i) over i != j (sequential
    sampling without replacement, torch's meaning)."""
    gn.manual_seed(0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rows = 20000
    draws = gn.multinomial(gn.tensor(np.tile(p, (rows, 1))), 2).numpy()
    assert draws.shape == (rows, 2) and np.all(draws[:, 0] != draws[:, 1])
    _within_5_standard_errors(np.bincount(draws[:, 0], minlength=4), rows, p)
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j) for j in range(4)])
    _within_5_standard_errors(np.bincount(draws[:, 1], minlength=4), rows, second)


def test_multinomial_all_categories_without_replacement_is_a_permutation(backend):
    gn.manual_seed(3)
    out = gn.multinomial(gn.tensor([[0.5, 0.2, 0.3]] * 4), 3).numpy()
    assert sorted(map(sorted, out.tolist())) == [[0, 1, 2]] * 4


def test_multinomial_not_enough_nonzero_categories_without_replacement(backend):
    """torch documents that without replacement num_samples may not exceed the non-zero
    categories; gpunet raises RuntimeError (torch's CPU kernel instead returns zero-weight
    categories after the non-zero ones, an unspecified result)."""
    with pytest.raises(RuntimeError, match="not enough non-negative category"):
        gn.multinomial(gn.tensor([0.0, 1.0, 0.0]), 2)
