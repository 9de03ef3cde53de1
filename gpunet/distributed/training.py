"""What ``gn.train.fit`` asks of a data-parallel job: is one running, sums of epoch totals over
ranks, and rank 0's decisions shared with the others. Nothing here imports mpi4py: without
``gn.distributed.init()`` in a job of more than one process, ``active()`` is None and fit runs
as in one process.

Example:
    >>> comm = active()                 # None in a one-process run
"""
from __future__ import annotations

import math

import numpy as np

from .. import backends
from . import comm as _comm

__all__ = ["active", "sum_over_ranks", "sum_totals", "share_decision"]


def active():
    """The communicator of a running multi-process job, else None."""
    if not _comm.is_initialized():
        return None
    c = _comm.get_communicator()
    return c if c.size > 1 else None


def sum_over_ranks(comm, values):
    """Host floats summed over all ranks (one float64 all-reduce), as a list.

    Example:
        >>> sum_over_ranks(comm, [2.5, 30, 32])     # one process: the values themselves
        [2.5, 30.0, 32.0]
    """
    host = np.array([float(v) for v in values], dtype=np.float64)
    comm.allreduce_array(host, backends.backend("numpy"), "sum")
    return [float(v) for v in host]


def sum_totals(comm, loss_sum, correct, n, be):
    """An epoch's (loss sum, correct count or None, sample count), each a backend scalar or
    number, summed over all ranks as host floats."""
    host = [float(be.to_host(v)) if be is not None and be.is_array(v) else float(v)
            for v in (loss_sum, math.nan if correct is None else correct, n)]
    loss_sum, correct, n = sum_over_ranks(comm, host)
    return loss_sum, None if math.isnan(correct) else correct, n


def share_decision(comm, flag):
    """Rank 0's ``flag`` (a bool), on every rank."""
    host = np.array([1 if flag else 0], dtype=np.int64)
    comm.broadcast_array(host, backends.backend("numpy"), root=0)
    return bool(host[0])
