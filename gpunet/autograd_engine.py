"""The backward pass: walks the graph from a tensor back to its leaves, checks that saved arrays
were not changed in place, and sums broadcast gradients back to their inputs' shapes."""
from __future__ import annotations

import numpy as np

from . import autograd as _anomaly
from .dtypes import tensor_type_name


def run_backward(tensor, grad, retain_graph, leaf_type) -> None:
    """``Tensor.backward``'s work, from ``tensor``; ``leaf_type`` is the Tensor class (the
    graph's leaves are its instances, its other vertices Nodes)."""
    if not tensor.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad "
                           "(no input had requires_grad=True, or it was made under no_grad)")
    xp = tensor.backend.xp
    if grad is None:
        if tensor.numel() != 1:
            raise ValueError(f"backward() without a gradient needs a scalar, got shape {tuple(tensor.shape)}")
        g = tensor.backend.one(tensor.dtype)  # cached: no fill per step
        g = g if g.shape == tensor._data.shape else g.reshape(tensor._data.shape)
    else:
        g = grad._data if isinstance(grad, leaf_type) else \
            tensor.backend.asarray(np.asarray(grad, tensor.dtype))
        if g.shape != tensor._data.shape:
            raise ValueError(f"backward(grad): grad has shape {tuple(g.shape)}, "
                             f"tensor has {tuple(tensor.shape)}")
    root = tensor if tensor._node is None else tensor._node
    grads = {id(root): g}
    for vertex in _topological_order(root, leaf_type):
        g = grads.pop(id(vertex), None)
        if g is None:
            continue
        if isinstance(vertex, leaf_type):  # a leaf
            vertex._accumulate(g)
            continue
        node = vertex
        if getattr(node.ctx, "freed", False):
            raise RuntimeError(
                f"backward(): trying to backward through the graph a second time (through "
                f"{node.function.__name__}); its saved values were freed by the first "
                "backward(). Call backward(retain_graph=True) the first time if you need to "
                "backward through it again")
        if node.ctx.versions:
            check_versions(node)
        in_grads = node.function.backward(node.ctx, g)
        if not retain_graph:
            node.ctx.saved, node.ctx.freed = (), True
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if _anomaly.is_anomaly_enabled():
            for k, ig in enumerate(in_grads):
                _anomaly.check(ig, tensor.backend, f"backward (the gradient of input {k})",
                               node.function.__name__, getattr(node.ctx, "call_site", ""))
        for inp, parent, need, ig in zip(node.inputs, node.parents, node.ctx.needs_input_grad,
                                         in_grads):
            if ig is None or not need:
                continue
            ig = _unbroadcast(ig, inp._data.shape, xp)
            if ig.dtype != inp._data.dtype:
                ig = ig.astype(inp._data.dtype)
            prev = grads.get(id(parent))
            grads[id(parent)] = ig if prev is None else prev + ig


def check_versions(node) -> None:
    """Raise PyTorch's error when an array saved for this node's backward changed in place."""
    for vc, version, role, dtype, shape, is_cuda in node.ctx.versions:
        if vc[0] != version:
            what = (f"which is output 0 of {node.function.__name__}Backward" if role == 0
                    else f"which is input {role - 1} of {node.function.__name__}Backward")
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{tensor_type_name(dtype, is_cuda)} {list(shape)}], {what}, is at version {vc[0]}; "
                f"expected version {version} instead. Hint: clone() the tensor before changing "
                "it in place, or change it out of place (x = x + 1 rather than x += 1)")


def _topological_order(root, leaf_type):
    """The graph's vertices (Nodes, and leaf Tensors) reachable from root, each after every
    vertex that depends on it."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        v, done = stack.pop()
        if done:
            order.append(v)
            continue
        if id(v) in seen:
            continue
        seen.add(id(v))
        stack.append((v, True))
        if not isinstance(v, leaf_type):
            for parent, need in zip(v.parents, v.ctx.needs_input_grad):
                if need and id(parent) not in seen:
                    stack.append((parent, False))
    return reversed(order)


def _unbroadcast(g, shape, xp):
    """Sum a broadcast gradient back to ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)
