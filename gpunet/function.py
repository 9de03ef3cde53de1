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

import contextlib
import threading

from . import autograd as anomaly

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside ``with gn.no_grad():``."""
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad():
    """Run a block without recording the graph (inference, optimiser steps).

    Example:
        >>> with gn.no_grad():
        ...     y = model(x)
    """
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


class Context:
    """What forward leaves for backward: the backend, saved arrays and any attributes."""

    __slots__ = ("backend", "saved", "needs_input_grad", "__dict__")

    def __init__(self, backend, needs_input_grad):
        self.backend = backend
        self.saved = ()
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays


class Node:
    """A recorded application of a Function: what backward walks."""

    __slots__ = ("function", "ctx", "inputs")

    def __init__(self, function, ctx, inputs):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs


class Function:
    """Subclass with ``forward(ctx, *arrays, **params)`` and ``backward(ctx, gy)``.

    ``backward`` returns one gradient per tensor input (an array, or None when
    the input needs none), in the order of the inputs.
    """

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
        needs = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(needs)
        ctx = Context(ref.backend, needs)
        out = cls.forward(ctx, *[t.data for t in tensors], **params)
        if anomaly.is_anomaly_enabled():
            ctx.call_site = anomaly.call_site()
            anomaly.check(out, ref.backend, "forward output", cls.__name__, ctx.call_site)
        result = Tensor._wrap(out, ref.backend, requires_grad=record)
        if record:
            result._node = Node(cls, ctx, tensors)
        return result
