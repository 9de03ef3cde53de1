"""LSTM and GRU: one step's pointwise part (``LSTMCell``, ``GRUCell``) and a whole layer over
time (``LSTMSequence``, ``GRUSequence``), all on the backend's fused cell kernels.

A step takes the gate pre-activations ``gi`` = x W_ih^T + b_ih and ``gh`` = h W_hh^T + b_hh
(gates i, f, g, o for the LSTM, r, z, n for the GRU, as in PyTorch).  The sequence ops run
every step of one layer inside one Function: the forward keeps each step's cell activations,
the backward walks time in reverse and forms the W_hh gradient as one GEMM over all steps,
instead of a graph of ~6 small ops per step.  An optional ``mask`` (T, N, 1) of 1s and 0s
freezes the state of a sequence past its length (variable-length batches): the state at a
masked step is the previous one, unchanged.

Example:
    >>> gi, gh, c_prev = gn.randn(2, 4 * 3), gn.randn(2, 4 * 3), gn.zeros(2, 3)   # N = 2, H = 3
    >>> h, c = lstm_cell(gi, gh, c_prev)
    >>> h.shape, c.shape
    (gpunet.Size([2, 3]), gpunet.Size([2, 3]))
"""
from __future__ import annotations

from ..function import Function
from ..tensor import Tensor


class LSTMCell(Function):
    """(gi, gh, c_prev) -> hc (N, 2H) = [h | c]: one LSTM step after its two GEMMs."""

    @staticmethod
    def forward(ctx, gi, gh, c_prev):
        hc, saved = ctx.backend.lstm_cell_fwd(gi, gh, c_prev)
        ctx.save_for_backward(*saved)
        return hc

    @staticmethod
    def backward(ctx, ghc):
        g_gates, g_c_prev = ctx.backend.lstm_cell_bwd(ghc, ctx.saved)
        return g_gates, g_gates, g_c_prev  # gi and gh enter as a sum


class GRUCell(Function):
    """(gi, gh, h_prev) -> h (N, H): one GRU step after its two GEMMs."""

    @staticmethod
    def forward(ctx, gi, gh, h_prev):
        h, saved = ctx.backend.gru_cell_fwd(gi, gh, h_prev)
        ctx.save_for_backward(*saved)
        return h

    @staticmethod
    def backward(ctx, gy):
        return ctx.backend.gru_cell_bwd(gy, ctx.saved)


def _recurrent_gemm(be, h, w_hh_t, b_hh):
    """h W_hh^T (+ b_hh) from ``w_hh_t`` = W_hh^T made contiguous once per sequence (OpenBLAS
    runs the small-batch product ~1.5x faster than on the transposed view)."""
    gh = be.matmul(h, w_hh_t)
    if b_hh is not None:
        gh += b_hh
    return gh


def _carry(mask, t, new, old):
    """The state after step t: ``new`` where the sequence is still running, else ``old``."""
    return new if mask is None else old + mask[t] * (new - old)


def _split_carry(mask, t, g):
    """``g`` split into the part that reaches the cell's new state and the part passed straight
    to the previous state (at masked steps the state is carried unchanged)."""
    return (g, None) if mask is None else (mask[t] * g, (1 - mask[t]) * g)


def _weight_grads(be, g_gh, h_prev, with_bias):
    """dL/dW_hh = sum_t g_gh[t]^T h_prev[t] as one GEMM over all steps, and dL/db_hh."""
    flat = g_gh.reshape(-1, g_gh.shape[-1])
    g_w = be.matmul(flat.T, h_prev.reshape(-1, h_prev.shape[-1]))
    return (g_w, flat.sum(axis=0)) if with_bias else (g_w,)


class LSTMSequence(Function):
    """(xw (T, N, 4H), h0, c0 (N, H), w_hh (4H, H)[, b_hh (4H,)]) -> hc (T, N, 2H): [h_t | c_t]."""

    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, b_hh=None, mask=None):
        be, xp = ctx.backend, ctx.backend.xp
        steps, n, hs = xw.shape[0], h0.shape[0], h0.shape[1]
        out = xp.empty((steps, n, 2 * hs), xw.dtype)
        h_prev = xp.empty((steps, n, hs), xw.dtype)
        h, c, cells = h0, c0, []
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        # the LSTM's gates see gi + gh only, so b_hh joins the input projection once
        xw = xw if b_hh is None else xw + b_hh
        for t in range(steps):
            h_prev[t] = h
            hc, saved = be.lstm_cell_fwd(xw[t], _recurrent_gemm(be, h, w_hh_t, None), c)
            cells.append(saved)
            h, c = _carry(mask, t, hc[:, :hs], h), _carry(mask, t, hc[:, hs:], c)
            out[t, :, :hs], out[t, :, hs:] = h, c
        ctx.mask, ctx.with_bias = mask, b_hh is not None
        ctx.save_for_backward(w_hh, h_prev, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        w_hh, h_prev, cells = ctx.saved
        mask, hs = ctx.mask, h_prev.shape[2]
        g_gates = xp.empty((h_prev.shape[0], h_prev.shape[1], 4 * hs), g_out.dtype)
        g_h = g_c = 0
        for t in reversed(range(len(cells))):
            into_cell, past_h = _split_carry(mask, t, g_out[t, :, :hs] + g_h)
            into_cell_c, past_c = _split_carry(mask, t, g_out[t, :, hs:] + g_c)
            ghc = xp.concatenate([into_cell, into_cell_c], axis=1)
            g_gates[t], g_c = be.lstm_cell_bwd(ghc, cells[t])
            g_h = be.matmul(g_gates[t], w_hh)
            if mask is not None:
                g_h, g_c = g_h + past_h, g_c + past_c
        return (g_gates, g_h, g_c) + _weight_grads(be, g_gates, h_prev, ctx.with_bias)


class GRUSequence(Function):
    """(xw (T, N, 3H), h0 (N, H), w_hh (3H, H)[, b_hh (3H,)]) -> h (T, N, H) for every step."""

    @staticmethod
    def forward(ctx, xw, h0, w_hh, b_hh=None, mask=None):
        be, xp = ctx.backend, ctx.backend.xp
        steps = xw.shape[0]
        out = xp.empty((steps,) + h0.shape, xw.dtype)
        h_prev = xp.empty_like(out)
        h, cells = h0, []
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        for t in range(steps):
            h_prev[t] = h
            h_new, saved = be.gru_cell_fwd(xw[t], _recurrent_gemm(be, h, w_hh_t, b_hh), h)
            cells.append(saved)
            h = out[t] = _carry(mask, t, h_new, h)
        ctx.mask, ctx.with_bias = mask, b_hh is not None
        ctx.save_for_backward(w_hh, h_prev, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        w_hh, h_prev, cells = ctx.saved
        g_gi = xp.empty(h_prev.shape[:2] + (w_hh.shape[0],), g_out.dtype)
        g_gh = xp.empty_like(g_gi)
        g_h = 0
        for t in reversed(range(len(cells))):
            into_cell, past = _split_carry(ctx.mask, t, g_out[t] + g_h)
            g_gi[t], g_gh[t], g_h_cell = be.gru_cell_bwd(into_cell, cells[t])
            g_h = be.matmul(g_gh[t], w_hh) + g_h_cell
            if past is not None:
                g_h = g_h + past
        return (g_gi, g_h) + _weight_grads(be, g_gh, h_prev, ctx.with_bias)


def _cell_args(fn, gates, gi, gh, state, state_name):
    for name, x in (("gi", gi), ("gh", gh), (state_name, state)):
        if not isinstance(x, Tensor) or x.ndim != 2 or x.dtype.kind != "f":
            got = f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{fn}: {name} must be a 2-D float Tensor, got {got}")
    n, hs = state.shape
    for name, x in (("gi", gi), ("gh", gh)):
        if x.shape != (n, gates * hs):
            raise ValueError(f"{fn}: {name} must have shape (N, {gates}*H) = {(n, gates * hs)} "
                             f"for {state_name} of shape {tuple(state.shape)}, got {tuple(x.shape)}")


def lstm_cell(gi, gh, c_prev):
    """One LSTM step's pointwise part: returns ``(h, c)``, each (N, H).

    ``gi`` = x W_ih^T + b_ih and ``gh`` = h W_hh^T + b_hh, (N, 4H), gates i, f, g, o.

    Example:
        >>> h, c = lstm_cell(gn.zeros(2, 8), gn.zeros(2, 8), gn.ones(2, 2))
        >>> round(float(c[0, 0]), 3), round(float(h[0, 0]), 3)
        (0.5, 0.231)
    """
    _cell_args("lstm_cell", 4, gi, gh, c_prev, "c_prev")
    hs = c_prev.shape[1]
    hc = LSTMCell.apply(gi, gh, c_prev)
    return hc[:, :hs], hc[:, hs:]


def gru_cell(gi, gh, h_prev):
    """One GRU step's pointwise part (PyTorch's r, z, n gates): returns h (N, H).

    Example:
        >>> h = gru_cell(gn.zeros(2, 6), gn.zeros(2, 6), gn.ones(2, 2))   # z = 0.5, n = 0
        >>> float(h[0, 0])
        0.5
    """
    _cell_args("gru_cell", 3, gi, gh, h_prev, "h_prev")
    return GRUCell.apply(gi, gh, h_prev)
