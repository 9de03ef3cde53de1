"""Op-level mapping for ``gpunet.onnx.export``: each gpunet Function to ONNX nodes.

A converter takes ``(graph, ins, params, out)``: the traced Values of the op's tensor inputs,
the keyword parameters it was applied with, and its result tensor; it appends nodes and returns
``(name, dims)`` of the result.  ``CONVERTERS`` maps each supported Function class to one.

Example:
    >>> reshape_spec((4, 6, 5, 5), ("N", 6, 5, 5), (4, 150))[0]      # flatten keeps N
    [0, 150]
"""
from __future__ import annotations

import math

import numpy as np

from ..ops import activation as A
from ..ops import conv, embedding, indexing, layer_norm, pooling, shape
from ..ops import math as M
from ..ops.math import _norm_axis
from .trace import UnsupportedOperatorError, broadcast_dims, is_dyn

_BIG = np.iinfo(np.int64).max


def _unary(op, **attrs):
    def convert(g, ins, p, out):
        return g.node(op, [ins[0].name], **attrs), ins[0].dims
    return convert


def _binary(op):
    def convert(g, ins, p, out):
        names = [g.cast(v, out.dtype) for v in ins]
        return g.node(op, names), broadcast_dims(out.shape, *(v.dims for v in ins))
    return convert


def _pow(g, ins, p, out):
    exponent = g.scalar(p["p"], out.dtype)
    return g.node("Pow", [g.cast(ins[0], out.dtype), exponent]), ins[0].dims


def _clip(g, ins, p, out):
    lo, hi = p.get("lo"), p.get("hi")
    bounds = ["" if b is None else g.scalar(b, out.dtype) for b in (lo, hi)]
    return g.node("Clip", [ins[0].name, *bounds]), ins[0].dims


def _maximum(g, ins, p, out):
    names = [g.cast(v, out.dtype) for v in ins]
    op = "Min" if p.get("lower") else "Max"
    return g.node(op, names), broadcast_dims(out.shape, *(v.dims for v in ins))


def _reduce(op):
    def convert(g, ins, p, out):
        v = ins[0]
        axes = _norm_axis(p.get("axis"), len(v.dims))
        keep = bool(p.get("keepdims", False))
        if not axes:
            return g.node("Identity", [v.name]), v.dims
        dims = tuple(1 if i in axes else d for i, d in enumerate(v.dims)) if keep else \
            tuple(d for i, d in enumerate(v.dims) if i not in axes)
        return g.reduce(op, v.name, axes, keep), dims
    return convert


def _matmul(g, ins, p, out):
    a, b = ins
    batch = broadcast_dims(out.shape[:max(len(out.shape) - 2, 0)], a.dims[:-2], b.dims[:-2])
    tail = ((a.dims[-2],) if len(a.dims) >= 2 else ()) + ((b.dims[-1],) if len(b.dims) >= 2 else ())
    return g.node("MatMul", [g.cast(a, out.dtype), g.cast(b, out.dtype)]), batch + tail


def _linear(g, ins, p, out):
    x, w = ins[0], ins[1]
    b = ins[2].name if len(ins) > 2 else ""
    if len(x.dims) == 2:
        y = g.node("Gemm", [x.name, w.name, b], transB=1)
    else:
        y = g.node("MatMul", [x.name, g.node("Transpose", [w.name], perm=[1, 0])])
        y = g.node("Add", [y, b]) if b else y
    if p.get("relu"):
        y = g.node("Relu", [y])
    return y, x.dims[:-1] + (out.shape[-1],)


def _spatial(x, out):
    """(N, C, H, W) dims of a conv or pool output: N as the input's, the rest fixed (a
    symbolic H or W in the input stays symbolic, under a name of its own)."""
    return (x.dims[0], out.shape[1]) + tuple(
        f"{d}_out" if is_dyn(d) else n for d, n in zip(x.dims[2:], out.shape[2:]))


def _conv(g, x, w, b, stride, padding, dilation=(1, 1), groups=1):
    return g.node("Conv", [x.name, w.name, b], kernel_shape=list(w.tensor.shape[2:]),
                  strides=list(stride), pads=[*padding, *padding], dilations=list(dilation),
                  group=int(groups))


def _conv2d(g, ins, p, out):
    x, w = ins[0], ins[1]
    y = _conv(g, x, w, ins[2].name if len(ins) > 2 else "", p.get("stride", (1, 1)),
              p.get("padding", (0, 0)), p.get("dilation", (1, 1)), p.get("groups", 1))
    return (g.node("Relu", [y]) if p.get("relu") else y), _spatial(x, out)


def _conv2d_relu_max_pool(g, ins, p, out):
    x, w = ins[0], ins[1]
    y = g.node("Relu", [_conv(g, x, w, ins[2].name if len(ins) > 2 else "",
                              p.get("stride", (1, 1)), p.get("padding", (0, 0)))])
    k = int(p.get("pool", 2))
    return g.node("MaxPool", [y], kernel_shape=[k, k], strides=[k, k]), _spatial(x, out)


def _max_pool(g, ins, p, out):
    pad = list(p["padding"]) * 2
    return g.node("MaxPool", [ins[0].name], kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
                  pads=pad, ceil_mode=int(bool(p.get("ceil_mode")))), _spatial(ins[0], out)


def _avg_pool(g, ins, p, out):
    pad = list(p["padding"]) * 2
    return g.node("AveragePool", [ins[0].name], kernel_shape=list(p["kernel"]),
                  strides=list(p["stride"]), pads=pad, count_include_pad=1), _spatial(ins[0], out)


def _softmax(op):
    def convert(g, ins, p, out):
        return g.node(op, [ins[0].name], axis=int(p.get("axis", -1))), ins[0].dims
    return convert


def _gelu(g, ins, p, out):
    x, dt = ins[0].name, out.dtype
    if p.get("approximate") == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715, dt)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), dt)])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        t = g.node("Erf", [g.node("Mul", [x, g.scalar(1 / math.sqrt(2), dt)])])
    half = g.node("Mul", [x, g.scalar(0.5, dt)])
    return g.node("Mul", [half, g.node("Add", [t, g.scalar(1.0, dt)])]), ins[0].dims


def _dropout(g, ins, p, out):
    raise UnsupportedOperatorError(
        f"gpunet.onnx.export: dropout ran in training mode{g.where()} (F.dropout with "
        "training=True); the export runs the model in eval mode: pass training=self.training")


def _squeeze_axes(src, dst, dims):
    """The axes of ``src`` whose removal gives ``dst`` (size-1 and fixed), else None."""
    axes, j = [], 0
    for i, n in enumerate(src):
        if j < len(dst) and n == dst[j]:
            j += 1
        elif n == 1 and not is_dyn(dims[i]):
            axes.append(i)
        else:
            return None
    return axes if j == len(dst) else None


def _groups(src, dst):
    """Pair runs of ``src`` and ``dst`` dims with equal products (view's rule), in order."""
    groups, i, j = [], 0, 0
    while i < len(src) or j < len(dst):
        if i < len(src) and src[i] == 1 and (j >= len(dst) or dst[j] != 1):
            groups.append(([i], []))
            i += 1
            continue
        if j < len(dst) and dst[j] == 1 and (i >= len(src) or src[i] != 1):
            groups.append(([], [j]))
            j += 1
            continue
        gi, gj, pi, pj = [i], [j], src[i], dst[j]
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj:
                gi.append(i)
                pi *= src[i]
                i += 1
            else:
                gj.append(j)
                pj *= dst[j]
                j += 1
        groups.append((gi, gj))
    return groups


def reshape_spec(src, dims, dst):
    """(ONNX Reshape shape, result dims) for a reshape of ``src`` (dims ``dims``) to ``dst``:
    fixed sizes where nothing dynamic goes in, 0 for a dynamic dim kept in place, -1 for the
    one group of dims that takes a dynamic size along."""
    spec, out, minus = list(dst), list(dst), False
    if 0 in src or 0 in dst or not any(is_dyn(d) for d in dims):
        return spec, tuple(out)
    for gi, gj in _groups(list(src), list(dst)):
        dyn = [dims[i] for i in gi if is_dyn(dims[i])]
        if not dyn:
            continue
        if len(gi) == 1 and len(gj) == 1 and gi[0] == gj[0]:
            spec[gj[0]], out[gj[0]] = 0, dims[gi[0]]
        elif not minus and gj:
            minus = True
            spec[gj[0]] = -1
            out[gj[0]] = dyn[0] if len(gi) == 1 and len(gj) == 1 else \
                "*".join(str(dims[i]) for i in gi) if len(gj) == 1 else f"{dyn[0]}_split"
        else:
            raise UnsupportedOperatorError(
                f"gpunet.onnx.export: a reshape from {tuple(dims)} to {tuple(dst)} moves more than "
                "one dynamic axis; reshape so that dynamic axes keep their place")
    return spec, tuple(out)


def _reshape(g, ins, p, out):
    v, dst = ins[0], tuple(out.shape)
    src = tuple(v.tensor.shape)
    squeeze = _squeeze_axes(src, dst, v.dims)
    if squeeze is not None and squeeze and len(dst) < len(src):
        return g.node("Squeeze", [v.name, g.ints(squeeze)]), tuple(
            d for i, d in enumerate(v.dims) if i not in squeeze)
    unsqueeze = _squeeze_axes(dst, src, [0] * len(dst))
    if unsqueeze is not None and unsqueeze and len(dst) > len(src):
        dims, it = [], iter(v.dims)
        for i in range(len(dst)):
            dims.append(1 if i in unsqueeze else next(it))
        return g.node("Unsqueeze", [v.name, g.ints(unsqueeze)]), tuple(dims)
    spec, dims = reshape_spec(src, v.dims, dst)
    return g.node("Reshape", [v.name, g.ints(spec)]), dims


def _transpose(g, ins, p, out):
    v = ins[0]
    axes = p.get("axes")
    axes = list(reversed(range(len(v.dims)))) if axes is None else [int(a) for a in axes]
    return g.node("Transpose", [v.name], perm=axes), tuple(v.dims[a] for a in axes)


def _getitem(g, ins, p, out):
    v, index = ins[0], p["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    arrays = [i for i in items if hasattr(i, "shape") and not isinstance(i, (int, np.integer))]
    if len(arrays) > 1 or any(np.dtype(a.dtype).kind not in "iu" for a in arrays) or (
            arrays and any(isinstance(i, (int, np.integer)) for i in items)):
        raise UnsupportedOperatorError(
            f"gpunet.onnx.export: indexing{g.where()} with {type(index).__name__} {index!r:.60} is "
            "not supported: use ints, slices, None, ... and at most one integer index array "
            "(with no int beside it)")
    for k, item in enumerate(items):
        if item is Ellipsis:
            used = sum(1 for i in items if i is not None and i is not Ellipsis)
            items[k:k + 1] = [slice(None)] * (len(v.dims) - used)
            break
    name, dims, sizes, axis = v.name, list(v.dims), list(v.tensor.shape), 0
    for item in items:
        if item is None:
            name = g.node("Unsqueeze", [name, g.ints([axis])])
            dims.insert(axis, 1)
            sizes.insert(axis, 1)
            axis += 1
        elif isinstance(item, slice):
            start, stop, step = item.start, item.stop, 1 if item.step is None else int(item.step)
            if (start, stop, step) != (None, None, 1):
                first = int(start) if start is not None else (0 if step > 0 else -1)
                last = int(stop) if stop is not None else (_BIG if step > 0 else -_BIG)
                name = g.node("Slice", [name, g.ints([first]), g.ints([last]), g.ints([axis]),
                                        g.ints([step])])
                sizes[axis] = len(range(*item.indices(sizes[axis])))
                fixed = stop is not None and (start or 0) >= 0 and stop >= 0 and step > 0
                dims[axis] = f"{dims[axis]}_slice" if is_dyn(dims[axis]) and not fixed else sizes[axis]
            axis += 1
        elif hasattr(item, "shape") and not isinstance(item, (int, np.integer)):
            traced = g.by_data.get(id(item))  # an index tensor of the graph, or a constant
            if traced is not None:
                idx, idx_dims = g.cast(traced, np.int64), list(traced.dims)
            else:
                host = np.asarray(v.tensor.backend.to_host(item)).astype(np.int64)
                idx, idx_dims = g.const(host, "index"), list(host.shape)
            name = g.node("Gather", [name, idx], axis=axis)
            dims[axis:axis + 1] = idx_dims
            sizes[axis:axis + 1] = list(item.shape)
            axis += item.ndim
        else:
            name = g.node("Gather", [name, g.scalar(int(item), np.int64)], axis=axis)
            del dims[axis], sizes[axis]
    return name, tuple(dims)


def _concat(g, ins, p, out):
    axis = int(p.get("axis", 0)) % len(out.shape)
    dims = list(broadcast_dims(out.shape, *(v.dims for v in ins)))
    parts = [v.dims[axis] for v in ins]
    dims[axis] = "+".join(map(str, parts)) if any(is_dyn(d) for d in parts) else out.shape[axis]
    return g.node("Concat", [g.cast(v, out.dtype) for v in ins], axis=axis), tuple(dims)


def _stack(g, ins, p, out):
    axis = int(p.get("axis", 0)) % len(out.shape)
    parts = [g.node("Unsqueeze", [g.cast(v, out.dtype), g.ints([axis])]) for v in ins]
    dims = list(broadcast_dims(out.shape[:axis] + out.shape[axis + 1:], *(v.dims for v in ins)))
    return g.node("Concat", parts, axis=axis), tuple(dims[:axis] + [len(ins)] + dims[axis:])


def _cast(g, ins, p, out):
    return g.cast(ins[0], out.dtype) if ins[0].dtype != out.dtype else \
        g.node("Identity", [ins[0].name]), ins[0].dims


def _expand(g, ins, p, out):
    v, target = ins[0], list(out.shape)
    lead = len(target) - len(v.dims)
    spec = [1 if k >= lead and is_dyn(v.dims[k - lead]) else n for k, n in enumerate(target)]
    return g.node("Expand", [v.name, g.ints(spec)]), broadcast_dims(out.shape, v.dims)


def _repeat(g, ins, p, out):
    v, reps = ins[0], [int(r) for r in p["reps"]]
    name, dims = v.name, v.dims
    if len(reps) > len(dims):
        lead = list(range(len(reps) - len(dims)))
        name, dims = g.node("Unsqueeze", [name, g.ints(lead)]), (1,) * len(lead) + dims
    dims = tuple(f"{d}_x{r}" if is_dyn(d) and r != 1 else (d if is_dyn(d) else n)
                 for d, r, n in zip(dims, reps, out.shape))
    return g.node("Tile", [name, g.ints(reps)]), dims


def _triangle(g, ins, p, out):
    k = g.scalar(int(p.get("diagonal", 0)), np.int64)
    return g.node("Trilu", [ins[0].name, k], upper=int(bool(p.get("upper")))), ins[0].dims


def _layer_norm(g, ins, p, out):
    x, n = ins[0], int(p.get("normalized", 1))
    if len(ins) > 2:
        scale, bias = ins[1].name, ins[2].name
    else:
        shape = tuple(out.shape[len(out.shape) - n:])
        scale, bias = (g.const(np.full(shape, fill, out.dtype), "layer_norm." + what,
                               key=("ln", what, shape, out.dtype.str))
                       for what, fill in (("ones", 1), ("zeros", 0)))
    return g.node("LayerNormalization", [x.name, scale, bias], axis=-n,
                  epsilon=float(p.get("eps", 1e-5))), x.dims


def _embedding(g, ins, p, out):
    weight = ins[0]
    ids = g.array_value(p["indices"], weight.tensor)
    return g.node("Gather", [weight.name, g.cast(ids, np.int64)], axis=0), \
        ids.dims + (out.shape[-1],)


CONVERTERS = {
    M.Add: _binary("Add"), M.Sub: _binary("Sub"), M.Mul: _binary("Mul"), M.Div: _binary("Div"),
    M.PowTensor: _binary("Pow"), M.Pow: _pow, M.Neg: _unary("Neg"), M.Exp: _unary("Exp"),
    M.Log: _unary("Log"), M.Sqrt: _unary("Sqrt"), M.Abs: _unary("Abs"), M.Sin: _unary("Sin"),
    M.Cos: _unary("Cos"), M.Clip: _clip, M.Maximum: _maximum, M.MatMul: _matmul,
    M.Sum: _reduce("ReduceSum"), M.Mean: _reduce("ReduceMean"), M.Max: _reduce("ReduceMax"),
    A.ReLU: _unary("Relu"), A.Sigmoid: _unary("Sigmoid"), A.Tanh: _unary("Tanh"),
    A.Softmax: _softmax("Softmax"), A.LogSoftmax: _softmax("LogSoftmax"), A.GELU: _gelu,
    A.Dropout: _dropout,
    conv.Linear: _linear, conv.Conv2d: _conv2d, conv.Conv2dReLUMaxPool: _conv2d_relu_max_pool,
    pooling.MaxPool2d: _max_pool, pooling.AvgPool2d: _avg_pool,
    shape.Reshape: _reshape, shape.Transpose: _transpose, shape.GetItem: _getitem,
    shape.Stack: _stack, shape.Concat: _concat, shape.Expand: _expand, shape.Repeat: _repeat,
    shape.Triangle: _triangle, indexing.Cast: _cast, indexing.Clone: _unary("Identity"),
    layer_norm.LayerNorm: _layer_norm, embedding.Embedding: _embedding,
}


def _leaky_relu(g, ins, p, out):
    return g.node("LeakyRelu", [ins[0].name], alpha=float(p["negative_slope"])), ins[0].dims


def _elu(g, ins, p, out):
    return g.node("Elu", [ins[0].name], alpha=float(p["alpha"])), ins[0].dims


CONVERTERS.update({A.LeakyReLU: _leaky_relu, A.ELU: _elu})


def supported_ops():
    """The names of the gpunet Functions that have an ONNX mapping (Dropout only in eval)."""
    return sorted(cls.__name__ for cls in CONVERTERS if cls is not A.Dropout)
