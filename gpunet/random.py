"""Seeding: ``gn.manual_seed(n)`` makes a run repeatable (bit for bit on the NumPy backend).

Weights are initialised on the host from one NumPy generator and then moved, so the
same seed gives the same initial model on every backend.

Example:
    >>> gn.manual_seed(0)
    >>> w = gn.nn.init.kaiming_uniform((6, 1, 5, 5))
"""
from __future__ import annotations

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
    """The generator used for weight initialisation, shuffling and splits."""
    return _host


