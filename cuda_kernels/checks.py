"""Input checks done on the device, so a training step never waits for the host to look.

``range_check_kernel`` sets ``flags[slot] = 1`` when any element of an array lies outside
``[lo, hi]`` (NaN counts as outside). The backend reads the flags once, at the next moment a
value is read back anyway (``.item()``, ``.numpy()``, a synchronise), and raises there: the
CUDA analogue of a device-side assert, without a host round trip per call.

Example:
    >>> from cuda_kernels import checks                            # doctest: +SKIP
    >>> checks.flag_outside_range(p, 0.0, 1.0, flags, slot=1)      # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import _launch

FLAG_SLOTS = 16
BAD_LABEL_SLOT = 0  # set by the softmax-CE kernel for a label outside [0, C)
_device_state = {}


def device_flags():
    """The int32 array of ``FLAG_SLOTS`` error flags that kernels set (1) on the device; the
    backend reads them at the next value read (``read_and_clear_flags``)."""
    if "flags" not in _device_state:
        _device_state["flags"] = _launch.xp.zeros(FLAG_SLOTS, dtype=np.int32)
    return _device_state["flags"]


def reduction_ticket():
    """The 1-element int32 block counter of the loss kernel's last-block reduction on CuPy's
    current stream (each launch leaves it at 0 for the next).  One per stream: two launches
    in flight on two streams would otherwise count each other's blocks.  A stream's first
    ticket is allocated on its first use (the default stream's when the backend is made)."""
    key = ("ticket", _launch.stream_key())
    if key not in _device_state:
        _device_state[key] = _launch.xp.zeros(1, dtype=np.int32)
    return _device_state[key]


SPLIT_TICKETS = 1024  # per stream; a reduction over more outputs than this grows the array


def split_tickets(count):
    """The int32 counters (at least ``count``, all 0 between launches) of the split reductions
    on CuPy's current stream: the last of a channel's blocks to finish, by its ticket, adds the
    blocks' partial sums in a fixed order and sets the counter back to 0."""
    key = ("split", _launch.stream_key())
    tickets = _device_state.get(key)
    if tickets is None or tickets.shape[0] < count:
        tickets = _device_state[key] = _launch.xp.zeros(max(count, SPLIT_TICKETS), dtype=np.int32)
    return tickets


def split_reduction(rows, cols, dtype, slots):
    """``(splits, per, partial, tickets)`` of a split reduction over ``rows`` rows into ``cols``
    outputs: the number of splits (a grid's y extent) of about ``per`` rows each, their partial
    sums (splits, cols), uninitialised, and the stream's tickets for ``slots`` channels or tiles.

    Example:
        >>> splits, per, partial, tickets = split_reduction(64, 6, np.float32, 6)   # doctest: +SKIP
    """
    splits, per = _launch.splits_for(rows)
    return splits, per, _launch.xp.empty((splits, cols), dtype), split_tickets(slots)


def read_and_clear_flags():
    """A host copy of the flags (waits for queued work on a GPU); clears those that were set."""
    flags = device_flags()
    host = np.array(flags) if _launch.SIMULATOR else flags.get()
    if host.any():
        flags[...] = 0
    return host


@_launch.cached_jit
def range_check_kernel(a, lo, hi, flags, slot):
    """flags[slot] = 1 if some a[i] is not in [lo, hi]; every writer stores the same 1."""
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        v = a[i]
        if not (v >= lo and v <= hi):
            flags[slot] = 1


def flag_outside_range(array, lo, hi, flags, slot):
    """Launch the check of ``array`` against ``[lo, hi]`` into ``flags[slot]`` (int32 array).

    Example:
        >>> flag_outside_range(xp.asarray([0.5, 1.5]), 0.0, 1.0, flags, 1)   # doctest: +SKIP
        >>> int(flags[1])                                                    # doctest: +SKIP
        1
    """
    if not 0 <= slot < flags.shape[0]:
        raise ValueError(f"flag_outside_range: slot {slot} is outside flags of shape {flags.shape}")
    a = _launch.contiguous(array).reshape(-1)
    if a.size == 0:
        return
    _launch.launch(range_check_kernel, _launch.blocks_for(a.size), _launch.TPB,
                   a, _launch.scalar(lo, a.dtype), _launch.scalar(hi, a.dtype), flags, int(slot))
