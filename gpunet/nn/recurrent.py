"""Recurrent layers RNN (tanh or relu), LSTM and GRU, with PyTorch's equations and parameters.

Shapes follow PyTorch: input (T, N, input_size), or (N, T, input_size) with ``batch_first``;
parameters ``weight_ih_l{k}`` (G*H, in), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``,
``bias_hh_l{k}`` with G = 1 (RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n), all
drawn from U(-1/sqrt(H), 1/sqrt(H)), so a PyTorch ``state_dict`` loads as it is.  The LSTM and
GRU run each layer as one op over time on fused cell kernels (``gpunet/ops/recurrent.py``); the
RNN is composed from plain ops.  ``LSTMCell`` and ``GRUCell`` are one step, for loops of your own.

``bidirectional=True`` adds a second set of parameters per layer (``..._l{k}_reverse``) that
reads each sequence backwards; the output is then (T, N, 2H), forward features first, and
``h_n`` is (2 * num_layers, N, H) ordered layer 0 forward, layer 0 backward, layer 1, ... as
in PyTorch.  (PyTorch's ``proj_size`` is not implemented.)

Variable-length batches: pass ``nn.utils.rnn.pack_padded_sequence(x, lengths)`` instead of
``x``, as in PyTorch; each sequence's state then stops at its own last step and the output
is a ``PackedSequence`` (``nn.utils.rnn.pad_packed_sequence`` pads it again).

Example:
    >>> lstm = nn.LSTM(input_size=8, hidden_size=16, batch_first=True)
    >>> out, (h, c) = lstm(gn.randn(4, 7, 8))          # (N, T, input_size)
    >>> out.shape, h.shape, c.shape
    (gpunet.Size([4, 7, 16]), gpunet.Size([1, 4, 16]), gpunet.Size([1, 4, 16]))
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..ops.recurrent import GRUSequence, LSTMSequence, RNNSequence, gru_cell, lstm_cell
from ..tensor import Tensor
from . import init
from .layers import _empty, _positive_int
from .module import Module
from .utils.rnn import PackedSequence, pad_packed_sequence, repack_like


class _RNNBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, backend=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.num_layers = _positive_int(name, "num_layers", num_layers)
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self._dirs = 2 if self.bidirectional else 1
        gh, bound = self._gates * self.hidden_size, 1 / math.sqrt(self.hidden_size)
        for k in range(self.num_layers):  # PyTorch's order: l0, l0_reverse, l1, ...
            fan_in = self.input_size if k == 0 else self.hidden_size * self._dirs
            for sfx in ("", "_reverse")[:self._dirs]:
                shapes = {f"weight_ih_l{k}{sfx}": (gh, fan_in),
                          f"weight_hh_l{k}{sfx}": (gh, self.hidden_size)}
                if self.bias:
                    shapes.update({f"bias_ih_l{k}{sfx}": (gh,), f"bias_hh_l{k}{sfx}": (gh,)})
                for pname, shape in shapes.items():
                    setattr(self, pname, init.uniform_(_empty(shape, dtype, backend), -bound, bound))

    def _layer(self, k, d=0):
        sfx = "_reverse" if d else ""
        get = lambda n: self._parameters.get(f"{n}_l{k}{sfx}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check(self, x, state, what):
        """x (time-major), the per-layer initial states (zeros where not given) and the mask
        (T, N, 1) of a packed input (None otherwise)."""
        name = type(self).__name__
        mask = packed = None
        if isinstance(x, PackedSequence):
            packed = x
            x, lengths = pad_packed_sequence(x)
            steps = np.arange(x.shape[0])[:, None, None]
            mask = x.backend.asarray((steps < lengths.numpy()[None, :, None]).astype(x.dtype))
            if self.batch_first:
                x = x.transpose(0, 1)
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a gpunet Tensor, got {type(x).__name__}")
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: input must be 3-D {layout} with input_size={self.input_size}, "
                             f"got shape {tuple(x.shape)}")
        n = x.shape[0] if self.batch_first else x.shape[1]
        want = (self.num_layers * self._dirs, n, self.hidden_size)
        for label, s in zip(what, state):
            if s is not None and (not isinstance(s, Tensor) or s.shape != want):
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{name}: {label} must be a Tensor of shape {want}, got {got}")
        zeros = Tensor._wrap(x.backend.xp.zeros(want, x.dtype), x.backend)
        states = tuple(zeros if s is None else s for s in state)
        return (x.transpose(0, 1) if self.batch_first else x), states, mask, packed

    def _run(self, x, states, mask, layer_over_time):
        """Every layer in turn, each direction of it; ``layer_over_time(k, d, x, state, mask)
        -> (outputs, final state)``.  The reverse direction reads each sequence backwards from
        its own last step (its length, for a packed input) and its outputs are put back in
        time order, then concatenated after the forward direction's, as in PyTorch."""
        seq, finals = x, []
        backwards = _reversal(x, mask) if self._dirs == 2 else None
        for k in range(self.num_layers):
            outs = []
            for d in range(self._dirs):
                inp = seq if d == 0 else backwards(seq)
                out, final = layer_over_time(k, d, inp, tuple(s[k * self._dirs + d] for s in states),
                                             mask)
                outs.append(out if d == 0 else backwards(out))
                finals.append(final)
            seq = outs[0] if self._dirs == 1 else F.concat(outs, dim=2)
            if self.dropout and self.training and k < self.num_layers - 1:
                seq = F.dropout(seq, self.dropout)
        return seq, [F.stack([f[i] for f in finals], axis=0) for i in range(len(states))]

    def _output(self, seq, packed):
        """Time-major outputs as the caller gave the input: packed, batch-first or time-major."""
        if packed is not None:
            return repack_like(seq, packed)
        return seq.transpose(0, 1) if self.batch_first else seq

    def flatten_parameters(self):
        """A no-op, as torch's is off cuDNN: each weight here is already its own contiguous array."""

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _layer_inputs(rnn, k, d, x, state):
    """A sequence op's inputs for layer k, direction d: x, w_ih[, b_ih], states, w_hh[, b_hh]."""
    w_ih, w_hh, b_ih, b_hh = rnn._layer(k, d)
    biases = lambda b: [b] if rnn.bias else []  # noqa: E731
    return [x, w_ih, *biases(b_ih), *state, w_hh, *biases(b_hh)]


def _reversal(x, mask):
    """A function that reverses time-major (T, N, ...) tensors sequence by sequence: all T steps
    without a mask, else each sequence's first ``length`` steps (the padding stays in place)."""
    if mask is None:
        return lambda t: t[::-1]
    steps = x.shape[0]
    lengths = mask.sum(axis=0).reshape(-1).astype(np.int64)  # (N,) from the (T, N, 1) mask
    lengths = np.asarray(x.backend.to_host(lengths))
    t = np.arange(steps)[:, None]
    index = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # an involution
    cols = np.broadcast_to(np.arange(x.shape[1])[None, :], index.shape)
    index, cols = x.backend.asarray(index), x.backend.asarray(np.ascontiguousarray(cols))
    return lambda seq: seq[index, cols]


class RNN(_RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    ``forward(x, h0=None)`` returns ``(output, h_n)``: output holds h_t of the last layer
    for every t, h_n (num_layers, N, H) the last h of every layer.  ``x`` may be a
    ``PackedSequence`` (see the module docstring); output is then packed too.

    Example:
        >>> rnn = nn.RNN(4, 8, batch_first=True)
        >>> out, h = rnn(gn.tensor(np.zeros((2, 5, 4), np.float32)))
        >>> out.shape, h.shape
        (gpunet.Size([2, 5, 8]), gpunet.Size([1, 2, 8]))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32, backend=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, backend)
        self.nonlinearity = nonlinearity

    def _over_time(self, k, d, x, state, mask):
        out = RNNSequence.apply(*_layer_inputs(self, k, d, x, state), bias=self.bias, mask=mask,
                                relu=self.nonlinearity == "relu")
        return out, (out[-1],)

    def forward(self, x, h0=None):
        x, states, mask, packed = self._check(x, (h0,), ("h0",))
        out, (h_n,) = self._run(x, states, mask, self._over_time)
        return self._output(out, packed), h_n

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(_RNNBase):
    """Long short-term memory: gates i, f, g, o; c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t).

    ``forward(x, (h0, c0)=None)`` returns ``(output, (h_n, c_n))``; ``x`` may be a
    ``PackedSequence``.  ``forget_bias`` (PyTorch has no such argument) sets the forget-gate
    slice of every ``bias_ih_l{k}`` to that value and the same slice of ``bias_hh_l{k}`` to 0,
    so the forget gate starts at sigmoid(forget_bias) and c is kept over long lags (1.0 is
    the usual choice); in PyTorch write ``b_ih[H:2*H] = 1; b_hh[H:2*H] = 0`` yourself.

    Example:
        >>> lstm = nn.LSTM(4, 8, forget_bias=1.0)
        >>> out, (h, c) = lstm(gn.tensor(np.zeros((5, 2, 4), np.float32)))   # (T, N, F)
        >>> out.shape, h.shape, c.shape
        (gpunet.Size([5, 2, 8]), gpunet.Size([1, 2, 8]), gpunet.Size([1, 2, 8]))
    """

    _gates = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, backend=None, forget_bias=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, backend)
        if forget_bias is not None:
            if not self.bias:
                raise ValueError("LSTM: forget_bias needs bias=True (it is set in the biases)")
            if not isinstance(forget_bias, (int, float)) or not math.isfinite(forget_bias):
                raise ValueError(f"LSTM: forget_bias must be a finite number or None, got {forget_bias!r}")
            hs = self.hidden_size
            for k in range(self.num_layers):
                for d in range(self._dirs):
                    _, _, b_ih, b_hh = self._layer(k, d)
                    b_ih._data[hs:2 * hs] = forget_bias
                    b_hh._data[hs:2 * hs] = 0
        self.forget_bias = forget_bias

    def _over_time(self, k, d, x, state, mask):
        hc = LSTMSequence.apply(*_layer_inputs(self, k, d, x, state), bias=self.bias, mask=mask)
        hs = self.hidden_size
        return hc[:, :, :hs], (hc[-1, :, :hs], hc[-1, :, hs:])

    def forward(self, x, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTM: hx must be a tuple (h0, c0) or None, got {type(hx).__name__}")
        h0, c0 = hx if hx is not None else (None, None)
        x, states, mask, packed = self._check(x, (h0, c0), ("h0", "c0"))
        out, (h_n, c_n) = self._run(x, states, mask, self._over_time)
        return self._output(out, packed), (h_n, c_n)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.forget_bias is None else s + f", forget_bias={self.forget_bias}"


class GRU(_RNNBase):
    """Gated recurrent unit with PyTorch's equations, gates r, z, n::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h

    ``forward(x, h0=None)`` returns ``(output, h_n)``; ``x`` may be a ``PackedSequence``.

    Example:
        >>> gru = nn.GRU(4, 8, batch_first=True)
        >>> out, h = gru(gn.tensor(np.zeros((2, 5, 4), np.float32)))
        >>> out.shape, h.shape
        (gpunet.Size([2, 5, 8]), gpunet.Size([1, 2, 8]))
    """

    _gates = 3

    def _over_time(self, k, d, x, state, mask):
        out = GRUSequence.apply(*_layer_inputs(self, k, d, x, state), bias=self.bias, mask=mask)
        return out, (out[-1],)

    def forward(self, x, h0=None):
        x, states, mask, packed = self._check(x, (h0,), ("h0",))
        out, (h_n,) = self._run(x, states, mask, self._over_time)
        return self._output(out, packed), h_n


class _CellBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, backend=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        gh, bound = self._gates * self.hidden_size, 1 / math.sqrt(self.hidden_size)
        shapes = {"weight_ih": (gh, self.input_size), "weight_hh": (gh, self.hidden_size)}
        if self.bias:
            shapes.update({"bias_ih": (gh,), "bias_hh": (gh,)})
        for pname, shape in shapes.items():
            setattr(self, pname, init.uniform_(_empty(shape, dtype, backend), -bound, bound))

    def _gate_inputs(self, x, h, what):
        """x W_ih^T + b_ih and h W_hh^T + b_hh, after checking x (N, in) and the state (N, H)."""
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name}: input must be a 2-D Tensor (N, {self.input_size}), got {got}")
        want = (x.shape[0], self.hidden_size)
        for label, s in zip(what, h):
            if s is not None and (not isinstance(s, Tensor) or s.shape != want):
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{name}: {label} must be a Tensor of shape {want}, got {got}")
        zeros = Tensor._wrap(x.backend.xp.zeros(want, x.dtype), x.backend)
        state = [zeros if s is None else s for s in h]
        b_ih, b_hh = self._parameters.get("bias_ih"), self._parameters.get("bias_hh")
        return F.linear(x, self.weight_ih, b_ih), F.linear(state[0], self.weight_hh, b_hh), state

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class LSTMCell(_CellBase):
    """One LSTM step, as ``nn.LSTMCell``: ``forward(x, (h, c)=None) -> (h', c')``, x (N, in).

    Example:
        >>> cell = nn.LSTMCell(4, 8)
        >>> h, c = cell(gn.zeros(2, 4))
        >>> h.shape, c.shape
        (gpunet.Size([2, 8]), gpunet.Size([2, 8]))
    """

    _gates = 4

    def forward(self, x, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c) or None, got {type(hx).__name__}")
        gi, gh, (_, c) = self._gate_inputs(x, hx if hx is not None else (None, None), ("h", "c"))
        return lstm_cell(gi, gh, c)


class GRUCell(_CellBase):
    """One GRU step, as ``nn.GRUCell``: ``forward(x, h=None) -> h'``, x (N, in).

    Example:
        >>> cell = nn.GRUCell(4, 8)
        >>> cell(gn.zeros(2, 4)).shape
        gpunet.Size([2, 8])
    """

    _gates = 3

    def forward(self, x, hx=None):
        gi, gh, (h,) = self._gate_inputs(x, (hx,), ("hx",))
        return gru_cell(gi, gh, h)
