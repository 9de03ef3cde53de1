"""In-place semantics against PyTorch: ``x.add_(y)``, ``x += 1``, version counters, and the dtype
and shape rules (gpunet/ops/inplace.py); ``x[idx] = v`` is in test_inplace_setitem_pytorch.py, and
autograd's in-place rules, ``.data``, ``detach()`` and views in test_inplace_autograd_pytorch.py.

Most tests write one scenario as a function of the library (``L`` is ``gpunet`` or ``torch``),
run it on both and compare what it returns: tensors (shape, dtype, values), numbers and flags.
Where torch raises, gpunet must raise the same exception type.  gpunet runs on each backend
(``backend`` fixture; cuda in Numba's simulator, so the cases are small).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import gpunet as gn

torch = pytest.importorskip("torch")

EXAMPLES = {"numpy": 200, "cuda": 40}


def _settings(backend):
    return settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _host(v):
    if isinstance(v, gn.Tensor):
        return v.numpy()
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return v


def _np_dtype(tdtype):
    return torch.empty(0, dtype=tdtype).numpy().dtype


def _same(got, want, what="result", rtol=1e-6, atol=1e-6):
    """Compare one returned item (a tensor, None, a number, a flag) or a list of them."""
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), what
        for k, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{what}[{k}]", rtol, atol)
        return
    if isinstance(want, torch.Tensor):
        assert isinstance(got, gn.Tensor), f"{what}: {type(got).__name__}, PyTorch a tensor"
        assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}"
        assert got.dtype == _np_dtype(want.dtype), f"{what}: dtype {got.dtype}, PyTorch {want.dtype}"
        np.testing.assert_allclose(_host(got), _host(want), rtol=rtol, atol=atol, err_msg=what)
        return
    assert got == want, f"{what}: {got!r}, PyTorch {want!r}"


def _both(scenario, match=None):
    """Run ``scenario(torch)`` and ``scenario(gn)``; the same results, or the same exception
    type (gpunet's message matching ``match`` when given)."""
    try:
        want = scenario(torch)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        with pytest.raises(Exception) as ours:
            scenario(gn)
        assert isinstance(ours.value, type(exc)), (
            f"gpunet raised {type(ours.value).__name__}: {ours.value}; "
            f"PyTorch {type(exc).__name__}: {exc}")
        if match is not None:
            assert ours.match(match)
        return ours.value
    assert match is None, f"PyTorch did not raise (expected gpunet's {match!r})"
    _same(scenario(gn), want)
    return None


# --- every in-place op's values and version ---------------------------------------------
X = np.array([[0.5, -1.5, 2.0], [3.0, -0.25, 1.0]])
POS = np.abs(X) + 0.5
OTHER = np.array([[2.0, 0.5, -1.0], [1.5, 4.0, -2.0]])
ROW = np.array([1.0, -2.0, 0.5])
MASK = np.array([[True, False, True], [False, False, True]])

# name, the input, call(L, t) -> the in-place call's result; the ops with a tensor or a
# broadcast row as their other operand too.
OPS = [
    ("add_", X, lambda L, t: t.add_(L.tensor(OTHER))),
    ("add_-alpha", X, lambda L, t: t.add_(L.tensor(OTHER), alpha=-0.5)),
    ("add_-number", X, lambda L, t: t.add_(3)),
    ("add_-row", X, lambda L, t: t.add_(L.tensor(ROW))),
    ("sub_", X, lambda L, t: t.sub_(L.tensor(OTHER))),
    ("sub_-alpha", X, lambda L, t: t.sub_(L.tensor(ROW), alpha=2)),
    ("mul_", X, lambda L, t: t.mul_(L.tensor(OTHER))),
    ("mul_-number", X, lambda L, t: t.mul_(-2.5)),
    ("div_", X, lambda L, t: t.div_(L.tensor(OTHER))),
    ("div_-number", X, lambda L, t: t.div_(4)),
    ("true_divide_", X, lambda L, t: t.true_divide_(L.tensor(ROW))),
    ("pow_", POS, lambda L, t: t.pow_(2)),
    ("pow_-half", POS, lambda L, t: t.pow_(0.5)),
    ("pow_-tensor", POS, lambda L, t: t.pow_(L.tensor(OTHER))),
    ("zero_", X, lambda L, t: t.zero_()),
    ("fill_", X, lambda L, t: t.fill_(7.5)),
    ("fill_-tensor", X, lambda L, t: t.fill_(L.tensor(-2.0, dtype=L.float64))),
    ("copy_", X, lambda L, t: t.copy_(L.tensor(OTHER))),
    ("copy_-broadcast", X, lambda L, t: t.copy_(L.tensor(ROW))),
    ("clamp_", X, lambda L, t: t.clamp_(-1.0, 1.0)),
    ("clamp_-min", X, lambda L, t: t.clamp_(min=0.0)),
    ("clamp_-max", X, lambda L, t: t.clamp_(max=0.75)),
    ("clip_", X, lambda L, t: t.clip_(-0.5, 0.5)),
    ("masked_fill_", X, lambda L, t: t.masked_fill_(L.tensor(MASK), -9.0)),
    ("masked_fill_-inf", X, lambda L, t: t.masked_fill_(L.tensor(MASK[0]), float("-inf"))),
    ("exp_", X, lambda L, t: t.exp_()),
    ("log_", POS, lambda L, t: t.log_()),
    ("sqrt_", POS, lambda L, t: t.sqrt_()),
    ("abs_", X, lambda L, t: t.abs_()),
    ("neg_", X, lambda L, t: t.neg_()),
    ("sigmoid_", X, lambda L, t: t.sigmoid_()),
    ("tanh_", X, lambda L, t: t.tanh_()),
    ("relu_", X, lambda L, t: t.relu_()),
]
DUNDERS = [
    ("+=", lambda t, o: t.__iadd__(o)), ("-=", lambda t, o: t.__isub__(o)),
    ("*=", lambda t, o: t.__imul__(o)), ("/=", lambda t, o: t.__itruediv__(o)),
    ("**=", lambda t, o: t.__ipow__(o)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, data, call", OPS, ids=[o[0] for o in OPS])
def test_inplace_op_values_and_version(backend, name, data, call, dtype):
    """The value written, the same object returned, one version step, shared with views."""
    def scenario(L):
        t = L.tensor(data.astype(dtype))
        view = t[1]
        out = call(L, t)
        return [out is t, t, view, t._version, view._version]

    _both(scenario)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # -inf * weights summed: a NaN loss
@pytest.mark.parametrize("name, data, call", OPS, ids=[o[0] for o in OPS])
def test_inplace_op_gradient_on_a_non_leaf(backend, name, data, call):
    """``y = a * 1; y.op_(...)``: the gradient flows through the in-place op to ``a``."""
    weights = OTHER[::-1].copy()

    def scenario(L):
        a = L.tensor(data, requires_grad=True)
        y = a * 1
        call(L, y)
        (y * L.tensor(weights)).sum().backward()
        return [y, a.grad, y.requires_grad, y.is_leaf]

    _both(scenario)


@pytest.mark.parametrize("op, fn", DUNDERS, ids=[d[0] for d in DUNDERS])
@pytest.mark.parametrize("other", ["number", "tensor", "row"])
def test_augmented_assignment(backend, op, fn, other):
    def scenario(L):
        t = L.tensor(POS)
        alias = t
        o = {"number": 2.0, "tensor": L.tensor(OTHER), "row": L.tensor(ROW)}[other]
        out = fn(t, o)
        return [out is alias, alias, alias._version]

    _both(scenario)


def test_augmented_assignment_on_a_non_leaf(backend):
    """``y += 1`` on a non-leaf: y changes in place, the gradient reaches a."""
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = a * 2
        before = y
        y += 1
        y *= y.detach()  # a constant factor: the gradient scales by it
        (y * y).sum().backward()
        return [y is before, y, a.grad, y._version]

    _both(scenario)


def test_uniform_and_normal_fill_in_place(backend):
    gn.manual_seed(0)
    for dtype in ("float32", "float64"):
        t = gn.zeros(4000, dtype=dtype)
        view = t[:10]
        assert t.uniform_(2.0, 3.0) is t and t._version == 1 == view._version
        u = t.numpy()
        assert u.dtype == dtype and u.min() >= 2.0 and u.max() < 3.0 and abs(u.mean() - 2.5) < 0.02
        np.testing.assert_array_equal(view.numpy(), u[:10])
        assert t.normal_(5.0, 0.5) is t and t._version == 2
        z = t.numpy()
        assert abs(z.mean() - 5.0) < 0.05 and abs(z.std() - 0.5) < 0.05
    gn.manual_seed(3)
    first = gn.zeros(5).uniform_().tolist()
    gn.manual_seed(3)
    assert gn.zeros(5).uniform_().tolist() == first


# --- dtype and shape rules ----------------------------------------------------------
DTYPE_CASES = [
    ("int-add-float", lambda L: L.tensor([1, 2]).add_(1.5)),
    ("int-mul-float", lambda L: L.tensor([1, 2]).mul_(2.0)),
    ("int-div", lambda L: L.tensor([1, 2]).div_(2)),
    ("int-iadd-float-tensor", lambda L: L.tensor([1, 2]).__iadd__(L.tensor([0.5, 0.5]))),
    ("int-add-int", lambda L: L.tensor([1, 2]).add_(3)),
    ("int-add-int-tensor", lambda L: L.tensor([1, 2]).add_(L.tensor([3, 4]))),
    ("int-add-bool", lambda L: L.tensor([1, 2]).add_(True)),
    ("bool-add-int", lambda L: L.tensor([True, False]).add_(1)),
    ("float-add-int-tensor", lambda L: L.tensor([1.0, 2.0]).add_(L.tensor([1, 2]))),
    ("float32-add-float64", lambda L: L.tensor([1.0, 2.0]).add_(L.tensor([0.5, 0.25], dtype=L.float64))),
    ("float64-add-float32", lambda L: L.tensor([1.0, 2.0], dtype=L.float64).add_(L.tensor([0.5, 0.25]))),
    ("int-fill-float", lambda L: L.tensor([1, 2]).fill_(2.7)),
    ("int-copy-float", lambda L: L.tensor([1, 2]).copy_(L.tensor([1.7, -2.2]))),
    ("int-clamp", lambda L: L.tensor([-3, 0, 5]).clamp_(-1, 2)),
    ("int-masked_fill", lambda L: L.tensor([1, 2, 3]).masked_fill_(L.tensor([True, False, True]), 2.5)),
    ("int-masked_fill-inf", lambda L: L.tensor([1, 2, 3]).masked_fill_(L.tensor([True, False, True]), float("inf"))),
]


@pytest.mark.parametrize("case", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_inplace_dtype_rules(backend, case):
    """PyTorch's casting rule for in-place results: no float into an integer tensor."""
    _both(case[1], match=r"can't be cast|cannot be converted" if case[0] in (
        "int-add-float", "int-mul-float", "int-div", "int-iadd-float-tensor", "int-masked_fill-inf") else None)


SHAPE_CASES = [
    ("add-bigger", lambda L: L.zeros(3).add_(L.ones(2, 3))),
    ("add-misaligned", lambda L: L.zeros(2, 3).add_(L.ones(2))),
    ("mul-bigger-row", lambda L: L.zeros(1, 3).mul_(L.ones(2, 3))),
    ("sub-broadcast-ok", lambda L: L.zeros(2, 3).sub_(L.ones(1, 3))),
    ("add-leading-one-ok", lambda L: L.zeros(3).add_(L.ones(1, 3))),
    ("copy-misaligned", lambda L: L.zeros(2, 3).copy_(L.ones(2))),
    ("copy-bigger", lambda L: L.zeros(3).copy_(L.ones(2, 3))),
    ("masked_fill-bigger-mask", lambda L: L.zeros(3).masked_fill_(L.ones(2, 3, dtype=L.bool), 1.0)),
    ("fill-1d-tensor", lambda L: L.zeros(3).fill_(L.tensor([1.0]))),
    ("setitem-misaligned", lambda L: L.zeros(2, 3).__setitem__(0, L.tensor([1.0, 2.0]))),
    ("setitem-too-big", lambda L: L.zeros(2, 3).__setitem__(slice(None), L.ones(3, 3))),
    ("write-into-expanded", lambda L: L.zeros(1, 3).expand(2, 3).add_(1)),
    ("setitem-all-of-expanded", lambda L: L.zeros(1, 3).expand(2, 3).__setitem__(slice(None), 1.0)),
]


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_inplace_shape_rules(backend, case):
    """A result that does not fit this tensor's shape is torch's RuntimeError."""
    _both(lambda L: [case[1](L)])


def test_shape_errors_are_runtime_errors_naming_the_shapes(backend):
    with pytest.raises(RuntimeError, match=r"\[2\].*\[2, 3\]"):
        gn.zeros(2, 3).add_(gn.ones(2))
    with pytest.raises(RuntimeError, match=r"0-dimension"):
        gn.zeros(3).fill_(gn.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"more than one element .* single memory location"):
        gn.zeros(1, 3).expand(2, 3).mul_(2)
