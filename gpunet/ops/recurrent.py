"""LSTM and GRU: one step's pointwise part (``LSTMCell``, ``GRUCell``) and a whole layer over
time (``LSTMSequence``, ``GRUSequence``), all on the backend's fused cell kernels.

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

import itertools
import threading

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


CHUNK_STEPS = 8  # time steps per span: (8 * N, F) products, long enough for a thread hand-off


FIRST_STEPS = 2  # the first span: what the forward loop waits for, and the backward's tail


def time_spans(backend, steps):
    """The spans a layer's loop and its products meet at: one span of all the steps where the
    backend runs thunks in turn (more would only add products and launches)."""
    return spans(steps) if backend.threaded_thunks and steps else [(0, steps)]


def spans(steps, chunk=CHUNK_STEPS, first=FIRST_STEPS):
    """``[(0, first), (first, first + chunk), … (…, steps)]``: the time steps in spans.  The
    first is short: the forward loop starts once its projection is done, and its weight
    gradients are what is left to do after the backward loop."""
    bounds = [0, *range(min(first, steps), steps, chunk), steps]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def pipeline(backend, order, first, second, share=False):
    """``first(lo, hi)`` for each span of ``order`` in turn; ``second(lo, hi)`` for each span in
    the same order once ``first`` has done it, on another thread where the backend has one.

    A layer's step t needs step t-1, so its loop over time runs on one core; the input
    projection of a span does not wait for the loop, and its weight gradients are ready once
    the backward loop has passed it, so one of them runs beside the loop (``first`` is the
    projection and ``second`` the loop going forwards; the loop and then the weight
    gradients going backwards).  With ``share``, ``second`` is a list of independent parts,
    each run once per span, and the thread of ``first`` takes the parts still left when it is
    done (the weight gradients lag the backward loop by a span).  A backend that runs thunks
    one after the other (cuda, a graph capture, one thread) runs all of ``first``, then all
    of ``second``: the same sums.

    Example:
        >>> done = []
        >>> spans(12, chunk=4, first=2)
        [(0, 2), (2, 6), (6, 10), (10, 12)]
        >>> pipeline(gn.get_backend(), spans(5, 2), lambda lo, hi: done.append(("a", lo)),
        ...          lambda lo, hi: done.append(("b", lo)))
        >>> [d for d in done if d[0] == "b"]
        [('b', 0), ('b', 2), ('b', 4)]
    """
    parts = list(second) if share else [second]
    tasks = [(span, part) for span in order for part in parts]
    claims = itertools.count()  # next() on a count is one bytecode: atomic under the GIL
    ready, state = threading.Condition(), {"done": 0, "failed": False}

    def run_tasks():
        for i in claims:
            if i >= len(tasks):
                return
            with ready:  # the task's span must be through first
                while state["done"] <= i // len(parts) and not state["failed"]:
                    ready.wait()
                if state["failed"]:
                    return
            span, part = tasks[i]
            part(*span)

    def run_first():
        try:
            for span in order:
                first(*span)
                with ready:
                    state["done"] += 1
                    ready.notify_all()
        finally:
            with ready:  # so that the other thread stops if first raised
                state["failed"] = state["done"] < len(order)
                ready.notify_all()
        if share:
            run_tasks()

    # concurrently claims run_first before run_tasks, so run_tasks never waits on its own thread
    backend.concurrently(run_first, run_tasks)


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


def _layer_arrays(arrays, n_states, bias):
    """(x, w_ih, b_ih, states, w_hh, b_hh) from a sequence op's inputs (biases None without)."""
    arrays = list(arrays)
    x, w_ih = arrays.pop(0), arrays.pop(0)
    b_ih = arrays.pop(0) if bias else None
    states = [arrays.pop(0) for _ in range(n_states)]
    return x, w_ih, b_ih, states, arrays[0], (arrays[1] if bias else None)


def _project(be, x, w_ih, bias, out):
    """``out[lo:hi] = x[lo:hi] W_ih^T (+ bias)`` for one span of time steps at a time."""
    def span(lo, hi):
        out[lo:hi] = be.matmul(x[lo:hi], w_ih.T)
        if bias is not None:
            out[lo:hi] += bias
    return span


class _Grads:
    """The parameter gradients of one layer, summed span by span in the order of ``order``
    whichever thread forms each span's part (the sums are the same on every backend)."""

    def __init__(self, be, x, w_ih, needs_x, order):
        self.be, self.x, self.w_ih, self.sums = be, x, w_ih, {}
        self.g_x = be.xp.empty(x.shape, x.dtype) if needs_x else None
        self.index = {lo: k for k, (lo, _) in enumerate(order)}
        self.pending, self.folded, self.lock = {}, {}, threading.Lock()

    def add(self, name, lo, value):
        with self.lock:  # fold in this part and any later ones that were waiting for it
            self.pending[name, self.index[lo]] = value
            k = self.folded.get(name, 0)
            while (name, k) in self.pending:
                part = self.pending.pop((name, k))
                self.sums[name] = part if k == 0 else self.sums[name] + part
                k += 1
            self.folded[name] = k

    def input_weights(self, g_gi):
        """Steps lo … hi-1's part of dL/dW_ih and dL/db_ih from the input gates' gradient."""
        def part(lo, hi):
            flat = g_gi[lo:hi].reshape(-1, g_gi.shape[-1])
            self.add("w_ih", lo, self.be.matmul(flat.T, self.x[lo:hi].reshape(-1, self.x.shape[-1])))
            self.add("b_ih", lo, flat.sum(axis=0))
        return part

    def input_grad(self, g_gi):
        """dL/dx of steps lo … hi-1 (nothing when x needs no gradient)."""
        def part(lo, hi):
            if self.g_x is not None:
                self.g_x[lo:hi] = self.be.matmul(g_gi[lo:hi], self.w_ih)
        return part

    def hidden_weights(self, g_gh, h_prev):
        """Steps lo … hi-1's part of dL/dW_hh and dL/db_hh: sum_t g_gh[t]^T h_prev[t]."""
        def part(lo, hi):
            flat = g_gh[lo:hi].reshape(-1, g_gh.shape[-1])
            self.add("w_hh", lo, self.be.matmul(flat.T, h_prev[lo:hi].reshape(-1, h_prev.shape[-1])))
            self.add("b_hh", lo, flat.sum(axis=0))
        return part

    def parts(self, g_gi, g_gh, h_prev):
        """The three independent parts of a span's gradients, largest first."""
        return [self.hidden_weights(g_gh, h_prev), self.input_weights(g_gi), self.input_grad(g_gi)]

    def result(self, bias, g_states):
        s = self.sums
        return (self.g_x, s["w_ih"], *([s["b_ih"]] if bias else []), *g_states, s["w_hh"],
                *([s["b_hh"]] if bias else []))


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


class GRUSequence(Function):
    """(x (T, N, F), w_ih (3H, F)[, b_ih], h0 (N, H), w_hh (3H, H)[, b_hh]) -> h (T, N, H) for
    every step, with ``bias=`` saying whether the two biases are given."""

    @staticmethod
    def forward(ctx, *arrays, bias=True, mask=None):
        be, xp = ctx.backend, ctx.backend.xp
        x, w_ih, b_ih, (h0,), w_hh, b_hh = _layer_arrays(arrays, 1, bias)
        steps = x.shape[0]
        out = xp.empty((steps,) + h0.shape, x.dtype)
        xw = xp.empty((steps, h0.shape[0], w_hh.shape[0]), x.dtype)
        h_prev = xp.empty_like(out)
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        cells, state = [], {"h": h0}

        def loop(lo, hi):
            for t in range(lo, hi):
                h = h_prev[t] = state["h"]
                h_new, saved = be.gru_cell_fwd(xw[t], _recurrent_gemm(be, h, w_hh_t, b_hh), h)
                cells.append(saved)
                state["h"] = out[t] = _carry(mask, t, h_new, h)

        pipeline(be, time_spans(be, steps), _project(be, x, w_ih, b_ih, xw), loop)
        ctx.mask, ctx.bias = mask, bias
        ctx.save_for_backward(x, w_ih, w_hh, h_prev, cells)
        return out

    @staticmethod
    def backward(ctx, g_out):
        be, xp = ctx.backend, ctx.backend.xp
        x, w_ih, w_hh, h_prev, cells = ctx.saved
        g_gi = xp.empty(h_prev.shape[:2] + (w_hh.shape[0],), g_out.dtype)
        g_gh = xp.empty_like(g_gi)
        order = time_spans(be, len(cells))[::-1]
        grad, grads = {"h": 0}, _Grads(be, x, w_ih, ctx.needs_input_grad[0], order)

        def loop(lo, hi):
            for t in reversed(range(lo, hi)):
                into_cell, past = _split_carry(ctx.mask, t, g_out[t] + grad["h"])
                g_gi[t], g_gh[t], g_h_cell = be.gru_cell_bwd(into_cell, cells[t])
                grad["h"] = be.matmul(g_gh[t], w_hh) + g_h_cell
                if past is not None:
                    grad["h"] = grad["h"] + past

        pipeline(be, order, loop, grads.parts(g_gi, g_gh, h_prev), share=True)
        g_h0 = xp.zeros(g_out.shape[1:], g_out.dtype) if isinstance(grad["h"], int) else grad["h"]
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
