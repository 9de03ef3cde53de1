"""``gn.autograd.detect_anomaly()``: find the first op that produced NaN or inf, as PyTorch's does.

Inside the block every op's forward output and every gradient its backward returns is checked;
the first non-finite one raises ``RuntimeError`` naming the op, the shapes, and where in your
code the op was called.  The checks read values back (a synchronisation on a GPU), so use it to
debug, not to train.

Example:
    >>> with gn.autograd.detect_anomaly():
    ...     loss = gn.tensor([1.0, -1.0]).log().sum()
    Traceback (most recent call last):
    RuntimeError: detect_anomaly: Log returned nan values in its forward output (shape (2,)). ...
"""
from __future__ import annotations

import contextlib
import os
import threading
import traceback

import numpy as np

_state = threading.local()


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` (per thread)."""
    return getattr(_state, "enabled", False)


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward output and backward gradient for NaN/inf while the block runs."""
    previous = is_anomaly_enabled()
    _state.enabled = True
    try:
        yield
    finally:
        _state.enabled = previous


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly detection on or off for this thread (as ``torch.autograd.set_detect_anomaly``)."""
    _state.enabled = bool(mode)


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def call_site() -> str:
    """The user's line that called the op (the innermost frame outside gpunet)."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE + os.sep):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}: {frame.line}'
    return "(called from inside gpunet)"


def check(array, backend, what, op, where=""):
    """Raise RuntimeError if ``array`` (a float backend array) holds NaN or inf."""
    if array is None or array.dtype.kind != "f":
        return
    host = backend.to_host(array)
    if np.isfinite(host).all():
        return
    kind = "nan" if np.isnan(host).any() else "inf"
    raise RuntimeError(f"detect_anomaly: {op} returned {kind} values in its {what} "
                       f"(shape {tuple(host.shape)}). The op was called at: {where or call_site()}")
