"""LSTM, GRU and Elman RNN: one step's pointwise part (``LSTMCell``, ``GRUCell``) and a whole
layer over time (``LSTMSequence``, ``GRUSequence``, ``RNNSequence``), all on the backend's
fused cell kernels.

A step takes the gate pre-activations ``gi`` = x W_ih^T + b_ih and ``gh`` = h W_hh^T + b_hh
(gates i, f, g, o for the LSTM, r, z, n for the GRU, as in PyTorch).  The sequence ops run
every step of one layer inside one Function, instead of a graph of ~6 small ops per step:
the forward keeps each step's cell activations, the backward walks time in reverse.  The
input projection and the weight gradients are products over spans of 8 steps, formed beside
the serial loop over time (``pipeline``).  An optional ``mask`` (T, N, 1) of 1s and 0s
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
from .recurrent_spans import (_carry, _Grads, _layer_arrays, _project, _recurrent_gemm, _split_carry,
                              pipeline, time_spans)


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


class LSTMSequence(Function):
    """(x (T, N, F), w_ih (4H, F)[, b_ih], h0, c0 (N, H), w_hh (4H, H)[, b_hh]) -> hc (T, N, 2H)
    = [h_t | c_t], with ``bias=`` saying whether the two biases are given."""

    @staticmethod
    def forward(ctx, *arrays, bias=True, mask=None):
        be, xp = ctx.backend, ctx.backend.xp
        x, w_ih, b_ih, (h0, c0), w_hh, b_hh = _layer_arrays(arrays, 2, bias)
        steps, n, hs = x.shape[0], h0.shape[0], h0.shape[1]
        out = xp.empty((steps, n, 2 * hs), x.dtype)
        xw = xp.empty((steps, n, 4 * hs), x.dtype)
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        cells, state = [], {"h": h0, "c": c0}

        def loop(lo, hi):
            for t in range(lo, hi):
                h, c = state["h"], state["c"]
                hc, saved = be.lstm_cell_fwd(xw[t], _recurrent_gemm(be, h, w_hh_t, None), c)
                cells.append(saved)
                if mask is None:
                    out[t] = hc
                else:
                    out[t, :, :hs] = _carry(mask, t, hc[:, :hs], h)
                    out[t, :, hs:] = _carry(mask, t, hc[:, hs:], c)
                state["h"], state["c"] = out[t, :, :hs], out[t, :, hs:]

        # the LSTM's gates see gi + gh only, so both biases join the input projection
        pipeline(be, time_spans(be, steps), _project(be, x, w_ih, None if b_ih is None else b_ih + b_hh, xw),
                 loop)
        ctx.mask, ctx.bias = mask, bias
        ctx.save_for_backward(x, w_ih, w_hh, h0, out, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        x, w_ih, w_hh, h0, out, cells = ctx.saved
        mask, (n, hs) = ctx.mask, h0.shape
        g_gates = xp.empty((len(cells), n, 4 * hs), g_out.dtype)
        ghc = xp.empty((n, 2 * hs), g_out.dtype)
        h_prev = xp.concatenate([h0[None], out[:-1, :, :hs]])  # the h each step started from
        order = time_spans(be, len(cells))[::-1]
        grad, grads = {"h": 0, "c": 0}, _Grads(be, x, w_ih, ctx.needs_input_grad[0], order)

        def loop(lo, hi):
            for t in reversed(range(lo, hi)):
                xp.add(g_out[t, :, :hs], grad["h"], out=ghc[:, :hs])
                xp.add(g_out[t, :, hs:], grad["c"], out=ghc[:, hs:])
                into_cell, past = _split_carry(mask, t, ghc)
                g_gates[t], grad["c"] = be.lstm_cell_bwd(into_cell, cells[t])
                grad["h"] = be.matmul(g_gates[t], w_hh)
                if past is not None:
                    grad["h"], grad["c"] = grad["h"] + past[:, :hs], grad["c"] + past[:, hs:]

        # gi and gh enter as a sum: both sides see g_gates
        pipeline(be, order, loop, grads.parts(g_gates, g_gates, h_prev), share=True)
        if ctx.bias:
            grads.sums["b_hh"] = grads.sums["b_ih"].copy()  # one array for two parameters' grads
        zero = xp.zeros_like(h0)  # what a sequence of no steps sends back to its states
        return grads.result(ctx.bias, tuple(zero if isinstance(g, int) else g
                                            for g in (grad["h"], grad["c"])))


def _one_state_loop(be, x, w_ih, proj_bias, h0, w_hh, step, mask):
    """The forward of a layer whose state is h alone (GRU, RNN): ``(out, h_prev, cells)``, the h
    of every step, the h each step started from and each step's saved state.  ``step(gi, h,
    w_hh_t)`` is one step's ``(h_new, saved)`` from its input projection ``gi``."""
    xp, steps = be.xp, x.shape[0]
    out = xp.empty((steps,) + h0.shape, x.dtype)
    xw = xp.empty((steps, h0.shape[0], w_ih.shape[0]), x.dtype)
    h_prev = xp.empty_like(out)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    cells, state = [], {"h": h0}

    def loop(lo, hi):
        for t in range(lo, hi):
            h = h_prev[t] = state["h"]
            h_new, saved = step(xw[t], h, w_hh_t)
            cells.append(saved)
            state["h"] = out[t] = _carry(mask, t, h_new, h)

    pipeline(be, time_spans(be, steps), _project(be, x, w_ih, proj_bias, xw), loop)
    return out, h_prev, cells


def _one_state_backward(ctx, g_out, cell_bwd, g_gi, g_gh):
    """The backward's loop over time, last step first, of a layer whose state is h alone (GRU,
    RNN), beside its weight gradients from the gate gradients ``g_gi`` and ``g_gh`` (T, N, G);
    returns ``(grads, g_h0)``.  ``cell_bwd(t, g_h)`` fills step t of both and returns
    ``(g_gh[t], g_h_cell)``: the gradient that goes back through W_hh, and the part of h's
    gradient that bypasses it (or None)."""
    be, grad = ctx.backend, {"h": 0}
    x, w_ih, w_hh, h_prev, cells = ctx.saved
    order = time_spans(be, len(cells))[::-1]
    grads = _Grads(be, x, w_ih, ctx.needs_input_grad[0], order)

    def loop(lo, hi):
        for t in reversed(range(lo, hi)):
            into_cell, past = _split_carry(ctx.mask, t, g_out[t] + grad["h"])
            g_gh, g_h_cell = cell_bwd(t, into_cell)
            grad["h"] = be.matmul(g_gh, w_hh)
            if g_h_cell is not None:
                grad["h"] = grad["h"] + g_h_cell
            if past is not None:
                grad["h"] = grad["h"] + past

    pipeline(be, order, loop, grads.parts(g_gi, g_gh, h_prev), share=True)
    g_h0 = be.xp.zeros(g_out.shape[1:], g_out.dtype) if isinstance(grad["h"], int) else grad["h"]
    return grads, g_h0


class GRUSequence(Function):
    """(x (T, N, F), w_ih (3H, F)[, b_ih], h0 (N, H), w_hh (3H, H)[, b_hh]) -> h (T, N, H) for
    every step, with ``bias=`` saying whether the two biases are given."""

    @staticmethod
    def forward(ctx, *arrays, bias=True, mask=None):
        be = ctx.backend
        x, w_ih, b_ih, (h0,), w_hh, b_hh = _layer_arrays(arrays, 1, bias)
        out, h_prev, cells = _one_state_loop(
            be, x, w_ih, b_ih, h0, w_hh, lambda gi, h, w_hh_t: be.gru_cell_fwd(
                gi, _recurrent_gemm(be, h, w_hh_t, b_hh), h), mask)
        ctx.mask, ctx.bias = mask, bias
        ctx.save_for_backward(x, w_ih, w_hh, h_prev, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        _, _, w_hh, h_prev, cells = ctx.saved
        g_gi = xp.empty(h_prev.shape[:2] + (w_hh.shape[0],), g_out.dtype)
        g_gh = xp.empty_like(g_gi)

        def cell_bwd(t, g_h):
            g_gi[t], g_gh[t], g_h_cell = be.gru_cell_bwd(g_h, cells[t])
            return g_gh[t], g_h_cell

        grads, g_h0 = _one_state_backward(ctx, g_out, cell_bwd, g_gi, g_gh)
        return grads.result(ctx.bias, (g_h0,))


class RNNSequence(Function):
    """(x (T, N, F), w_ih (H, F)[, b_ih], h0 (N, H), w_hh (H, H)[, b_hh]) -> h (T, N, H) of an
    Elman RNN, tanh or (``relu=True``) ReLU, with ``bias=`` saying whether the biases are given."""

    @staticmethod
    def forward(ctx, *arrays, bias=True, mask=None, relu=False):
        be = ctx.backend
        x, w_ih, b_ih, (h0,), w_hh, b_hh = _layer_arrays(arrays, 1, bias)
        # the cell sees gi + gh only, so both biases join the input projection (as the LSTM's)
        out, h_prev, cells = _one_state_loop(
            be, x, w_ih, None if b_ih is None else b_ih + b_hh, h0, w_hh,
            lambda gi, h, w_hh_t: be.rnn_cell_fwd(gi, _recurrent_gemm(be, h, w_hh_t, None), relu), mask)
        ctx.mask, ctx.bias, ctx.relu = mask, bias, relu
        ctx.save_for_backward(x, w_ih, w_hh, h_prev, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        _, _, w_hh, h_prev, cells = ctx.saved
        g_pre = xp.empty(h_prev.shape, g_out.dtype)

        def cell_bwd(t, g_h):
            g_pre[t] = be.rnn_cell_bwd(g_h, cells[t], ctx.relu)
            return g_pre[t], None

        # gi and gh enter as a sum: both sides see g_pre
        grads, g_h0 = _one_state_backward(ctx, g_out, cell_bwd, g_pre, g_pre)
        if ctx.bias:
            grads.sums["b_hh"] = grads.sums["b_ih"].copy()  # one array for two parameters' grads
        return grads.result(ctx.bias, (g_h0,))


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
