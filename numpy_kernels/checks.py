"""Input range checks on NumPy, with the cuda kernel's contract: set ``flags[slot]`` on a bad value.

Example:
    >>> flags = np.zeros(2, np.int32)
    >>> flag_outside_range(np.array([0.5, 1.5]), 0.0, 1.0, flags, 1)
    >>> flags.tolist()
    [0, 1]
"""
from __future__ import annotations

import numpy as np


def flag_outside_range(array, lo, hi, flags, slot):
    """``flags[slot] = 1`` when some element of ``array`` is outside ``[lo, hi]`` or NaN."""
    if not 0 <= slot < flags.shape[0]:
        raise ValueError(f"flag_outside_range: slot {slot} is outside flags of shape {flags.shape}")
    if array.size and not (array.min() >= lo and array.max() <= hi):
        flags[slot] = 1
