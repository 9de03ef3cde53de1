"""Seeding: ``gn.manual_seed(n)`` makes a run repeatable (bit for bit on the NumPy backend).

Weights are initialised on the host from one NumPy generator and then moved, so the
same seed gives the same initial model on every backend.

Example:
    >>> gn.manual_seed(0)
    >>> w = gn.nn.init.kaiming_uniform((6, 1, 5, 5))
"""
from __future__ import annotations

import json

import numpy as np

from . import backends

_host = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the host generator and every backend's generator."""
    global _host
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _host = np.random.default_rng(int(seed))
    backends.seed_all(seed)


def host_rng() -> np.random.Generator:
    """The generator used for weight initialisation, shuffling and splits (host draws:
    refused inside a CUDA-graph capture, whose replays could not redraw them)."""
    from . import graph_capture

    if graph_capture.is_capturing():
        raise graph_capture.CaptureError(
            "gn.cuda.graph: a draw from the host generator (gn.randint, randperm, uniform_, "
            "normal_, weight init) inside the captured region would repeat at every replay; "
            "use gn.rand / gn.randn (the backend's generator) or draw before the capture")
    return _host




def get_rng_state():
    """Every generator's state (the host's and each backend's) as a uint8 Tensor, PyTorch's
    ``torch.get_rng_state()``: pass it to :func:`set_rng_state` to draw the same numbers again.

    Example:
        >>> state = gn.get_rng_state()
        >>> a = gn.rand(3); gn.set_rng_state(state)
        >>> bool((gn.rand(3) == a).all()), state.dtype
        (True, dtype('uint8'))
    """
    from .tensor import Tensor

    state = {"host": _host.bit_generator.state,
             "backends": {name: be.rng_state() for name, be in backends._instances.items()}}
    raw = json.dumps(state).encode()
    return Tensor._wrap(np.frombuffer(raw, np.uint8).copy(), backends.backend("numpy"))


def set_rng_state(new_state) -> None:
    """Restore the generators from :func:`get_rng_state` (PyTorch's ``torch.set_rng_state``)."""
    from .tensor import Tensor

    raw = new_state.numpy() if isinstance(new_state, Tensor) else np.asarray(new_state)
    try:
        state = json.loads(raw.astype(np.uint8).tobytes().decode())
        host = state["host"]
        saved = state["backends"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError("set_rng_state: expected the uint8 tensor gn.get_rng_state() returns, "
                         f"got {type(new_state).__name__} of {raw.size} values") from None
    _host.bit_generator.state = host
    for name, value in saved.items():
        backends.backend(name).set_rng_state(value)
