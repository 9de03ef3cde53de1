"""Collectives on gpunet tensors, with PyTorch's ``torch.distributed`` signatures.

Each works in place on the tensor's own array (MPI on host buffers for the NumPy backend,
NCCL on device buffers for cuda) through the communicator made by ``gn.distributed.init()``.

Example:
    >>> comm = gn.distributed.init()
    >>> t = gn.tensor([1.0, 2.0])
    >>> gn.distributed.all_reduce(t, op=gn.distributed.ReduceOp.AVG)   # t now holds the mean
"""
from __future__ import annotations

from ..tensor import Tensor
from .comm import ReduceOp, get_communicator

__all__ = ["all_reduce", "broadcast", "all_gather", "barrier", "get_rank", "get_world_size"]


def _check(fn, name, tensor):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: {name} must be a gpunet Tensor, got {type(tensor).__name__}")
    return tensor


def all_reduce(tensor, op=ReduceOp.SUM):
    """Replace ``tensor`` on every rank by the sum (``ReduceOp.SUM``) or mean (``ReduceOp.AVG``,
    also ``"mean"``) over ranks; returns None, as PyTorch does.

    Example:
        >>> t = gn.tensor([float(comm.rank)])
        >>> all_reduce(t)            # on 2 ranks: t == [1.0] everywhere
    """
    _check("all_reduce", "tensor", tensor)
    get_communicator().allreduce_array(tensor._data, tensor.backend, op)


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` on every rank with rank ``src``'s values; returns None.

    Example:
        >>> weight = gn.tensor([float(comm.rank)])
        >>> broadcast(weight, src=0)      # every rank now holds rank 0's values
        >>> weight
        tensor([0.])
    """
    _check("broadcast", "tensor", tensor)
    get_communicator().broadcast_array(tensor._data, tensor.backend, src)


def all_gather(tensor_list, tensor):
    """Fill ``tensor_list`` (one tensor per rank, each shaped like ``tensor``) with every rank's
    ``tensor``, in rank order; returns None.

    Example:
        >>> parts = [gn.zeros(3) for _ in range(get_world_size())]
        >>> all_gather(parts, gn.ones(3) * get_rank())
    """
    _check("all_gather", "tensor", tensor)
    comm = get_communicator()
    if not isinstance(tensor_list, list) or len(tensor_list) != comm.size:
        got = len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of {comm.size} tensors (one per rank), "
                         f"got {got}")
    for k, out in enumerate(tensor_list):
        _check("all_gather", f"tensor_list[{k}]", out)
        if out.shape != tensor.shape or out.dtype != tensor.dtype or out.backend is not tensor.backend:
            raise ValueError(f"all_gather: tensor_list[{k}] is {out.dtype} {tuple(out.shape)} on {out.backend.name}; "
                             f"needs {tensor.dtype} {tuple(tensor.shape)} on {tensor.backend.name} like tensor")
    gathered = comm.allgather_array(tensor._data, tensor.backend)
    for k, out in enumerate(tensor_list):
        out._data[...] = gathered[k]


def barrier():
    """Wait for every rank (PyTorch's ``dist.barrier``)."""
    get_communicator().barrier()


def get_rank():
    """This process's rank (0 in a one-process job)."""
    return get_communicator().rank


def get_world_size():
    """The number of processes in the job."""
    return get_communicator().size
