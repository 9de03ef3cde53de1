"""Autograd's in-place rules against PyTorch: the version counter and its error, gradients
routed to the value an op saw, leaves, ``.data`` and ``detach()``, and views that see writes
both ways (gpunet/ops/inplace.py).  The scenario helpers are test_inplace_pytorch.py's."""
from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from test_inplace_pytorch import _same, _both

torch = pytest.importorskip("torch")


# --- autograd and the version counter ----------------------------------------------------
def test_changing_a_saved_tensor_raises_at_backward(backend):
    """``z = y * y; y.add_(1)``: MulBackward saved y, so backward is torch's RuntimeError."""
    def scenario(L):
        y = L.ones(3, requires_grad=True) * 2
        z = y * y
        y.add_(1)
        z.sum().backward()

    err = _both(scenario, match="modified by an inplace operation")
    assert "version 1; expected version 0" in str(err)


@pytest.mark.parametrize("name, change", [
    ("add_", lambda y: y.add_(1)), ("setitem", lambda y: y.__setitem__(0, 5.0)),
    ("iadd", lambda y: y.__iadd__(1)), ("zero_", lambda y: y.zero_()),
    ("detach-mul_", lambda y: y.detach().mul_(2)), ("view-fill_", lambda y: y.view(3).detach().fill_(0)),
])
def test_every_kind_of_change_to_a_saved_tensor_is_caught(backend, name, change):
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = a * 1
        z = y.sin()  # SinBackward saves its input
        change(y)
        z.sum().backward()

    _both(scenario, match="modified by an inplace operation")


def test_changing_a_saved_output_raises(backend):
    def scenario(L):
        a = L.tensor([0.0, 1.0], requires_grad=True)
        y = a.exp()  # ExpBackward saves its output
        y.add_(1)
        y.sum().backward()

    _both(scenario, match="modified by an inplace operation")


def test_changing_an_unsaved_input_routes_gradients_to_the_old_value(backend):
    """``z = y + 1; y.mul_(2); (z + y).sum().backward()``: AddBackward saved nothing; z's
    gradient reaches the value y had, the new y's through MulBackward."""
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = a * 2
        z = y + 1
        y.mul_(2)
        (z + y).sum().backward()
        return [a.grad, y, z, y._version]

    _both(scenario)


@pytest.mark.parametrize("name, code", [
    ("chain", "y.mul_(3); y.add_(1); y.pow_(2)"),
    ("self-add", "y.add_(y)"),
    ("self-mul", "y.mul_(y)"),
    ("other-changed-after-add", "y.add_(w); w.mul_(2)"),
    ("setitem-then-op", "y[0] = w[1] * 4; y.mul_(2)"),
])
def test_sequences_of_inplace_ops_give_torchs_gradients(backend, name, code):
    def scenario(L):
        a = L.tensor([0.5, 1.0, -2.0], requires_grad=True)
        b = L.tensor([3.0, -1.0, 0.25], requires_grad=True)
        y, w = a * 1, b * 1
        exec(code, {"y": y, "w": w})
        (y * L.tensor([1.0, 2.0, 3.0])).sum().backward()
        return [y, a.grad, b.grad, y._version, w._version]

    _both(scenario)


def test_mul_by_a_changed_other_operand_raises(backend):
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        b = L.tensor([3.0, 4.0], requires_grad=True)
        y, w = a * 1, b * 1
        y.mul_(w)  # saved w
        w.mul_(2)
        y.sum().backward()

    _both(scenario, match="modified by an inplace operation")


@pytest.mark.parametrize("call", [
    lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.__setitem__(0, 5.0),
    lambda t: t.__iadd__(1), lambda t: t.copy_(t.detach() * 2), lambda t: t.uniform_(),
])
def test_leaf_requiring_grad_cannot_change_in_place(backend, call):
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        call(a)

    _both(scenario, match="leaf Variable that requires grad")


def test_leaf_requiring_grad_changes_under_no_grad(backend):
    """What an optimiser step does; the leaf stays a leaf that requires grad."""
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (a * a).sum().backward()
        with L.no_grad():
            a.sub_(a.grad, alpha=0.1)
            a[0] = 10.0
            a *= 2
        return [a, a._version, a.requires_grad, a.is_leaf, a.grad]

    _both(scenario)


def test_inplace_under_no_grad_on_a_non_leaf(backend):
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        y = a * 2
        with L.no_grad():
            y.add_(1)
        (y * y).sum().backward()  # MulBackward saves y after the change: fine
        return [y, a.grad, y.requires_grad]

    _both(scenario)


def test_inplace_with_an_operand_that_requires_grad(backend):
    """A plain tensor changed by one that requires grad joins the graph."""
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        x = L.zeros(2)
        x.add_(a, alpha=3)
        x.mul_(a)
        (x * L.tensor([1.0, 2.0])).sum().backward()
        return [x, a.grad, x.requires_grad, x.is_leaf, x._version]

    _both(scenario)


def test_copy_into_a_tensor_takes_the_gradient(backend):
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        y = L.zeros(2, 2)
        y.copy_(a * 3)  # broadcast over rows
        (y * L.tensor([[1.0, 5.0], [2.0, 7.0]])).sum().backward()
        return [y, a.grad, y.requires_grad]

    _both(scenario)


# --- .data and detach() ---------------------------------------------------------------
def test_data_shares_storage_and_not_the_version(backend):
    """``p.data.add_(g, alpha=-lr)`` updates p; p's version does not move (torch's .data)."""
    def scenario(L):
        p = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (p * p).sum().backward()
        d = p.data
        out = d.add_(p.grad, alpha=-0.1)
        return [out is d, p, p._version, d._version, d.requires_grad, d.is_leaf, p.requires_grad,
                p.data._version]

    _both(scenario)


def test_changing_data_of_a_saved_tensor_is_not_caught(backend):
    """Through ``.data`` autograd sees nothing: backward runs and uses the new values."""
    def scenario(L):
        p = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        z = p * p
        p.data.mul_(2)
        z.sum().backward()
        return [p.grad, p._version]

    _both(scenario)


def test_data_of_a_non_leaf(backend):
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        y = a.exp()
        y.data.zero_()
        y.sum().backward()
        return [a.grad, y, y._version]

    _both(scenario)


def test_detach_shares_storage_and_the_version_counter(backend):
    def scenario(L):
        p = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = p * 1
        d = y.detach()
        versions = [y._version, d._version]
        d.add_(1)
        versions += [y._version, d._version]
        y.mul_(2)
        versions += [y._version, d._version]
        return [y, d, versions, d.requires_grad, d.is_leaf]

    _both(scenario)


def test_version_counters_over_views_and_handles(backend):
    """Each handle's ``_version`` after a sequence of changes through views, detach and .data."""
    def scenario(L):
        x = L.zeros(2, 3)
        d = x.detach()
        v = x[0]
        t = x.t()
        flat = x.view(6)
        seen = []
        for change in (lambda: d.add_(1), lambda: v.mul_(2), lambda: x.zero_(),
                       lambda: x.data.add_(1), lambda: t[1].fill_(4.0), lambda: flat.__setitem__(5, 9.0),
                       lambda: x.__iadd__(1), lambda: x.narrow(1, 0, 2).sub_(1)):
            change()
            seen.append([x._version, d._version, v._version, t._version, flat._version])
        return [x, d, v, t, flat, seen]

    _both(scenario)


def test_fresh_tensors_start_at_version_zero(backend):
    def scenario(L):
        x = L.zeros(2)
        return [x._version, x.detach()._version, x[0]._version, x.clone()._version,
                (x + 1)._version, x.data._version]

    _both(scenario)


# --- views see in-place writes both ways -----------------------------------------------------
VIEWS = [
    ("view", lambda x: x.view(6)),
    ("reshape", lambda x: x.reshape(3, 2)),
    ("row", lambda x: x[1]),
    ("column-slice", lambda x: x[:, 1:]),
    ("step-slice", lambda x: x[:, ::2]),
    ("transpose", lambda x: x.t()),
    ("T", lambda x: x.T),
    ("permute", lambda x: x.permute(1, 0)),
    ("unsqueeze", lambda x: x.unsqueeze(0)),
    ("narrow", lambda x: x.narrow(1, 1, 2)),
    ("split", lambda x: x.split(2, dim=1)[1]),
    ("chunk", lambda x: x.chunk(2, dim=1)[0]),
    ("detach", lambda x: x.detach()),
    ("data", lambda x: x.data),
]


@pytest.mark.parametrize("name, make", VIEWS, ids=[v[0] for v in VIEWS])
def test_views_see_writes_through_the_base_and_back(backend, name, make):
    def scenario(L):
        x = L.tensor(np.arange(6.0).reshape(2, 3))
        v = make(x)
        v.mul_(10)  # through the view
        after_view = x.clone()
        x.add_(1)  # through the base
        seen = v.clone()
        v[0] = -5.0
        return [after_view, seen, x, v]

    _both(scenario)


@pytest.mark.parametrize("name, make", [
    ("expand", lambda x: x.expand(2, 2, 3)), ("repeat", lambda x: x.repeat(2, 1)),
    ("clone", lambda x: x.clone()), ("int-array", lambda x: x[x.new_tensor([1, 0]).long()]),
    ("bool-mask", lambda x: x[x > 2]), ("contiguous-of-t", lambda x: x.t().contiguous()),
])
def test_reads_and_copies_after_a_write_to_the_base(backend, name, make):
    """expand is a view (it sees the write); repeat, clone and advanced indexing are copies."""
    def scenario(L):
        x = L.tensor(np.arange(6.0).reshape(2, 3))
        v = make(x)
        x.mul_(-1)
        return [v, x]

    _both(scenario)


def test_inplace_on_a_view_while_recording_is_refused(backend):
    """torch routes the gradient of ``y[1:3].mul_(2)`` to y's base (CopySlices); gpunet does
    not support in-place changes of views under autograd and says so instead of giving a wrong
    gradient.  Under no_grad, or on tensors outside the graph, views change in place."""
    a = gn.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = a * 1
    with pytest.raises(RuntimeError, match="in-place change of a view"):
        y[1:3].mul_(2)
    with gn.no_grad():
        y[1:3].mul_(2)
    assert y.tolist() == [1.0, 4.0, 6.0, 4.0]


def test_writing_one_row_of_an_expanded_tensor_is_refused(backend):
    """torch lets ``x.expand(2, 3)[0] = v`` write the shared row (that row has no overlap);
    gpunet's expanded arrays are read-only broadcasts, so any write raises RuntimeError."""
    e = torch.zeros(1, 3).expand(2, 3)
    e[0] = 1.0
    assert e.tolist() == [[1.0] * 3] * 2
    with pytest.raises(RuntimeError, match="single memory location"):
        gn.zeros(1, 3).expand(2, 3)[0] = 1.0


def test_changing_the_output_of_an_inplace_op_again(backend):
    """``y.exp_(); y.mul_(w)``: torch raises at backward (ExpBackward saved y, which mul_
    changed); gpunet's exp_ keeps its own copy of the result for backward, so backward runs
    and gives the gradient of the same computation written out of place."""
    def run(L, inplace):
        a = L.tensor([0.5, 1.0, -2.0], requires_grad=True)
        b = L.tensor([3.0, -1.0, 0.25], requires_grad=True)
        y, w = a * 1, b * 1
        if inplace:
            y.exp_()
            y.mul_(w)
        else:
            y = y.exp() * w
        (y * L.tensor([1.0, 2.0, 3.0])).sum().backward()
        return y, a.grad, b.grad

    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run(torch, True)
    _same(list(run(gn, True)), list(run(torch, False)))


@pytest.mark.parametrize("call", [lambda L, t: t.copy_(L.tensor([1.0, 2.0, 3.0])),
                                  lambda L, t: t.fill_(2.0), lambda L, t: t.fill_(L.tensor(-1.0)),
                                  lambda L, t: t.zero_(), lambda L, t: t.__setitem__(slice(None), 4.0)])
@pytest.mark.parametrize("grad", [False, True])
def test_overwriting_inf_and_nan(backend, call, grad):
    """The old values do not leak into the new ones (inf * 0 is nan)."""
    def scenario(L):
        a = L.tensor([float("inf"), float("nan"), -float("inf")], requires_grad=grad)
        t = a * 1 if grad else a
        call(L, t)
        if grad:
            (t * L.tensor([1.0, 2.0, 3.0])).sum().backward()
        return [t, a.grad if grad else None]

    _both(scenario)


def test_random_fills_stay_in_the_graph(backend):
    """torch's uniform_/normal_ on a non-leaf keep it in the graph with a zero gradient."""
    def scenario(L):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        y = a * 1
        y.uniform_()
        y.normal_()
        z = a * 2 + y
        z.sum().backward()
        return [y.requires_grad, a.grad]

    _both(scenario)
