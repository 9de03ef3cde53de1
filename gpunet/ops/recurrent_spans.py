"""The machinery of the sequence ops (``recurrent.py``): the spans of time steps a layer's loop
and its products meet at, the two-thread ``pipeline`` that runs them, and ``_Grads``, which
sums a layer's parameter gradients span by span in a fixed order whichever thread forms them.

Example:
    >>> spans(12, chunk=4, first=2)
    [(0, 2), (2, 6), (6, 10), (10, 12)]
"""
from __future__ import annotations

import itertools
import threading


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
