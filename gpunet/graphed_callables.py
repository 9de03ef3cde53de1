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
    refused, naming the argument); a Module comes back with its ``forward`` replaced.  A callable
    may return a tuple of tensors (of one dtype); the graphed one then returns such a tuple."""
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
        _check_outputs(outs)
        _backward(outs, [ones_like(o) for o in outs], needs)
    fwd, bwd = CUDAGraph(), CUDAGraph()
    with graph(fwd):
        returned = fn(*sample)
    static_out = _as_tuple(returned)
    _check_outputs(static_out)
    static_grad_out = [Tensor._wrap(o.backend.xp.zeros_like(o._data), o.backend) for o in static_out]
    with graph(bwd):
        static_grads = _backward(static_out, static_grad_out, needs)
    with no_grad():
        for t in needs:  # the graph's gradient buffers are its own, not the tensors' .grad
            t.grad = None
    if not allow_unused and any(g is None for g in static_grads):
        raise RuntimeError("make_graphed_callables: an input or parameter that requires grad "
                           "does not reach the output; pass allow_unused_input=True")

    sizes = [o.numel() for o in static_out]
    ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]

    class Graphed(Function):
        """The captured forward and backward; several outputs travel as one flat array."""

        @staticmethod
        def forward(ctx, *arrays):
            for static, new in zip(sample, arrays[:len(sample)]):
                static._data[...] = new
            fwd.replay()
            if len(static_out) == 1:
                return static_out[0]._data.copy()
            return static_out[0].backend.xp.concatenate([o._data.ravel() for o in static_out])

        @staticmethod
        def backward(ctx, gy):
            if len(static_out) == 1:
                static_grad_out[0]._data[...] = gy
            for g, end, size in zip(static_grad_out, ends, sizes) if len(static_out) > 1 else ():
                g._data[...] = gy[end - size:end].reshape(g._data.shape)
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
        out = Graphed.apply(*args, *params)
        if len(static_out) == 1 and not isinstance(returned, tuple):
            return out
        return tuple(out[end - size:end].reshape(o.shape)
                     for o, end, size in zip(static_out, ends, sizes)) if len(static_out) > 1 else (out,)

    if hasattr(fn, "forward") and hasattr(fn, "parameters"):
        eager, training = fn.forward, fn.training

        def forward(*args):  # as PyTorch: the graph in the mode it was captured in
            return graphed(*args) if fn.training == training else eager(*args)

        fn.forward = forward
        return fn
    return graphed


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _check_outputs(outs):
    """A tensor or a flat tuple of tensors of one dtype that require grad, as a graph returns."""
    if not outs:
        raise ValueError("make_graphed_callables: the callable returns an empty tuple; a graphed "
                         "callable returns a Tensor or a tuple of Tensors")
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"make_graphed_callables: output {i} is of type {type(o).__name__}; a graphed "
                            "callable returns a Tensor or a tuple of Tensors")
        if not o.requires_grad:
            raise ValueError(f"make_graphed_callables: output {i} does not require grad; return "
                             "only outputs that depend on a parameter or an input requiring grad")
    dtypes = {str(o.dtype) for o in outs}
    if len(dtypes) > 1:
        raise NotImplementedError(f"make_graphed_callables: the outputs have dtypes {sorted(dtypes)}; "
                                  "gpunet graphs outputs of one dtype")


class _Seed(Function):
    """A scalar whose backward hands each output its given gradient: one backward pass for
    every output (separate backward calls would walk a shared graph once per output)."""

    @staticmethod
    def forward(ctx, *arrays, grads):
        ctx.grads = grads
        return ctx.backend.xp.zeros((), arrays[0].dtype)

    @staticmethod
    def backward(ctx, gy):
        return tuple(ctx.grads)


def _backward(outs, grads, needs):
    """Gradients of ``outs`` (weighted by ``grads``) with respect to ``needs``, as new .grad."""
    with no_grad():
        for t in needs:
            t.grad = None
    if len(outs) == 1:
        outs[0].backward(grads[0])
    else:
        _Seed.apply(*outs, grads=[g._data for g in grads]).backward()
    return [t.grad for t in needs]
