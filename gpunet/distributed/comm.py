"""The communicator: rank, size and collectives on backend arrays, over MPI or NCCL.

``init()`` inside ``mpiexec -n K`` wraps mpi4py's ``COMM_WORLD``. NumPy-backend arrays are
reduced in place by MPI's buffer calls (``Allreduce(IN_PLACE, array)``: no pickling, no copy
when the array is contiguous). cuda-backend arrays go through NCCL on the current stream
(``nccl.py``); where NCCL cannot run, they go through MPI on host copies, and one line is
logged saying why. Outside an MPI launch ``init()`` returns a one-process communicator whose
collectives do nothing (mean divides by 1), so the same script runs either way.

Example:
    >>> comm = gn.distributed.init()
    >>> comm.rank, comm.size
    (0, 1)
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback

import numpy as np

from .. import backends
from . import launch

ABORT_GRACE_S = 0.5  # before MPI_Abort, for the launcher to forward this rank's last output

__all__ = ["Communicator", "ReduceOp", "init", "get_communicator", "is_initialized"]

log = logging.getLogger("gpunet")
_default = None


class ReduceOp:
    """Reduction names for ``all_reduce`` (PyTorch's ``ReduceOp.SUM`` / ``ReduceOp.AVG``)."""

    SUM = "sum"
    AVG = "mean"


_OPS = {"sum": "sum", "mean": "mean", "avg": "mean"}


def _op_name(op):
    name = _OPS.get(op.lower() if isinstance(op, str) else op)
    if name is None:
        raise ValueError(f"all_reduce: op must be ReduceOp.SUM ('sum') or ReduceOp.AVG ('mean'), got {op!r}")
    return name


class Communicator:
    """Rank, size and collectives of a data-parallel job; made by :func:`init`.

    Array methods take a backend array and its backend and work in place.

    Example:
        >>> comm = gn.distributed.init()
        >>> comm.rank, comm.size          # one process: no MPI launcher
        (0, 1)
        >>> comm.allreduce_array(be.asarray(np.ones(3)), be, "mean")
        array([1., 1., 1.])
    """

    def __init__(self, mpi_comm=None, local_rank=0):
        self.mpi = mpi_comm
        self.rank = 0 if mpi_comm is None else mpi_comm.Get_rank()
        self.size = 1 if mpi_comm is None else mpi_comm.Get_size()
        self.local_rank = int(local_rank)
        self._device_transport = None  # for cuda arrays: an NCCL transport or "mpi" (decided once)
        self.fallback_reason = None

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"

    # --- transport choice -------------------------------------------------------------
    def transport_for(self, be):
        """``"none"`` (one process), ``"mpi"`` or ``"nccl"``: how arrays of backend ``be`` travel."""
        if self.size == 1:
            return "none"
        if be.name != "cuda":
            return "mpi"
        if self._device_transport is None:
            from . import nccl  # cupy is imported there, and only there, lazily

            transport, reason = nccl.create(self, be)  # agreed by all ranks: none waits alone
            if transport is None:
                self.fallback_reason = reason or "NCCL cannot start on another rank"
                if self.rank == 0:  # one line for the whole job
                    log.warning("gpunet.distributed: NCCL unavailable (%s); cuda tensors are reduced "
                                "by MPI through host memory", self.fallback_reason)
                transport = "mpi"
            self._device_transport = transport
        return "mpi" if self._device_transport == "mpi" else "nccl"

    # --- collectives on arrays ----------------------------------------------------------
    def allreduce_array(self, array, be, op="sum"):
        """Sum (or mean) ``array`` over all ranks, in place; returns ``array``."""
        op = _op_name(op)
        if op == "mean" and array.dtype.kind not in "fc":
            raise TypeError(f"all_reduce: op='mean' needs a floating-point tensor, got {array.dtype}")
        how = self.transport_for(be)
        if how == "nccl":
            _contiguous(array, self._device_transport.allreduce)
        elif how == "mpi":
            self._through_host(array, be, lambda host: self.mpi.Allreduce(_in_place(), host))
        if op == "mean" and self.size > 1:
            array /= self.size
        return array

    def broadcast_array(self, array, be, root=0):
        """Overwrite ``array`` on every rank with rank ``root``'s, in place; returns ``array``."""
        self._check_root(root)
        how = self.transport_for(be)
        if how == "nccl":
            _contiguous(array, lambda a: self._device_transport.broadcast(a, root))
        elif how == "mpi":
            self._through_host(array, be, lambda host: self.mpi.Bcast(host, root=root))
        return array

    def allgather_array(self, array, be):
        """A new array (size, *array.shape) holding every rank's ``array`` in rank order."""
        how = self.transport_for(be)
        if how == "nccl":
            return self._device_transport.allgather(array)
        if how == "none":
            return array[None].copy()
        host = np.ascontiguousarray(be.to_host(array))
        out = np.empty((self.size,) + host.shape, host.dtype)
        self.mpi.Allgather(host, out)
        return be.asarray(out)

    def barrier(self):
        """Wait until every rank has reached this call."""
        if self.mpi is not None:
            self.mpi.Barrier()

    def abort(self, code=1):
        """End every process of the job now (MPI_Abort); a one-process job just exits."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.mpi is not None and self.size > 1:
            # NOTE: MPI_Abort makes the launcher kill every rank at once; output still in its
            # forwarding pipes can be dropped (seen once in CI: the failing rank's message was
            # lost). A moment's grace lets the launcher relay the message first.
            time.sleep(ABORT_GRACE_S)
            self.mpi.Abort(code)
        raise SystemExit(code)

    def _check_root(self, root):
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < self.size:
            raise ValueError(f"broadcast: src must be a rank in [0, {self.size}), got {root!r}")

    def _through_host(self, array, be, call):
        # NumPy arrays that are contiguous are handed to MPI as they are (no copy).
        if be.name == "numpy" and array.flags.c_contiguous:
            call(array)
            return
        host = np.array(be.to_host(array), order="C", copy=True)
        call(host)
        array[...] = be.asarray(host)


def _contiguous(array, call):
    """``call(array)`` on a contiguous array: ``array`` itself, or a copy written back."""
    if array.flags.c_contiguous:
        call(array)
        return
    dense = array.copy(order="C")
    call(dense)
    array[...] = dense


def _in_place():
    from mpi4py import MPI
    return MPI.IN_PLACE


def _install_abort_hook(comm):
    """An exception left uncaught on any rank prints its rank and aborts the whole job, as
    ChainerMN's ``add_hook_to_excepthook`` does: without it the other ranks wait forever."""
    def hook(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"gpunet.distributed: rank {comm.rank} of {comm.size} failed; aborting the "
                         f"job:\n{text}")
        comm.abort(1)

    sys.excepthook = hook


def init(backend=None):
    """Join the job (mpi4py's ``COMM_WORLD`` under ``mpiexec``) and return its Communicator.

    Outside an MPI launch this is a one-process communicator and mpi4py is not imported.
    Unless the backend (``backend=``, else the default) is numpy, each process makes the GPU of
    its local rank current: call ``init()`` before creating cuda tensors. Calling ``init()``
    again returns the same communicator.

    Example:
        >>> comm = gn.distributed.init()       # under: mpiexec -n 2 python train.py
        >>> comm.rank, comm.size
        (0, 1)
    """
    global _default
    if _default is not None:
        return _default
    if not launch.launched_by_mpi():
        _default = Communicator(None, 0)
        return _default
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"gn.distributed.init(): this process was started by mpiexec but mpi4py "
                          f"cannot be imported ({exc}); pip install 'gpunet[distributed]'") from None
    comm = Communicator(MPI.COMM_WORLD, launch.local_rank())
    if comm.size > 1:
        _install_abort_hook(comm)
    if backend is None and backends._current is None:
        backend = os.environ.get("GPUNET_BACKEND", "auto")
    name = backend if isinstance(backend, str) else (backend or backends._current).name
    pin_local_gpu(name)
    _default = comm
    return comm


def pin_local_gpu(backend_name):
    """Make GPU ``local_rank % GPUs`` current, before the cuda backend allocates anything.

    Does nothing for the numpy backend, in the simulator, or where CuPy sees no GPU (the
    backend's own selection then says why). Example:
        >>> pin_local_gpu("cuda")         # under mpiexec, before gn.set_backend("cuda")
    """
    if backend_name in ("numpy", "cpu") or backends.simulator_on():
        return
    from . import nccl

    nccl.use_device(launch.local_rank())


def get_communicator():
    """The communicator made by :func:`init`; RuntimeError before it."""
    if _default is None:
        raise RuntimeError("gpunet.distributed: call gn.distributed.init() first")
    return _default


def is_initialized():
    """True after :func:`init` (PyTorch's ``dist.is_initialized``)."""
    return _default is not None
