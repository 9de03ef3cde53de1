"""``gn.profiler.profile()``: what each backend primitive costs, per call site of the backend.

Inside the block every primitive of the backends in use (conv2d_fwd, relu_bwd, matmul, …) is
counted and timed.  On the ``cuda`` backend it also counts the Numba kernel launches and the
GEMMs each primitive makes, and on a real GPU it times the primitive on the device with CUDA
events (host time per launch is reported beside it); on the NumPy backend the time is the wall
time of the call, worker threads included.

Example:
    >>> with gn.profiler.profile() as prof:
    ...     loss = loss_fn(model(x), y); loss.backward(); opt.step()
    >>> print(prof.table())                    # doctest: +ELLIPSIS
    primitive                           calls  launches  gemms   host ms
    ...
    numpy.matmul                            3         0      0 ...
    ...
    >>> prof.totals()["calls"]                 # launches and GEMMs are counted on cuda only
    11
"""
from __future__ import annotations

import collections
import contextlib
import threading
import time

from . import backends
from .backends import primitives

PRIMITIVES = primitives.NAMES  # every primitive the backends bind, from the one declaration

_local = threading.local()


class Profile:
    """Per-primitive statistics gathered by :func:`profile`."""

    def __init__(self):
        self.rows = collections.defaultdict(
            lambda: {"calls": 0, "host_s": 0.0, "device_s": 0.0, "launches": 0, "gemms": 0,
                     "kernels": collections.Counter()})
        self._events = []  # (row, start event, end event) on a real GPU

    def _record_launch(self, kernel):
        row = getattr(_local, "current", None)
        if row is not None:
            self.rows[row]["launches"] += 1
            fn = getattr(kernel, "py_func", None) or getattr(kernel, "fn", None) or kernel
            self.rows[row]["kernels"][getattr(fn, "__name__", "?")] += 1

    def _record_gemm(self):
        row = getattr(_local, "current", None)
        if row is not None:
            self.rows[row]["gemms"] += 1

    def totals(self) -> dict:
        """Sums over all primitives: calls, launches, gemms, host and device seconds."""
        keys = ("calls", "launches", "gemms", "host_s", "device_s")
        return {k: sum(r[k] for r in self.rows.values()) for k in keys}

    def key_averages(self):
        """PyTorch's spelling: ``prof.key_averages().table()`` gives the same table."""
        return self

    def table(self, sort_by=None, row_limit=100) -> str:
        """One line per primitive, most expensive first (or by ``sort_by``: a column name such
        as "calls", "launches", "gemms", "host_s", "device_s"); at most ``row_limit`` rows
        (100 by default, as in PyTorch; -1 for all)."""
        device = any(r["device_s"] for r in self.rows.values())
        head = (f"{'primitive':<34}{'calls':>7}{'launches':>10}{'gemms':>7}{'host ms':>10}"
                + (f"{'device ms':>11}{'host us/launch':>16}" if device else ""))
        lines = [head, "-" * len(head)]
        key = sort_by or ("device_s" if device else "host_s")
        if key not in ("calls", "launches", "gemms", "host_s", "device_s"):
            raise ValueError(f"table: sort_by must be calls, launches, gemms, host_s or device_s, "
                             f"got {sort_by!r}")
        ordered = sorted(self.rows.items(), key=lambda kv: -kv[1][key])
        for name, r in ordered if row_limit < 0 else ordered[:row_limit]:
            line = (f"{name:<34}{r['calls']:>7}{r['launches']:>10}{r['gemms']:>7}"
                    f"{r['host_s'] * 1e3:>10.3f}")
            if device:
                per = r["host_s"] / max(1, r["launches"] + r["gemms"]) * 1e6
                line += f"{r['device_s'] * 1e3:>11.3f}{per:>16.1f}"
            lines.append(line)
        t = self.totals()
        lines.append(f"{'total':<34}{t['calls']:>7}{t['launches']:>10}{t['gemms']:>7}"
                     f"{t['host_s'] * 1e3:>10.3f}" + (f"{t['device_s'] * 1e3:>11.3f}" if device else ""))
        return "\n".join(lines)

    def _finish(self):
        for row, timer in self._events:
            self.rows[row]["device_s"] += timer.seconds()
        self._events.clear()


def _wrap(prof, be, name, fn):
    def timed(*args, **kwargs):
        outer = getattr(_local, "current", None)
        _local.current = f"{be.name}.{name}" if outer is None else outer
        timer = be.timer() if outer is None else None  # None where host time is device time
        if timer is not None:
            timer.start()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if outer is None:
                row = prof.rows[_local.current]
                row["calls"] += 1
                row["host_s"] += time.perf_counter() - t0
                if timer is not None:
                    timer.stop()
                    prof._events.append((_local.current, timer))
            _local.current = outer

    return timed


@contextlib.contextmanager
def profile():
    """Count and time every backend primitive (and cuda launches and GEMMs) in the block."""
    prof = Profile()
    patched = []
    for be in list(backends._instances.values()):
        for name in PRIMITIVES:
            fn = getattr(be, name, None)
            if fn is not None:
                had = name in vars(be)
                patched.append((be, name, fn if had else None))
                setattr(be, name, _wrap(prof, be, name, fn))
    launch_mod = _launch_module()
    if launch_mod is not None:
        real_launch, real_gemm = launch_mod.launch, launch_mod.gemm

        def launch(kernel, *args):
            prof._record_launch(kernel)
            return real_launch(kernel, *args)

        def gemm(a, b):
            prof._record_gemm()
            return real_gemm(a, b)

        launch_mod.launch, launch_mod.gemm = launch, gemm
    try:
        yield prof
    finally:
        for be, name, original in reversed(patched):
            if original is None:
                delattr(be, name)  # back to the class's method
            else:
                setattr(be, name, original)
        if launch_mod is not None:
            launch_mod.launch, launch_mod.gemm = real_launch, real_gemm
        prof._finish()


def _launch_module():
    """The cuda backend's launch module (its ``launch`` and ``gemm``) once that backend has
    been created, else None."""
    cuda = backends._instances.get("cuda")
    return None if cuda is None else cuda.launcher
