"""Function: the base of every differentiable op (forward and backward side by side).

An op subclasses ``Function`` and writes two static methods on raw backend
arrays; ``apply`` wraps tensors in and out and records the graph.

Example:
    >>> class Square(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, gy):
    ...         (x,) = ctx.saved
    ...         return (2 * x * gy,)
"""
from __future__ import annotations

import functools
import inspect
import threading

from . import autograd as anomaly

_state = threading.local()
_tracer = None  # gpunet.onnx.export's recorder while it traces: called with each op applied


def is_grad_enabled() -> bool:
    """False inside ``with gn.no_grad():``."""
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode) -> None:
    _state.grad_enabled = bool(mode)


def _decorate(make, func):
    """``func`` run under a fresh context ``make()`` per call (per resume, for a generator)."""
    if not inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with make():
                return func(*args, **kwargs)
        return wrapper

    @functools.wraps(func)
    def generator(*args, **kwargs):
        gen, send, value = func(*args, **kwargs), "send", None
        while True:
            try:
                with make():
                    out = gen.throw(value) if send == "throw" else getattr(gen, send)(value)
            except StopIteration as stop:
                return stop.value
            if send == "close":
                return None
            try:
                send, value = "send", (yield out)
            except GeneratorExit:
                send, value = "close", None
            except BaseException as exc:  # noqa: BLE001 - handed to the wrapped generator
                send, value = "throw", exc
    return generator


class _GradMode:
    """A context manager that is also a decorator (``@gn.no_grad()`` or ``@gn.no_grad``)."""

    mode = False

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)  # used as @no_grad, without parentheses

    def __call__(self, func):
        return _decorate(self.clone, func)

    def clone(self):
        return type(self)()

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev)


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Run a block (or a decorated function) without recording the graph.

    Example:
        >>> with gn.no_grad():
        ...     y = model(x)
        >>> y.requires_grad
        False
        >>> @gn.no_grad()
        ... def predict(batch):
        ...     return model(batch)
        >>> predict(x).requires_grad
        False
    """

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Record the graph again inside a ``no_grad`` block (or in a decorated function).

    Example:
        >>> w = gn.ones(2, requires_grad=True)
        >>> with gn.no_grad():
        ...     with gn.enable_grad():
        ...         y = w * 2
        >>> y.requires_grad
        True
    """

    mode = True


class set_grad_enabled(_GradMode):  # noqa: N801 - PyTorch's name
    """Turn graph recording on or off: at once when called, and back on leaving its ``with``
    block or the function it decorates (as ``torch.set_grad_enabled``).

    Example:
        >>> w = gn.ones(2, requires_grad=True)
        >>> with gn.set_grad_enabled(False):
        ...     (w * 2).requires_grad
        False
        >>> _ = gn.set_grad_enabled(False); gn.is_grad_enabled()
        False
        >>> _ = gn.set_grad_enabled(True); gn.is_grad_enabled()
        True
    """

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self.prev, self.mode = is_grad_enabled(), bool(mode)
        _set_grad_enabled(self.mode)

    def __call__(self, func):
        _set_grad_enabled(self.prev)  # as a decorator it changes nothing until func runs
        return super().__call__(func)

    def clone(self):
        return type(self)(self.mode)

    def __enter__(self):
        _set_grad_enabled(self.mode)

    def __repr__(self):
        return f"gpunet.set_grad_enabled(mode={self.mode})"


class Context:
    """What forward leaves for backward: the backend, saved arrays and any attributes."""

    __slots__ = ("backend", "saved", "needs_input_grad", "versions", "__dict__")

    def __init__(self, backend, needs_input_grad):
        self.backend = backend
        self.saved = ()
        self.needs_input_grad = needs_input_grad
        self.versions = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays


class Node:
    """A recorded application of a Function: what backward walks.

    ``parents`` are the inputs' places in the graph when the op ran (their Node, or the leaf
    tensor itself), so an input changed in place later still sends its gradient to the value
    this op saw, as PyTorch's edges do.
    """

    __slots__ = ("function", "ctx", "inputs", "parents")

    def __init__(self, function, ctx, inputs):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs
        self.parents = tuple(t if t._node is None else t._node for t in inputs)


def _record_versions(ctx, tensors, result):
    """Note the version of every tensor whose array ``forward`` saved, for backward's check."""
    checks = []
    for saved in ctx.saved:
        for role, t in ((0, result), *((k + 1, t) for k, t in enumerate(tensors))):
            if saved is t._data:
                if t._vc is None:
                    t._vc = [0]
                checks.append((t._vc, t._vc[0], role, t.dtype, tuple(t.shape), t.is_cuda))
                break
    ctx.versions = checks


class Function:
    """Subclass with ``forward(ctx, *arrays, **params)`` and ``backward(ctx, gy)``.

    ``backward`` returns one gradient per tensor input (an array, or None when
    the input needs none), in the order of the inputs.  ``view_of_input = True`` marks ops
    whose output may share input 0's memory (reshape, transpose, slicing).
    """

    view_of_input = False

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, gy):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        from .tensor import Tensor, as_tensor_like

        ref = next((t for t in inputs if isinstance(t, Tensor)), None)
        if ref is None:
            raise TypeError(f"{cls.__name__} needs at least one gpunet Tensor input")
        tensors = []
        for i, t in enumerate(inputs):
            if isinstance(t, Tensor):
                if t.backend is not ref.backend:
                    raise ValueError(
                        f"{cls.__name__}: input {i} is on backend {t.backend.name!r} but input "
                        f"0 is on {ref.backend.name!r}; move one with .to({ref.backend.name!r})")
                tensors.append(t)
            else:
                tensors.append(as_tensor_like(t, ref))
        if cls.view_of_input:
            tensors[0]._in_c_order()  # a view of a channels-last output aliases its C order
        needs = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(needs)
        ctx = Context(ref.backend, needs)
        out = cls.forward(ctx, *[t._data for t in tensors], **params)
        if anomaly.is_anomaly_enabled():
            ctx.call_site = anomaly.call_site()
            anomaly.check(out, ref.backend, "forward output", cls.__name__, ctx.call_site)
        result = Tensor._wrap(out, ref.backend, requires_grad=record)
        if cls.view_of_input and (out.base is tensors[0]._data or (
                out.base is not None and out.base is tensors[0]._data.base)):
            result._vc = tensors[0]._vc = tensors[0]._vc or [0]  # a view shares the counter
            result._view_base = tensors[0]
        if record:
            _record_versions(ctx, tensors, result)
            result._node = Node(cls, ctx, tensors)
        if _tracer is not None:
            _tracer(cls, tensors, params, result)
        return result
