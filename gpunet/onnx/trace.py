"""The trace behind ``gpunet.onnx.export``: a ``Graph`` that records ONNX nodes while the model runs.

Two things feed it.  ``gpunet.function._tracer`` (checked once per ``Function.apply``, ``None``
when no export runs) hands it every op with its input tensors, parameters and result; ``ops.py``
maps each op to ONNX nodes.  And while it traces, every sub-module's ``forward`` is wrapped on
the instance (nothing changes on the classes): the layers that ``layers.py`` maps whole (LSTM,
GRU, RNN, batch norm, adaptive pooling) run with the op trace paused and are emitted as one ONNX
op each, other gpunet layers that have no mapping raise, and every module's name is kept on a
stack for error messages.

Each traced tensor is a ``Value``: its ONNX name and ``dims``, one entry per axis, an int for a
fixed size or a str for a dynamic one (``dynamic_axes``), so that reshapes, slices and broadcasts
stay correct at other sizes.

Example:
    >>> broadcast_dims((4, 10), ("batch", 10), (10,))    # x (batch, 10) + b (10,)
    ('batch', 10)
"""
from __future__ import annotations

import threading
import warnings

import numpy as np

from .. import function as _function
from ..tensor import Tensor


class UnsupportedOperatorError(RuntimeError):
    """An op or layer that ``gpunet.onnx.export`` has no ONNX mapping for (as torch.onnx's error
    of that name); the message names it, where it was called from, and what is supported."""


class Value:
    """A traced tensor: its ONNX ``name``, ``dims`` (int or symbolic str per axis) and dtype."""

    __slots__ = ("name", "dims", "dtype", "tensor", "array", "version")

    def __init__(self, name, dims, tensor):
        self.name, self.dims, self.tensor = name, tuple(dims), tensor
        self.array = tensor._data  # held, so that its id keeps naming it (Graph.by_data)
        self.dtype, self.version = tensor.dtype, tensor._version


def is_dyn(d):
    """True for a symbolic (dynamic) dim."""
    return isinstance(d, str)


def broadcast_dims(shape, *all_dims):
    """The dims of a broadcast result of ``shape``: per axis (aligned right) the first input's
    symbolic dim there, else the size."""
    out = list(shape)
    for dims in all_dims:
        for k in range(1, min(len(dims), len(out)) + 1):
            if is_dyn(dims[-k]) and not is_dyn(out[-k]):
                out[-k] = dims[-k]
    return tuple(out)


class Graph:
    """The ONNX nodes, initializers and traced values of one export; also the op-trace callback."""

    def __init__(self, opset, params=None, converters=None, supported_ops=None):
        from onnx import helper, numpy_helper  # the caller checked that onnx imports

        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset, self.params = opset, params or {}  # params: {id(tensor): (name, tensor)}
        self.converters = converters or {}  # {Function class: converter} (ops.CONVERTERS)
        self.supported_ops = supported_ops or (lambda: [])
        self.nodes, self.initializers = [], []
        self.values, self.by_data, self.consts = {}, {}, {}
        self.used = set()
        self.stack = []          # (dotted name, type name) of the modules running now
        self.suspended = 0       # > 0 while a whole-layer mapping runs the layer itself
        self.thread = threading.get_ident()
        self.warned = set()

    # --- names, nodes and constants -----------------------------------------------------------
    def fresh(self, hint):
        hint = hint.replace("/", "_") or "v"
        name, k = f"{hint}_0", 0
        while name in self.used:
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def node(self, op, inputs, n_out=1, **attrs):
        """Append one ONNX node; its output name (or list of names when ``n_out`` > 1)."""
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        while inputs and inputs[-1] == "":  # trailing optional inputs left out
            inputs = inputs[:-1]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=self.fresh(op),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, array, hint="const", key=None):
        """An initializer holding ``array`` (one per ``key`` when given); its name."""
        if key is not None and key in self.consts:
            return self.consts[key]
        name = hint if hint not in self.used else self.fresh(hint)
        self.used.add(name)
        self.initializers.append(self.numpy_helper.from_array(np.array(array, order="C"), name))
        if key is not None:
            self.consts[key] = name
        return name

    def scalar(self, value, dtype):
        a = np.asarray(value, dtype=dtype)
        return self.const(a, "const", key=("scalar", a.dtype.str, a.tobytes()))

    def ints(self, values):
        a = np.asarray(list(values), dtype=np.int64)
        return self.const(a, "ints", key=("ints", a.tobytes(), a.shape))

    def cast(self, v, dtype):
        """``v``'s name, cast to ``dtype`` when it has another."""
        if np.dtype(v.dtype) == np.dtype(dtype):
            return v.name
        return self.node("Cast", [v.name], to=self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    def reduce(self, op, name, axes, keepdims):
        """``op`` (ReduceSum, ReduceMean, ReduceMax...) over ``axes``: axes are an input from
        opset 13 (ReduceSum) or 18 (the others), an attribute before."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(op, [name, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op, [name], axes=list(axes), keepdims=int(keepdims))

    # --- traced values --------------------------------------------------------------------------
    def bind(self, tensor, name, dims):
        v = Value(name, dims, tensor)
        self.values[id(tensor)] = v
        self.by_data[id(tensor._data)] = v
        return v

    def value(self, t, where="op"):
        """The Value of tensor ``t``: traced (or sharing a traced tensor's array, as ``detach()``
        and ``.data`` do), a parameter or buffer (an initializer of its name), or else a constant
        baked into the graph (with a warning unless it is a scalar)."""
        v = self.values.get(id(t))
        if v is None and id(t) not in self.params:
            v = self.by_data.get(id(t._data))
        if v is not None:
            if v.tensor._version != v.version:
                raise UnsupportedOperatorError(
                    f"gpunet.onnx.export: a tensor used by {where}{self.where()} was changed in "
                    "place after it was computed; in-place ops (x += y, x[i] = v, add_) are not "
                    "exported: write the forward out of place")
            return v
        if id(t) in self.params:
            pname, _ = self.params[id(t)]
            name = self.const(t.numpy(), pname, key=("param", id(t)))
        else:
            if t.ndim and id(t) not in self.warned:
                self.warned.add(id(t))
                warnings.warn(
                    f"gpunet.onnx.export: a tensor of shape {tuple(t.shape)} that is neither an "
                    f"input, a parameter nor a buffer enters {where}{self.where()}; it is exported "
                    "as a constant (a value computed outside gpunet's ops, e.g. by a comparison, "
                    "astype or argmax, would be frozen at its traced value)", stacklevel=4)
            name = self.const(t.numpy(), "const", key=("const", id(t)))
            self.consts[("hold", id(t))] = t  # keep it alive: its id names the constant
        return self.bind(t, name, tuple(t.shape))

    def array_value(self, array, ref):
        """The Value of a raw array an op took as a parameter (Embedding's ids)."""
        v = self.by_data.get(id(array))
        if v is not None:
            return v
        return self.value(Tensor._wrap(array, ref.backend), "Embedding")

    def where(self):
        if not self.stack:
            return ""
        name, kind = self.stack[-1]
        return f" in module '{name or '<model>'}' ({kind})"

    # --- the Function.apply hook ----------------------------------------------------------------
    def __call__(self, cls, tensors, params, result):
        if self.suspended or threading.get_ident() != self.thread:
            return
        convert = self.converters.get(cls)
        if convert is None:
            raise UnsupportedOperatorError(
                f"gpunet.onnx.export: op '{cls.__name__}'{self.where()} has no ONNX mapping; "
                f"supported ops: {', '.join(self.supported_ops())}")
        ins = [self.value(t, f"op '{cls.__name__}'") for t in tensors]
        name, dims = convert(self, ins, params, result)
        self.bind(result, name, dims)


def trace(graph, model, args, kwargs, wrap_forward):
    """Run ``model(*args, **kwargs)`` under ``graph`` and return its output: every op traced,
    and every sub-module's forward replaced, on the instance, by ``wrap_forward(graph, name,
    module)`` (``layers.wrap_forward``) until it returns."""
    with _lock:
        if _function._tracer is not None:
            raise RuntimeError("gpunet.onnx.export: an export is already tracing in this thread "
                               "(export called from a model's forward?)")
        return _run(graph, model, args, kwargs, wrap_forward)


def _run(graph, model, args, kwargs, wrap_forward):
    originals = []
    try:
        for name, module in model.named_modules():
            originals.append((module, module.__dict__.get("forward")))
            object.__setattr__(module, "forward", wrap_forward(graph, name, module))
        _function._tracer = graph
        with _function.no_grad():
            return model(*args, **kwargs)
    finally:
        _function._tracer = None
        for module, previous in originals:
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = previous


_lock = threading.RLock()  # one export at a time: the op hook is process-wide
