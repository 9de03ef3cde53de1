"""Recurrent layers, RNN (tanh or relu) and LSTM, composed from existing differentiable ops.

Shapes follow PyTorch: input (T, N, input_size), or (N, T, input_size) with ``batch_first``;
parameters ``weight_ih_l{k}`` (G*H, in), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``,
``bias_hh_l{k}`` with G = 1 (RNN) or 4 (LSTM, gates in the order i, f, g, o), all drawn
from U(-1/sqrt(H), 1/sqrt(H)).

Example:
    >>> lstm = nn.LSTM(input_size=8, hidden_size=16, batch_first=True)
    >>> out, (h, c) = lstm(x)          # x (N, T, 8) -> out (N, T, 16), h and c (1, N, 16)
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .layers import _empty, _positive_int
from .module import Module


class _RNNBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, dtype=np.float32, backend=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.num_layers = _positive_int(name, "num_layers", num_layers)
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        gh, bound = self._gates * self.hidden_size, 1 / math.sqrt(self.hidden_size)
        for k in range(self.num_layers):
            fan_in = self.input_size if k == 0 else self.hidden_size
            shapes = {f"weight_ih_l{k}": (gh, fan_in), f"weight_hh_l{k}": (gh, self.hidden_size)}
            if self.bias:
                shapes.update({f"bias_ih_l{k}": (gh,), f"bias_hh_l{k}": (gh,)})
            for pname, shape in shapes.items():
                setattr(self, pname, init.uniform_(_empty(shape, dtype, backend), -bound, bound))

    def _layer(self, k):
        get = lambda n: self._parameters.get(f"{n}_l{k}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check(self, x, state, what):
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a gpunet Tensor, got {type(x).__name__}")
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: input must be 3-D {layout} with input_size={self.input_size}, "
                             f"got shape {x.shape}")
        n = x.shape[0] if self.batch_first else x.shape[1]
        want = (self.num_layers, n, self.hidden_size)
        for label, s in zip(what, state):
            if s is not None and (not isinstance(s, Tensor) or s.shape != want):
                got = s.shape if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{name}: {label} must be a Tensor of shape {want}, got {got}")
        return x.transpose(0, 1) if self.batch_first else x  # time-major from here on

    def _run(self, x, states, cell):
        """Unroll every layer over time; ``cell(k, xw_t, state) -> new state`` (state[0] is h)."""
        seq, finals = x, []
        for k in range(self.num_layers):
            w_ih, _, b_ih, _ = self._layer(k)
            xw = F.linear(seq, w_ih, b_ih)  # input projection of every time step at once
            state = tuple(s[k] if s is not None else None for s in states)
            outs = []
            for t in range(seq.shape[0]):
                state = cell(k, xw[t], state)
                outs.append(state[0])
            seq = F.stack(outs, axis=0)
            if self.dropout and self.training and k < self.num_layers - 1:
                seq = F.dropout(seq, self.dropout)
            finals.append(state)
        out = seq.transpose(0, 1) if self.batch_first else seq
        return out, [F.stack([f[i] for f in finals], axis=0) for i in range(len(states))]

    def _recurrent(self, k, xw_t, h):
        """xw_t + h @ W_hh.T + b_hh, where a missing initial h counts as zeros."""
        _, w_hh, _, b_hh = self._layer(k)
        if h is None:
            return xw_t if b_hh is None else xw_t + b_hh
        return xw_t + F.linear(h, w_hh, b_hh)

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
        return s


class RNN(_RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    ``forward(x, h0=None)`` returns ``(output, h_n)``: output holds h_t of the last layer
    for every t, h_n (num_layers, N, H) the last h of every layer.

    Example:
        >>> rnn = nn.RNN(4, 8, batch_first=True)
        >>> out, h = rnn(gn.tensor(np.zeros((2, 5, 4), np.float32)))
        >>> out.shape, h.shape
        ((2, 5, 8), (1, 2, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, dtype=np.float32, backend=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, dtype, backend)
        self.nonlinearity = nonlinearity

    def forward(self, x, h0=None):
        x = self._check(x, (h0,), ("h0",))
        act = F.tanh if self.nonlinearity == "tanh" else F.relu
        out, (h_n,) = self._run(x, (h0,), lambda k, xw_t, s: (act(self._recurrent(k, xw_t, s[0])),))
        return out, h_n

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(_RNNBase):
    """Long short-term memory: gates i, f, g, o; c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t).

    ``forward(x, (h0, c0)=None)`` returns ``(output, (h_n, c_n))``.

    Example:
        >>> lstm = nn.LSTM(4, 8)
        >>> out, (h, c) = lstm(gn.tensor(np.zeros((5, 2, 4), np.float32)))   # (T, N, F)
        >>> out.shape, h.shape, c.shape
        ((5, 2, 8), (1, 2, 8), (1, 2, 8))
    """

    _gates = 4

    def _cell(self, k, xw_t, state):
        h, c = state
        hs = self.hidden_size
        z = self._recurrent(k, xw_t, h)
        i, f = F.sigmoid(z[:, :hs]), F.sigmoid(z[:, hs:2 * hs])
        g, o = F.tanh(z[:, 2 * hs:3 * hs]), F.sigmoid(z[:, 3 * hs:])
        c = i * g if c is None else f * c + i * g
        return o * F.tanh(c), c

    def forward(self, x, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTM: hx must be a tuple (h0, c0) or None, got {type(hx).__name__}")
        h0, c0 = hx if hx is not None else (None, None)
        x = self._check(x, (h0, c0), ("h0", "c0"))
        out, (h_n, c_n) = self._run(x, (h0, c0), self._cell)
        return out, (h_n, c_n)
