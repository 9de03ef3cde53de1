"""``gn.cuda.make_graphed_callables``: a module or function whose forward and backward are
each one captured graph, used inside an eager autograd graph (PyTorch's function of the name).

Example:
    >>> layer = nn.Linear(4, 3)
    >>> x = gn.randn(2, 4, requires_grad=True)
    >>> graphed = gn.cuda.make_graphed_callables(layer, (x,))
    >>> out = graphed(gn.randn(2, 4))
    >>> out.sum().backward(); tuple(layer.weight.grad.shape)
    (3, 4)
"""
from __future__ import annotations

from .function import Function, no_grad
from .graphs import CUDAGraph, graph
from .creation import ones_like
from .tensor import Tensor


def make_graphed_callables(callables, sample_args, num_warmup_iters=3, allow_unused_input=False,
                           pool=None):
    """Graphed versions of ``callables`` (one callable, or a tuple of them with a tuple of
    sample-argument tuples).  Each runs ``num_warmup_iters`` eager forward/backward passes on
    its sample arguments, then captures one forward and one backward graph.  A graphed
    callable takes tensors of the sample arguments' shapes and dtypes only (anything else is
    refused, naming the argument); a Module comes back with its ``forward`` replaced."""
    single = not isinstance(callables, tuple)
    fns = (callables,) if single else callables
    args_list = (sample_args,) if single else sample_args
    if len(fns) != len(args_list):
        raise ValueError(f"make_graphed_callables: {len(fns)} callables but {len(args_list)} "
                         "tuples of sample arguments")
    out = tuple(_graphed(fn, tuple(args), num_warmup_iters, allow_unused_input)
                for fn, args in zip(fns, args_list))
    return out[0] if single else out


def _graphed(fn, sample, warmup, allow_unused):
    for i, a in enumerate(sample):
        if not isinstance(a, Tensor):
            raise TypeError(f"make_graphed_callables: sample argument {i} must be a Tensor, "
                            f"got {type(a).__name__}")
    params = tuple(p for p in getattr(fn, "parameters", lambda: ())() if p.requires_grad)
    needs = tuple(a for a in sample if a.requires_grad) + params
    for _ in range(warmup):  # eager passes: lazily made state exists before the capture
        outs = _as_tuple(fn(*sample))
        _backward(outs, [ones_like(o) for o in outs], needs)
    fwd, bwd = CUDAGraph(), CUDAGraph()
    with graph(fwd):
        static_out = _as_tuple(fn(*sample))
    if len(static_out) != 1:
        raise NotImplementedError(f"make_graphed_callables: the callable returns {len(static_out)} "
                                  "tensors; gpunet graphs callables with one output tensor")
    static_grad_out = [Tensor._wrap(o.backend.xp.zeros_like(o._data), o.backend) for o in static_out]
    with graph(bwd):
        static_grads = _backward(static_out, static_grad_out, needs)
    with no_grad():
        for t in needs:  # the graph's gradient buffers are its own, not the tensors' .grad
            t.grad = None
    if not allow_unused and any(g is None for g in static_grads):
        raise RuntimeError("make_graphed_callables: an input or parameter that requires grad "
                           "does not reach the output; pass allow_unused_input=True")

    class Graphed(Function):
        @staticmethod
        def forward(ctx, *arrays):
            for static, new in zip(sample, arrays[:len(sample)]):
                static._data[...] = new
            fwd.replay()
            return static_out[0]._data.copy()

        @staticmethod
        def backward(ctx, gy):
            static_grad_out[0]._data[...] = gy
            bwd.replay()
            grads = [None if g is None else g._data.copy() for g in static_grads]
            it = iter(grads)
            return tuple(next(it) if a.requires_grad else None for a in sample) + tuple(it)

    def graphed(*args):
        if len(args) != len(sample):
            raise TypeError(f"graphed callable: {len(args)} arguments, captured with {len(sample)}")
        for i, (a, static) in enumerate(zip(args, sample)):  # the static inputs keep their shapes
            if not isinstance(a, Tensor) or a.shape != static.shape or a.dtype != static.dtype:
                got = (f"{tuple(a.shape)} {a.dtype}" if isinstance(a, Tensor) else type(a).__name__)
                raise ValueError(f"graphed callable: argument {i} is {got}, the graph was captured "
                                 f"with {tuple(static.shape)} {static.dtype}; capture another "
                                 "graph for this shape")
        return Graphed.apply(*args, *params)

    if hasattr(fn, "forward") and hasattr(fn, "parameters"):
        eager, training = fn.forward, fn.training

        def forward(*args):  # as PyTorch: the graph in the mode it was captured in
            return graphed(*args) if fn.training == training else eager(*args)

        fn.forward = forward
        return fn
    return graphed


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _backward(outs, grads, needs):
    """Gradients of ``outs`` (weighted by ``grads``) with respect to ``needs``, as new .grad."""
    with no_grad():
        for t in needs:
            t.grad = None
    for o, g in zip(outs, grads):
        o.backward(g)
    return [t.grad for t in needs]
