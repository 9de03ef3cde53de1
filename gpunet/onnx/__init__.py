"""``gpunet.onnx``: export a model to ONNX, as ``torch.onnx.export`` does.

The model runs once in eval mode on the example ``args`` while every op it applies is recorded
(see ``trace.py``); ops map to ONNX nodes (``ops.py``), LSTM/GRU/RNN, batch norm and adaptive
pooling to one ONNX op each (``layers.py``), and parameters and buffers become initializers
under their ``state_dict`` names.  ``onnx`` is needed only here: ``pip install 'gpunet[onnx]'``.
"""
from __future__ import annotations

import os

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor
from .layers import wrap_forward
from .ops import CONVERTERS, supported_ops
from .trace import Graph, UnsupportedOperatorError, trace

__all__ = ["export", "UnsupportedOperatorError"]

MIN_OPSET = 17  # LayerNormalization and the opset-13 forms of Softmax, Squeeze, Slice...


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("gpunet.onnx.export needs the onnx package: pip install onnx "
                          "(or pip install 'gpunet[onnx]')") from None
    return onnx


def _flatten(obj, out):
    """The tensors in ``obj`` (tensors, tuples, lists, dicts nested), in order."""
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _flatten(item, out)
    elif isinstance(obj, dict):
        for item in obj.values():
            _flatten(item, out)
    return out


def _names(given, count, default):
    given = list(given or [])
    if len(given) > count:
        raise ValueError(f"export: {len(given)} {default} names given for {count} {default}s")
    stem = default if count == 1 else f"{default}_"
    return given + [stem if count == 1 else f"{stem}{k}" for k in range(len(given), count)]


def _dynamic(dynamic_axes):
    """{name: {axis: symbol}} from torch's two forms ({name: {axis: symbol}} or {name: [axes]})."""
    out = {}
    for name, axes in (dynamic_axes or {}).items():
        if isinstance(axes, dict):
            out[name] = {int(a): str(s) for a, s in axes.items()}
        else:
            out[name] = {int(a): f"{name}_dynamic_axes_{k + 1}" for k, a in enumerate(axes)}
    return out


def _dims(shape, axes, name):
    dims = list(shape)
    for axis, symbol in axes.items():
        if not -len(dims) <= axis < len(dims):
            raise ValueError(f"export: dynamic axis {axis} of {name!r} is out of range for shape "
                             f"{tuple(shape)}")
        dims[axis] = symbol
    return dims


def export(model, args=(), f=None, *, kwargs=None, export_params=True, verbose=False,
           input_names=None, output_names=None, opset_version=MIN_OPSET, dynamic_axes=None,
           keep_initializers_as_inputs=False, do_constant_folding=True):
    """Write ``model`` as an ONNX model to ``f`` (a path or a binary file object; None: only
    return it) after running it once, in eval mode, on ``args`` (a Tensor, or a tuple of
    Tensors and tuples; a dict last holds keyword arguments, as in ``torch.onnx.export``).

    ``input_names`` / ``output_names`` name the graph's inputs and outputs (default ``input``,
    ``output`` or ``input_0``...); ``dynamic_axes`` ({name: {axis: "symbol"}} or {name: [axes]})
    marks the axes that may change size, e.g. the batch.  Parameters and buffers are
    initializers named as in ``state_dict`` (graph inputs too with ``keep_initializers_as_inputs``;
    inputs only, without values, with ``export_params=False``).  ``opset_version`` is 17 or newer.
    The model's modes are restored afterwards.  Returns the ``onnx.ModelProto``.

    Ops or layers without a mapping raise ``UnsupportedOperatorError`` naming them and listing
    what is supported; a tensor that enters the graph from outside gpunet's ops (made in
    ``forward`` or by a comparison) is exported as a constant, with a warning.
    ``do_constant_folding`` is accepted for torch's signature (nothing is left to fold).

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> proto = gn.onnx.export(model, x, buffer, input_names=["images"], output_names=["logits"],
        ...                        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        >>> [n.op_type for n in proto.graph.node]
        ['Conv', 'Relu', 'MaxPool', 'Reshape', 'Gemm']
        >>> [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
        ['batch', 10]
    """
    onnx = _require_onnx()
    from onnx import helper

    if not isinstance(model, Module):
        raise TypeError(f"export: model must be a gpunet nn.Module, got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"export: opset_version must be an int from {MIN_OPSET} to {newest} "
                         f"(this onnx's newest), got {opset_version!r}")
    args = (args,) if not isinstance(args, (tuple, list)) else tuple(args)
    if kwargs is None and args and isinstance(args[-1], dict):
        args, kwargs = args[:-1], args[-1]
    kwargs = dict(kwargs or {})
    inputs = _flatten([args, kwargs], [])
    if not inputs:
        raise ValueError("export: args must hold at least one gpunet Tensor")
    params = {id(t): (n, t) for n, t in [*model.named_parameters(), *model.named_buffers()]}
    graph = Graph(opset_version, params, CONVERTERS, supported_ops)
    in_names = _names(input_names, len(inputs), "input")
    out_given = list(output_names or [])
    dyn = _dynamic(dynamic_axes)
    graph.used.update(in_names + out_given)
    graph_inputs = []
    for name, t in zip(in_names, inputs):
        dims = _dims(t.shape, dyn.get(name, {}), name)
        graph.bind(t, name, dims)
        graph_inputs.append(helper.make_tensor_value_info(name, _elem(helper, t.dtype), dims))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        result = trace(graph, model, args, kwargs, wrap_forward)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    outputs = _flatten(result, [])
    out_names = _names(out_given, len(outputs), "output")
    unknown = sorted(set(dyn) - set(in_names) - set(out_names))
    if unknown:
        raise ValueError(f"export: dynamic_axes names {unknown}, neither input nor output names "
                         f"(inputs {in_names}, outputs {out_names})")
    graph.used.update(out_names)
    claimed = set(in_names)
    graph_outputs = [_output(graph, helper, t, name, dyn.get(name, {}), claimed)
                     for t, name in zip(outputs, out_names)]
    initializers = graph.initializers
    if not export_params or keep_initializers_as_inputs:
        graph_inputs += [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
                         for i in initializers]
    body = helper.make_graph(graph.nodes, "main_graph", graph_inputs, graph_outputs,
                             initializer=initializers if export_params else [])
    opsets = [helper.make_opsetid("", opset_version)]
    proto = helper.make_model(body, opset_imports=opsets, producer_name="gpunet",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto)
    if verbose:
        print(onnx.printer.to_text(proto.graph))
    if f is not None:
        if hasattr(f, "write"):
            f.write(proto.SerializeToString())
        else:
            onnx.save_model(proto, os.fspath(f))
    return proto


def _elem(helper, dtype):
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _output(graph, helper, t, name, axes, claimed):
    """The graph output ``name`` for tensor ``t``: the node that made it renamed, or an
    Identity (for an input, a constant, or a value already given out under another name)."""
    v = graph.values.get(id(t)) or graph.value(t, "the outputs")
    old = v.name
    if old not in claimed and any(old in n.output for n in graph.nodes):
        for n in graph.nodes:
            for field in (n.input, n.output):
                for k, s in enumerate(field):
                    if s == old:
                        field[k] = name
        for other in graph.values.values():
            if other.name == old:
                other.name = name
    else:
        graph.nodes.append(helper.make_node("Identity", [old], [name], name=graph.fresh("Identity")))
    claimed.add(name)
    dims = _dims([d if isinstance(d, str) else int(d) for d in v.dims], axes, name)
    return helper.make_tensor_value_info(name, _elem(helper, t.dtype), dims)
