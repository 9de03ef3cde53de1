"""Recurrent cells on NumPy: the pointwise part of one LSTM, GRU or Elman RNN step, forward and backward.

The matrix products (x W_ih^T + b_ih, h W_hh^T + b_hh) happen outside; these take the two gate
pre-activation arrays ``gi`` and ``gh`` and do everything else of a step in one vectorised pass,
mirroring ``cuda_kernels/recurrent.py`` (one thread per hidden unit there) name for name.

LSTM (gates i, f, g, o along the columns, each H wide), ``a = gi + gh``::

    c = sigmoid(a_f) * c_prev + sigmoid(a_i) * tanh(a_g),   h = sigmoid(a_o) * tanh(c)

GRU (gates r, z, n, as in PyTorch)::

    r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h_prev

Elman RNN: ``h = tanh(gi + gh)``, or ``max(gi + gh, 0)`` with ``relu``.

Example:
    >>> gi, gh, c0 = np.zeros((1, 8)), np.zeros((1, 8)), np.ones((1, 2))
    >>> hc, saved = lstm_cell_fwd(gi, gh, c0)          # hc = [h | c], shape (1, 4)
    >>> hc.tolist()                                     # c = 0.5 * 1 + 0.5 * 0, h = 0.5 * tanh(c)
    [[0.23105857863000487, 0.23105857863000487, 0.5, 0.5]]
"""
from __future__ import annotations

import numpy as np

from .activation import relu_into


def _sigmoid(x):
    # NOTE: 0.5 * (1 + tanh(x / 2)) is sigmoid without overflow in exp(-x) (as ops.Sigmoid).
    return 0.5 * (1 + np.tanh(0.5 * x))


_GATE_SCALES = {}


def _gate_scale(n, hs, dtype):
    """(N, 4H) arrays: scale rows [0.5]*2H + [1]*H + [0.5]*H and shift rows [0.5]*2H + [0]*H +
    [0.5]*H.  The i, f, o gates are sigmoids, written as 0.5 * tanh(0.5 a) + 0.5, and g is
    tanh(a), so one tanh covers all four gates.  Full arrays, not (4H,) rows: NumPy's in-place
    ops against a broadcast row ran 2.2x slower (64 x 512 float32: 4.4 against 1.7 us)."""
    key = (n, hs, np.dtype(dtype))
    found = _GATE_SCALES.get(key)
    if found is None:
        if len(_GATE_SCALES) > 16:  # a few batch sizes are usual; never grow without bound
            _GATE_SCALES.clear()
        scale = np.full(4 * hs, 0.5, dtype)
        scale[2 * hs:3 * hs] = 1
        shift = np.where(scale == 1, 0, 0.5).astype(dtype)
        found = _GATE_SCALES[key] = tuple(np.ascontiguousarray(np.broadcast_to(v, (n, 4 * hs)))
                                          for v in (scale, shift))
    return found


def lstm_cell_fwd(gi, gh, c_prev):
    """One LSTM step from gate pre-activations ``gi``, ``gh`` (N, 4H) and ``c_prev`` (N, H).

    Returns ``(hc, saved)``: hc (N, 2H) holds [h | c]; ``saved`` feeds :func:`lstm_cell_bwd`.
    """
    hs = c_prev.shape[1]
    scale, shift = _gate_scale(gi.shape[0], hs, gi.dtype)
    acts = np.add(gi, gh)
    acts *= scale
    np.tanh(acts, out=acts)
    acts *= scale
    acts += shift  # the same numbers as _sigmoid: 0.5 * t + 0.5 == 0.5 * (1 + t) exactly
    i, f, g, o = (acts[:, k * hs:(k + 1) * hs] for k in range(4))
    hc = np.empty((acts.shape[0], 2 * hs), acts.dtype)
    c = hc[:, hs:]
    np.multiply(f, c_prev, out=c)
    c += i * g
    tanh_c = np.tanh(c)
    np.multiply(o, tanh_c, out=hc[:, :hs])
    return hc, (acts, c_prev, tanh_c)


def _slopes(acts, tanh_c, hs):
    """The gates' slopes (N, 4H), s (1 - s) for i, f, o and 1 - g^2 for g, and dc/dh =
    o (1 - tanh(c)^2) (N, H): whole-array passes, not per-gate ones (64 x 128: 41 -> 34 us a
    backward step)."""
    slope = 1 - acts
    slope *= acts
    g, slope_g = acts[:, 2 * hs:3 * hs], slope[:, 2 * hs:3 * hs]
    np.multiply(g, g, out=slope_g)
    np.subtract(1, slope_g, out=slope_g)
    dc_dh = tanh_c * tanh_c
    np.subtract(1, dc_dh, out=dc_dh)
    dc_dh *= acts[:, 3 * hs:]
    return slope, dc_dh


def lstm_cell_bwd(ghc, saved):
    """Gradients ``(g_gates, g_c_prev)`` from ``ghc`` (N, 2H) = [dL/dh | dL/dc].

    g_gates (N, 4H) is the gradient of both ``gi`` and ``gh`` (they enter as a sum).
    """
    acts, c_prev, tanh_c = saved
    hs = c_prev.shape[1]
    slope, dc_dh = _slopes(acts, tanh_c, hs)
    gh_, gc = ghc[:, :hs], ghc[:, hs:]
    dc = gh_ * dc_dh
    dc += gc
    # each gate's output gradient, then times its activation's slope
    g_gates = np.empty_like(acts)
    np.multiply(dc, acts[:, 2 * hs:3 * hs], out=g_gates[:, :hs])
    np.multiply(dc, c_prev, out=g_gates[:, hs:2 * hs])
    np.multiply(dc, acts[:, :hs], out=g_gates[:, 2 * hs:3 * hs])
    np.multiply(gh_, tanh_c, out=g_gates[:, 3 * hs:])
    g_gates *= slope
    dc *= acts[:, hs:2 * hs]
    return g_gates, dc


def gru_cell_fwd(gi, gh, h_prev):
    """One GRU step from ``gi`` = x W_ih^T + b_ih, ``gh`` = h W_hh^T + b_hh (N, 3H), ``h_prev`` (N, H).

    Returns ``(h, saved)``; ``saved`` feeds :func:`gru_cell_bwd`.
    """
    hs = h_prev.shape[1]
    acts = np.empty_like(gi)
    acts[:, :2 * hs] = _sigmoid(gi[:, :2 * hs] + gh[:, :2 * hs])
    r, z = acts[:, :hs], acts[:, hs:2 * hs]
    n = acts[:, 2 * hs:]
    np.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:], out=n)
    h = n + z * (h_prev - n)
    return h, (acts, gh, h_prev)


def gru_cell_bwd(gh_out, saved):
    """Gradients ``(g_gi, g_gh, g_h_prev)`` of one GRU step from ``gh_out`` = dL/dh (N, H)."""
    acts, gh, h_prev = saved
    hs = h_prev.shape[1]
    r, z, n = acts[:, :hs], acts[:, hs:2 * hs], acts[:, 2 * hs:]
    dn = gh_out * (1 - z) * (1 - n * n)  # through tanh: the n pre-activation's gradient
    g_gi = np.empty_like(acts)
    g_gi[:, :hs] = dn * gh[:, 2 * hs:] * r * (1 - r)
    g_gi[:, hs:2 * hs] = gh_out * (h_prev - n) * z * (1 - z)
    g_gi[:, 2 * hs:] = dn
    g_gh = g_gi.copy()
    g_gh[:, 2 * hs:] *= r
    return g_gi, g_gh, gh_out * z


def rnn_cell_fwd(gi, gh, relu=False):
    """One Elman RNN step: ``h = tanh(gi + gh)`` (``max(gi + gh, 0)`` with ``relu``), (N, H).

    Returns ``(h, saved)``; ``saved`` (h itself) feeds :func:`rnn_cell_bwd`.

    Example:
        >>> rnn_cell_fwd(np.array([[0.5, -1.0]]), np.array([[0.5, 0.0]]), relu=True)[0].tolist()
        [[1.0, 0.0]]
    """
    a = gi + gh
    h = relu_into(a, a) if relu else np.tanh(a, out=a)
    return h, h


def rnn_cell_bwd(gh_out, saved, relu=False):
    """The pre-activation's gradient of one RNN step from ``gh_out`` = dL/dh (N, H): through
    tanh, ``gh_out * (1 - h^2)``; through the ReLU, ``gh_out`` where h is not 0 (NaN passes)."""
    h = saved
    if relu:
        return gh_out * np.not_equal(h, 0)
    return gh_out * (1 - h * h)
