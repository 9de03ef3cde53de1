"""gn.cuda.make_graphed_callables (issue 24): the graphed forward and backward against eager
autograd, bit for bit, with one output or a tuple of them; the refusals."""
import copy

import numpy as np
import pytest

import gpunet as gn
from gpunet import nn


def copy_of(obj):
    return copy.deepcopy(obj)


def test_graphed_callable_matches_eager_and_refuses_another_shape():
    gn.manual_seed(0)
    layer, x = nn.Linear(4, 3), gn.randn(2, 4, requires_grad=True)
    eager = copy_of(layer)
    graphed = gn.cuda.make_graphed_callables(layer, (gn.randn(2, 4, requires_grad=True),))
    for _ in range(2):
        for m in (layer, eager):
            for p in m.parameters():
                p.grad = None
        x.grad = None
        graphed(x).tanh().sum().backward()
        gx, gw = x.grad.numpy().copy(), layer.weight.grad.numpy().copy()
        x.grad = None
        eager(x).tanh().sum().backward()
        assert np.array_equal(gx, x.grad.numpy()) and np.array_equal(gw, eager.weight.grad.numpy())
    with pytest.raises(ValueError, match=r"argument 0 is \(3, 4\) float32, the graph was captured "
                                         r"with \(2, 4\) float32"):
        graphed(gn.randn(3, 4))
    with pytest.raises(ValueError, match="argument 0 is .* float64"):
        graphed(gn.randn(2, 4).double())


def test_graphed_module_in_another_mode_runs_eagerly_and_grads_accumulate():
    gn.manual_seed(0)
    block = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    graphed = gn.cuda.make_graphed_callables(block, (gn.randn(2, 4, requires_grad=True),))
    x = gn.randn(2, 4)
    block.eval()
    assert np.array_equal(graphed(x).numpy(), block[0](x).numpy())  # no dropout in eval
    layer = nn.Linear(4, 3)
    graphed = gn.cuda.make_graphed_callables(layer, (gn.randn(2, 4, requires_grad=True),))
    assert layer.weight.grad is None  # the capture's gradient buffers are the graph's own
    graphed(x).sum().backward()
    first = layer.weight.grad.numpy().copy()
    graphed(x).sum().backward()  # accumulates into .grad, as eager autograd does
    assert np.array_equal(layer.weight.grad.numpy(), 2 * first)


class TwoHeads(nn.Module):
    """A trunk shared by two outputs, as a graphed callable may return a tuple."""

    def __init__(self):
        super().__init__()
        self.trunk, self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 3), nn.Linear(5, 2)

    def forward(self, x):
        h = self.trunk(x).tanh()
        return self.a(h), self.b(h)


def test_graphed_callable_with_two_outputs_matches_eager_bit_for_bit(backend):
    gn.manual_seed(0)
    model, x = TwoHeads(), gn.randn(2, 4, requires_grad=True)
    eager = copy_of(model)
    graphed = gn.cuda.make_graphed_callables(model, (gn.randn(2, 4, requires_grad=True),))
    for _ in range(3):
        grads = []
        for m in (model, eager):
            for p in m.parameters():
                p.grad = None
            x.grad = None
            a, b = graphed(x) if m is model else eager(x)
            assert (tuple(a.shape), tuple(b.shape)) == ((2, 3), (2, 2))
            (a.sin().sum() + (b * b).sum()).backward()
            grads.append([x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()])
            outs = (a.numpy().copy(), b.numpy().copy())
            if m is model:
                graphed_outs = outs
        for got, want in zip(grads[0], grads[1]):
            assert np.array_equal(got, want)
        assert all(np.array_equal(g, e) for g, e in zip(graphed_outs, outs))


def test_an_unused_output_gets_no_gradient_and_a_tuple_of_one_stays_a_tuple():
    gn.manual_seed(0)
    model = TwoHeads()
    graphed = gn.cuda.make_graphed_callables(model, (gn.randn(2, 4, requires_grad=True),))
    a, _ = graphed(gn.randn(2, 4))
    a.sum().backward()  # b's head gets zeros, as it would eagerly
    assert not model.b.weight.grad.numpy().any() and model.a.weight.grad.numpy().any()
    one = gn.cuda.make_graphed_callables(lambda x: (x * 2,), (gn.randn(3, requires_grad=True),))
    out = one(gn.ones(3))
    assert isinstance(out, tuple) and out[0].numpy().tolist() == [2.0, 2.0, 2.0]


def test_outputs_a_graph_cannot_return_are_refused_in_one_line():
    x = gn.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="output 1 is of type int; a graphed callable returns a Tensor"):
        gn.cuda.make_graphed_callables(lambda x: (x * 2, 3), (x,))
    with pytest.raises(ValueError, match="output 0 does not require grad"):
        gn.cuda.make_graphed_callables(lambda x: x.detach(), (x,))
    with pytest.raises(NotImplementedError, match=r"dtypes \['float32', 'float64'\]"):
        gn.cuda.make_graphed_callables(lambda x: (x * 2, x.double()), (x,))
    with pytest.raises(ValueError, match="returns an empty tuple"):
        gn.cuda.make_graphed_callables(lambda x: (), (x,))

