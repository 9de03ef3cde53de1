"""NCCL collectives on CuPy device arrays (``cupy.cuda.nccl``): the only file of
``gpunet.distributed`` that imports CuPy, and only when a cuda tensor is first reduced.

Rank 0 makes the NCCL unique id, MPI broadcasts it, and each rank opens an
``NcclCommunicator`` on the GPU of its local rank. Every call is queued on CuPy's current
stream, like the kernels, so a step never waits for the host.

``create(comm)`` (under an MPI launch) opens the transport or says why not; the reason alone:

Example:
    >>> why_not_nccl(be)                       # be: the numpy backend here
    'the numpy backend keeps arrays in host memory'
"""
from __future__ import annotations

import numpy as np

__all__ = ["create", "use_device", "NcclTransport"]

_DTYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
           "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16",
           "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}


def why_not_nccl(be):
    """None when NCCL can carry arrays of backend ``be`` here, else the reason in words."""
    if be.name != "cuda":
        return f"the {be.name} backend keeps arrays in host memory"
    if getattr(be, "simulated", False):
        return ("the cuda backend runs in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), whose "
                "arrays live in host memory")
    try:
        from cupy.cuda import nccl
    except Exception as exc:  # noqa: BLE001 - any import failure means: no NCCL
        return f"cupy.cuda.nccl cannot be imported ({type(exc).__name__}: {exc})"
    if not getattr(nccl, "available", False):
        return "CuPy was built or installed without NCCL (pip install nvidia-nccl-cu12)"
    return None


def use_device(local_rank):
    """Make GPU ``local_rank % device count`` current for this process (one GPU per local rank);
    nothing where CuPy is missing or sees no GPU."""
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: nothing to pin
        return
    if count:
        cupy.cuda.Device(local_rank % count).use()


def create(comm, be=None):
    """``(NcclTransport, None)`` when NCCL starts here, else ``(None, reason)``.

    Collective over ``comm``: rank 0's unique id is broadcast over MPI whenever this rank can
    use NCCL; the caller agrees with the other ranks before using the result.
    """
    from .. import backends

    be = be or backends.backend("cuda")
    reason = why_not_nccl(be)
    ok_everywhere = comm.mpi.allreduce(0 if reason else 1, op=_mpi_min())
    if reason or not ok_everywhere:
        return None, reason
    try:
        return NcclTransport(comm), None
    except Exception as exc:  # noqa: BLE001 - NCCL init errors become a logged fallback
        return None, f"NCCL failed to start ({type(exc).__name__}: {exc})"


def _mpi_min():
    from mpi4py import MPI
    return MPI.MIN


class NcclTransport:
    """One NCCL communicator over all ranks; arrays are CuPy arrays on this rank's GPU."""

    def __init__(self, comm):
        import cupy
        from cupy.cuda import nccl

        self._cupy, self._nccl, self.size = cupy, nccl, comm.size
        uid = nccl.get_unique_id() if comm.rank == 0 else None
        uid = comm.mpi.bcast(uid, root=0)  # a tuple of ints: the only thing MPI carries here
        self._comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)

    def _args(self, array):
        if not array.flags.c_contiguous:
            raise ValueError(f"NCCL needs a contiguous array, got shape {tuple(array.shape)} with strides "
                             f"{array.strides}")
        name = _DTYPES.get(np.dtype(array.dtype).name)
        if name is None:
            raise TypeError(f"NCCL cannot carry dtype {array.dtype}")
        return getattr(self._nccl, name), self._cupy.cuda.get_current_stream().ptr

    def allreduce(self, array):
        dtype, stream = self._args(array)
        self._comm.allReduce(array.data.ptr, array.data.ptr, array.size, dtype, self._nccl.NCCL_SUM, stream)

    def broadcast(self, array, root):
        dtype, stream = self._args(array)
        self._comm.broadcast(array.data.ptr, array.data.ptr, array.size, dtype, root, stream)

    def allgather(self, array):
        dtype, stream = self._args(array)
        out = self._cupy.empty((self.size,) + array.shape, array.dtype)
        self._comm.allGather(array.data.ptr, out.data.ptr, array.size, dtype, stream)
        return out
