"""Layer-level mapping for ``gpunet.onnx.export``: the layers emitted as one ONNX op each.

``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` become ONNX's LSTM / GRU / RNN ops (one per layer, both
directions in one), ``BatchNorm1d/2d`` (eval) ``BatchNormalization``, ``AdaptiveAvgPool2d`` to
1x1 ``GlobalAveragePool`` (to other sizes it is traced op by op).  Their forward still runs (its
result is the traced value) with the op trace paused.  The ``gpunet.nn`` layers in ``TRACED`` are
traced op by op (their forward is a few ops, or nothing in eval); any other one raises.

Gate order: gpunet (as PyTorch) keeps the LSTM's gates as i, f, g, o and ONNX as i, o, f, c; the
GRU's as r, z, n and ONNX as z, r, h (``linear_before_reset=1`` is PyTorch's GRU).  ``GATES``
holds the permutation of gate blocks.

Example:
    >>> GATES["LSTM"], GATES["GRU"]
    ((0, 3, 1, 2), (1, 0, 2))
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn.normalization import _BatchNorm
from ..nn.utils.rnn import PackedSequence
from .trace import UnsupportedOperatorError

GATES = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}

# gpunet.nn layers traced op by op (containers, and layers whose forward is a few ops)
TRACED = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Linear, nn.Conv2d, nn.MaxPool2d,
          nn.AvgPool2d, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Softmax,
          nn.LogSoftmax, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.Identity, nn.Embedding,
          nn.LayerNorm)


def _reorder(w, kind, hidden):
    """Gate blocks of ``w`` (G*H, ...) from gpunet's order to ONNX's."""
    return np.concatenate([w[k * hidden:(k + 1) * hidden] for k in GATES[kind]], axis=0)


def _recurrent(g, name, m, args, kwargs, out):
    kind = next(k for k, c in (("LSTM", nn.LSTM), ("GRU", nn.GRU), ("RNN", nn.RNN)) if isinstance(m, c))
    x = args[0]
    if isinstance(x, PackedSequence):
        raise UnsupportedOperatorError(f"gpunet.onnx.export: {kind} '{name}' got a PackedSequence; "
                                       "export with a padded (T, N, F) tensor")
    state = args[1] if len(args) > 1 else kwargs.get("hx", kwargs.get("h0"))
    states = list(state) if kind == "LSTM" and state is not None else [state] if state is not None else []
    xv = g.value(x, f"{kind} '{name}'")
    seq = g.node("Transpose", [xv.name], perm=[1, 0, 2]) if m.batch_first else xv.name
    t_dim, n_dim = (xv.dims[1], xv.dims[0]) if m.batch_first else xv.dims[:2]
    hidden, dirs = m.hidden_size, m._dirs
    init = [g.value(s, f"{kind} '{name}'").name for s in states]
    finals = [[] for _ in range(2 if kind == "LSTM" else 1)]
    for k in range(m.num_layers):
        mats = [[], [], []]
        for d in range(dirs):
            w_ih, w_hh, b_ih, b_hh = (None if p is None else p.numpy() for p in m._layer(k, d))
            mats[0].append(_reorder(w_ih, kind, hidden))
            mats[1].append(_reorder(w_hh, kind, hidden))
            if b_ih is not None:
                mats[2].append(np.concatenate([_reorder(b_ih, kind, hidden), _reorder(b_hh, kind, hidden)]))
        w, r, b = (g.const(np.stack(a), f"{name}.{what}_l{k}", key=(id(m), what, k)) if a else ""
                   for what, a in zip("WRB", mats))
        layer_init = [g.node("Slice", [s, g.ints([k * dirs]), g.ints([(k + 1) * dirs]), g.ints([0])])
                      for s in init]
        attrs = {"hidden_size": hidden, "direction": "bidirectional" if dirs == 2 else "forward"}
        if kind == "GRU":
            attrs["linear_before_reset"] = 1
        if kind == "RNN":
            attrs["activations"] = [m.nonlinearity.capitalize()] * dirs
        outs = g.node(kind, [seq, w, r, b, "", *layer_init], n_out=3 if kind == "LSTM" else 2, **attrs)
        for f, o in zip(finals, outs[1:]):
            f.append(o)
        if dirs == 1:
            seq = g.node("Squeeze", [outs[0], g.ints([1])])
        else:  # (T, 2, N, H) -> (T, N, 2H), forward features first
            seq = g.node("Reshape", [g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3]),
                                     g.ints([0, 0, -1])])
    y, rest = out
    y_dims = (n_dim, t_dim, dirs * hidden) if m.batch_first else (t_dim, n_dim, dirs * hidden)
    g.bind(y, g.node("Transpose", [seq], perm=[1, 0, 2]) if m.batch_first else seq, y_dims)
    for t, f in zip(rest if kind == "LSTM" else (rest,), finals):
        g.bind(t, f[0] if len(f) == 1 else g.node("Concat", f, axis=0),
               (m.num_layers * dirs, n_dim, hidden))


def _batch_norm(g, name, m, args, kwargs, out):
    if not m.track_running_stats:
        raise UnsupportedOperatorError(
            f"gpunet.onnx.export: {type(m).__name__} '{name}' has track_running_stats=False, so in "
            "eval it normalises with the batch's statistics; only running statistics are exported")
    x = g.value(args[0], f"{type(m).__name__} '{name}'")
    c, dt = m.num_features, out.dtype
    if m.affine:
        scale, bias = g.value(m.weight).name, g.value(m.bias).name
    else:
        scale, bias = (g.const(np.full(c, v, dt), f"{name}.{what}", key=(id(m), what))
                       for what, v in (("ones", 1), ("zeros", 0)))
    mean, var = g.value(m.running_mean).name, g.value(m.running_var).name
    g.bind(out, g.node("BatchNormalization", [x.name, scale, bias, mean, var], epsilon=m.eps), x.dims)


def _is_global(m, x):
    """True when AdaptiveAvgPool2d ``m`` pools all of ``x``'s H and W (output 1x1)."""
    size = m.output_size
    oh, ow = (size, size) if isinstance(size, int) else tuple(size)
    return (oh or x.shape[2], ow or x.shape[3]) == (1, 1)


def _adaptive_avg_pool(g, name, m, args, kwargs, out):
    """Output 1x1: GlobalAveragePool (any H, W).  Other sizes are traced op by op instead (one
    AveragePool when they divide the input's, else slices, means and stacks)."""
    x = g.value(args[0], f"AdaptiveAvgPool2d '{name}'")
    g.bind(out, g.node("GlobalAveragePool", [x.name]), x.dims[:2] + (1, 1))


WHOLE = ((nn.LSTM, _recurrent), (nn.GRU, _recurrent), (nn.RNN, _recurrent),
         (_BatchNorm, _batch_norm), (nn.AdaptiveAvgPool2d, _adaptive_avg_pool))


def supported_layers():
    """The names of the gpunet.nn layers that export supports."""
    names = {c.__name__ for c in TRACED} | {c.__name__ for c, _ in WHOLE if c is not _BatchNorm}
    return sorted(names | {"BatchNorm1d", "BatchNorm2d"})


def wrap_forward(g, name, module):
    """``module.forward`` for the trace: emitted whole, traced (its name kept for messages), or
    an UnsupportedOperatorError for a gpunet.nn layer without a mapping."""
    forward, cls = module.forward, type(module)
    convert = next((f for c, f in WHOLE if isinstance(module, c) and cls.forward is c.forward), None)
    gpunet_layer = cls.__module__.startswith("gpunet.nn")
    supported = convert is not None or not gpunet_layer or isinstance(module, TRACED)

    def traced(*args, **kwargs):
        if not supported:
            raise UnsupportedOperatorError(
                f"gpunet.onnx.export: layer '{name or '<model>'}' ({cls.__name__}) has no ONNX "
                f"mapping; supported layers: {', '.join(supported_layers())}, and Modules of your "
                "own whose forward composes them with tensor ops")
        g.stack.append((name, cls.__name__))
        try:
            if convert is None or convert is _adaptive_avg_pool and not _is_global(module, args[0]):
                return forward(*args, **kwargs)
            g.suspended += 1
            try:
                out = forward(*args, **kwargs)
            finally:
                g.suspended -= 1
            convert(g, name, module, args, kwargs, out)
            return out
        finally:
            g.stack.pop()

    return traced
