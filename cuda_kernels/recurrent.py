"""Recurrent cell kernels: the pointwise part of one LSTM, GRU or Elman RNN step, each ONE kernel.

One thread per (row n, hidden unit j) reads that unit's gate pre-activations from ``gi`` and
``gh`` (columns j, H + j, 2H + j, … in the gate order), applies the nonlinearities and writes
the new state, plus the activations the backward needs.  The backward kernel of a step writes
every gate gradient of its unit; no two threads write one element, so there are no atomics.
The equations are in ``numpy_kernels/recurrent.py``, which these mirror name for name.

Example:
    >>> from cuda_kernels import recurrent                        # doctest: +SKIP
    >>> hc, saved = recurrent.lstm_cell_fwd(gi, gh, c_prev)       # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import namedtuple

from numba import cuda

from . import _launch


CellKernels = namedtuple("CellKernels", "lstm_fwd lstm_bwd gru_fwd gru_bwd rnn_fwd rnn_bwd")


def _make_kernels(acc_t):
    half, one, zero = acc_t(0.5), acc_t(1), acc_t(0)

    @cuda.jit(device=True, inline=True)
    def sigmoid(x):
        return half * (one + math.tanh(half * x))  # no overflow in exp(-x)

    @_launch.cached_jit
    def lstm_cell_fwd_kernel(gi, gh, c_prev, hc, acts, tanh_c):
        N, H = c_prev.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            i = sigmoid(gi[n, j] + gh[n, j])
            f = sigmoid(gi[n, H + j] + gh[n, H + j])
            g = math.tanh(gi[n, 2 * H + j] + gh[n, 2 * H + j])
            o = sigmoid(gi[n, 3 * H + j] + gh[n, 3 * H + j])
            c = f * c_prev[n, j] + i * g
            tc = math.tanh(c)
            hc[n, j] = o * tc
            hc[n, H + j] = c
            acts[n, j] = i
            acts[n, H + j] = f
            acts[n, 2 * H + j] = g
            acts[n, 3 * H + j] = o
            tanh_c[n, j] = tc

    @_launch.cached_jit
    def lstm_cell_bwd_kernel(ghc, acts, c_prev, tanh_c, g_gates, g_c_prev):
        N, H = c_prev.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            i, f = acts[n, j], acts[n, H + j]
            g, o = acts[n, 2 * H + j], acts[n, 3 * H + j]
            tc, dh = tanh_c[n, j], ghc[n, j]
            dc = ghc[n, H + j] + dh * o * (one - tc * tc)
            g_gates[n, j] = dc * g * i * (one - i)
            g_gates[n, H + j] = dc * c_prev[n, j] * f * (one - f)
            g_gates[n, 2 * H + j] = dc * i * (one - g * g)
            g_gates[n, 3 * H + j] = dh * tc * o * (one - o)
            g_c_prev[n, j] = dc * f

    @_launch.cached_jit
    def gru_cell_fwd_kernel(gi, gh, h_prev, h, acts):
        N, H = h_prev.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            r = sigmoid(gi[n, j] + gh[n, j])
            z = sigmoid(gi[n, H + j] + gh[n, H + j])
            cand = math.tanh(gi[n, 2 * H + j] + r * gh[n, 2 * H + j])
            h[n, j] = cand + z * (h_prev[n, j] - cand)
            acts[n, j] = r
            acts[n, H + j] = z
            acts[n, 2 * H + j] = cand

    @_launch.cached_jit
    def gru_cell_bwd_kernel(gh_out, acts, gh, h_prev, g_gi, g_gh, g_h_prev):
        N, H = h_prev.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            r, z, cand = acts[n, j], acts[n, H + j], acts[n, 2 * H + j]
            d = gh_out[n, j]
            dc = d * (one - z) * (one - cand * cand)
            dr = dc * gh[n, 2 * H + j] * r * (one - r)
            dz = d * (h_prev[n, j] - cand) * z * (one - z)
            g_gi[n, j] = dr
            g_gh[n, j] = dr
            g_gi[n, H + j] = dz
            g_gh[n, H + j] = dz
            g_gi[n, 2 * H + j] = dc
            g_gh[n, 2 * H + j] = dc * r
            g_h_prev[n, j] = d * z

    @_launch.cached_jit
    def rnn_cell_fwd_kernel(gi, gh, relu, h):
        N, H = h.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            a = gi[n, j] + gh[n, j]
            if relu:
                h[n, j] = zero if a <= 0 else a  # NaN passes, as max(a, 0)
            else:
                h[n, j] = math.tanh(a)

    @_launch.cached_jit
    def rnn_cell_bwd_kernel(gh_out, h, relu, g):
        N, H = h.shape
        for idx in range(cuda.grid(1), N * H, cuda.gridsize(1)):
            n = idx // H
            j = idx - n * H
            v = h[n, j]
            if relu:
                g[n, j] = zero if v == 0 else gh_out[n, j]
            else:
                g[n, j] = gh_out[n, j] * (one - v * v)

    return CellKernels(lstm_cell_fwd_kernel, lstm_cell_bwd_kernel, gru_cell_fwd_kernel, gru_cell_bwd_kernel,
                       rnn_cell_fwd_kernel, rnn_cell_bwd_kernel)


_cache: dict = {}


def kernels(dtype):
    """The cell kernels (lstm, gru and rnn, forward and backward) for float32 or float64."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def _grid(state):
    """One thread per hidden unit; a block no bigger than the problem (tiny in tests, where the
    simulator pays for every thread it starts)."""
    threads = min(_launch.TPB, max(1, state.size))
    return _launch.blocks_for(state.size, threads), threads


def lstm_cell_fwd(gi, gh, c_prev):
    """One LSTM step from gate pre-activations ``gi``, ``gh`` (N, 4H) and ``c_prev`` (N, H).

    Returns ``(hc, saved)``: hc (N, 2H) holds [h | c]; ``saved`` feeds :func:`lstm_cell_bwd`.
    """
    xp, c = _launch.xp, _launch.contiguous
    gi, gh, c_prev = c(gi), c(gh), c(c_prev)
    n, hs = c_prev.shape
    hc = xp.empty((n, 2 * hs), gi.dtype)
    acts, tanh_c = xp.empty_like(gi), xp.empty_like(c_prev)
    _launch.launch(kernels(gi.dtype).lstm_fwd, *_grid(c_prev), gi, gh, c_prev, hc, acts, tanh_c)
    return hc, (acts, c_prev, tanh_c)


def lstm_cell_bwd(ghc, saved):
    """Gradients ``(g_gates, g_c_prev)`` from ``ghc`` (N, 2H) = [dL/dh | dL/dc]."""
    acts, c_prev, tanh_c = saved
    ghc = _launch.contiguous(ghc)
    g_gates, g_c_prev = _launch.xp.empty_like(acts), _launch.xp.empty_like(c_prev)
    _launch.launch(kernels(acts.dtype).lstm_bwd, *_grid(c_prev), ghc, acts, c_prev, tanh_c,
                   g_gates, g_c_prev)
    return g_gates, g_c_prev


def gru_cell_fwd(gi, gh, h_prev):
    """One GRU step from ``gi`` = x W_ih^T + b_ih, ``gh`` = h W_hh^T + b_hh (N, 3H), ``h_prev`` (N, H).

    Returns ``(h, saved)``; ``saved`` feeds :func:`gru_cell_bwd`.
    """
    c = _launch.contiguous
    gi, gh, h_prev = c(gi), c(gh), c(h_prev)
    h, acts = _launch.xp.empty_like(h_prev), _launch.xp.empty_like(gi)
    _launch.launch(kernels(gi.dtype).gru_fwd, *_grid(h_prev), gi, gh, h_prev, h, acts)
    return h, (acts, gh, h_prev)


def gru_cell_bwd(gh_out, saved):
    """Gradients ``(g_gi, g_gh, g_h_prev)`` of one GRU step from ``gh_out`` = dL/dh (N, H)."""
    acts, gh, h_prev = saved
    gh_out = _launch.contiguous(gh_out)
    xp = _launch.xp
    g_gi, g_gh, g_h_prev = xp.empty_like(acts), xp.empty_like(acts), xp.empty_like(h_prev)
    _launch.launch(kernels(acts.dtype).gru_bwd, *_grid(h_prev), gh_out, acts, gh, h_prev,
                   g_gi, g_gh, g_h_prev)
    return g_gi, g_gh, g_h_prev


def rnn_cell_fwd(gi, gh, relu=False):
    """One Elman RNN step ``h = tanh(gi + gh)`` (ReLU with ``relu``) in one launch; returns
    ``(h, saved)``.

    Example:
        >>> h, saved = rnn_cell_fwd(gi, gh)   # doctest: +SKIP
    """
    c = _launch.contiguous
    gi, gh = c(gi), c(gh)
    h = _launch.xp.empty_like(gi)
    _launch.launch(kernels(gi.dtype).rnn_fwd, *_grid(h), gi, gh, bool(relu), h)
    return h, h


def rnn_cell_bwd(gh_out, saved, relu=False):
    """The pre-activation's gradient of one RNN step from ``gh_out`` = dL/dh, in one launch."""
    h = saved
    gh_out = _launch.contiguous(gh_out)
    g = _launch.xp.empty_like(h)
    _launch.launch(kernels(h.dtype).rnn_bwd, *_grid(h), gh_out, h, bool(relu), g)
    return g
