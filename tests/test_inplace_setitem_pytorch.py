"""``x[index] = value`` against PyTorch (gpunet/ops/inplace.py): values for each kind of index,
casts into integer tensors, any drawn index, and autograd through the assignment, on each
backend.  The scenario helpers are test_inplace_pytorch.py's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from test_inplace_pytorch import _both, _settings  # noqa: E402  (after the skip)


# --- x[index] = value ------------------------------------------------------------------
def _setitem(L, index, value):
    def scenario(_L=L):
        x = L.tensor(np.arange(24.0, dtype=np.float32).reshape(2, 3, 4))
        alias = x
        x[index(L)] = value(L)
        return [alias, x._version]
    return scenario


SETITEMS = [
    ("int", lambda L: 1, lambda L: -1.0),
    ("negative-int", lambda L: -1, lambda L: 5.0),
    ("ints", lambda L: (0, 2, 3), lambda L: 7.0),
    ("slice", lambda L: slice(1, None), lambda L: L.tensor([1.0, 2.0, 3.0, 4.0])),
    ("slice-step", lambda L: (slice(None), slice(0, 3, 2)), lambda L: L.tensor([[9.0], [8.0]]).reshape(2, 1, 1)),
    ("ellipsis", lambda L: (Ellipsis, 1), lambda L: 0.0),
    ("none", lambda L: (None, 0), lambda L: L.ones(3, 4)),
    ("int-array", lambda L: L.tensor([1, 0]), lambda L: L.tensor(-3.0)),
    ("int-array-number", lambda L: L.tensor([1]), lambda L: 2),
    ("int-array-dim1", lambda L: (slice(None), L.tensor([2, 0])), lambda L: L.tensor([1.0, 2.0, 3.0, 4.0])),
    ("int-arrays-paired", lambda L: (L.tensor([0, 1]), L.tensor([2, 0])), lambda L: L.tensor([[5.0] * 4, [6.0] * 4])),
    ("bool-mask-full", lambda L: L.tensor(np.arange(24).reshape(2, 3, 4) % 5 == 0), lambda L: -1.0),
    ("bool-mask-rows", lambda L: L.tensor([True, False]), lambda L: L.tensor([1.0, 2.0, 3.0, 4.0])),
    ("bool-mask-values", lambda L: L.tensor(np.arange(24).reshape(2, 3, 4) > 20), lambda L: L.tensor([1.0, 2.0, 3.0])),
    ("broadcast-row", lambda L: slice(None), lambda L: L.tensor([1.0, 2.0, 3.0, 4.0])),
    ("broadcast-col", lambda L: 0, lambda L: L.tensor([[1.0], [2.0], [3.0]])),
    ("leading-ones", lambda L: (0, 1), lambda L: L.ones(1, 1, 4)),
    ("one-element-into-scalar", lambda L: (0, 1, 2), lambda L: L.tensor([2.5])),
    ("int-value", lambda L: 0, lambda L: 3),
    ("bool-value", lambda L: 0, lambda L: True),
    ("int-tensor-value", lambda L: 1, lambda L: L.tensor([1, 2, 3, 4])),
    ("float64-value", lambda L: 1, lambda L: L.tensor([0.5, 1.5, 2.5, 3.5], dtype=L.float64)),
    # advanced indices: torch's index_put_ casts numbers only (a 0-d value under one mask too)
    ("int-array-float64-value", lambda L: L.tensor([1]), lambda L: L.tensor([0.5, 1.5, 2.5, 3.5], dtype=L.float64)),
    ("int-array-int-0d", lambda L: (0, L.tensor([2, 0])), lambda L: L.tensor(3)),
    ("mask-float64-0d", lambda L: L.tensor([True, False]), lambda L: L.tensor(0.5, dtype=L.float64)),
    ("mask-float64-row", lambda L: L.tensor([True, False]), lambda L: L.tensor([0.5] * 4, dtype=L.float64)),
    ("mask-int-values", lambda L: L.tensor(np.arange(24).reshape(2, 3, 4) > 20), lambda L: L.tensor([1, 2, 3])),
    ("list-value", lambda L: (0, 0), lambda L: L.tensor([4.0, 3.0, 2.0, 1.0])),
]


@pytest.mark.parametrize("name, index, value", SETITEMS, ids=[s[0] for s in SETITEMS])
def test_setitem_values(backend, name, index, value):
    _both(lambda L: _setitem(L, index, value)())


def test_setitem_casts_into_an_integer_tensor(backend):
    """``x[i] = 2.7`` truncates into an int tensor, as torch's index_put_ does (only the
    arithmetic in-place ops refuse a float result)."""
    def scenario(L):
        x = L.zeros(4, dtype=L.int64)
        x[0] = 2.7
        x[1] = L.tensor(-1.9)
        x[2:] = L.tensor([3.5, 4.5])
        b = L.zeros(3, dtype=L.bool)
        b[1] = 2.0
        return [x, b]

    _both(scenario)


@st.composite
def setitem_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    parts = []
    kind = draw(st.sampled_from(["basic", "int-array", "bool-mask"]))
    if kind == "basic":
        for n in shape[:draw(st.integers(1, len(shape)))]:
            part = draw(st.sampled_from(["int", "slice", "all"]))
            if part == "int":
                parts.append(draw(st.integers(-n, n - 1)))
            elif part == "slice":
                start = draw(st.integers(-n, n))
                parts.append(slice(start, draw(st.integers(-n, n) | st.none()), draw(st.integers(1, 3))))
            else:
                parts.append(slice(None))
    elif kind == "int-array":
        d = draw(st.integers(0, len(shape) - 1))
        picks = draw(st.permutations(range(shape[d])))[:draw(st.integers(0, shape[d]))]
        parts = [slice(None)] * d + [np.array(picks, np.int64)]
    else:
        d = draw(st.integers(1, len(shape)))  # a mask over the first d dims
        parts = [draw(st.lists(st.booleans(), min_size=int(np.prod(shape[:d])),
                               max_size=int(np.prod(shape[:d]))))]
        parts = [np.array(parts[0]).reshape(shape[:d])]
    target = np.zeros(shape)[tuple(parts)].shape
    value_shape = [draw(st.sampled_from([n, 1])) for n in target][draw(st.integers(0, len(target))):]
    value_shape = [1] * draw(st.integers(0, 1)) + value_shape  # leading 1s: torch drops them
    value = draw(st.sampled_from(["number", "tensor"]))
    grads = draw(st.sampled_from([(False, False), (True, False), (False, True), (True, True)]))
    return shape, tuple(parts), tuple(value_shape), value, grads, draw(st.integers(0, 2 ** 16))


def test_setitem_any_index_matches_pytorch(backend):
    """Drawn shapes and indices (ints, positive-step slices, integer arrays without repeats,
    boolean masks), broadcast values; with autograd the gradients of the base (through
    ``y = a * 2``) and of the value equal torch's.  Negative steps are not in torch."""
    @_settings(backend)
    @given(setitem_case())
    def check(case):
        shape, parts, value_shape, value_kind, (base_grad, value_grad), seed = case
        rng = np.random.default_rng(seed)
        base = rng.standard_normal(shape)
        v = rng.standard_normal(value_shape)
        w = rng.standard_normal(shape)

        def scenario(L):
            index = tuple(L.tensor(p) if isinstance(p, np.ndarray) else p for p in parts)
            a = L.tensor(base, requires_grad=base_grad)
            val = 1.25 if value_kind == "number" else L.tensor(v, requires_grad=value_grad)
            y = a * 2
            y[index] = val if value_kind == "number" else val * 3
            out = [y, y._version]
            if y.requires_grad:
                (y * L.tensor(w)).sum().backward()
                out += [a.grad if base_grad else None,
                        val.grad if value_kind == "tensor" and value_grad else None]
            return out

        _both(scenario)

    check()


def test_setitem_autograd_as_pytorch(backend):
    """The brief's case: ``y = a * 2; y[1:] = b * 3``; grads of a and b are torch's."""
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = L.tensor([5.0, 6.0], requires_grad=True)
        y = a * 2
        y[1:] = b * 3
        loss = (y * L.tensor([1.0, 2.0, 3.0])).sum()
        loss.backward()
        return [y, loss, a.grad, b.grad, y.is_leaf]

    _both(scenario)


def test_setitem_into_a_plain_tensor_from_a_graph(backend):
    """A tensor that needs no grad becomes part of the graph when a value that does is written."""
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        x = L.zeros(3)
        x[1:] = a * 2
        (x * L.tensor([1.0, 2.0, 3.0])).sum().backward()
        return [x, a.grad, x.requires_grad, x.is_leaf]

    _both(scenario)
