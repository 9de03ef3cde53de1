"""Data-parallel training over processes and machines: MPI (mpi4py) on the CPU, NCCL on GPUs.

Start K processes with an MPI launcher; each calls ``init()``, wraps its model in
``DataParallel`` and reads its shard of the data through ``DistributedSampler``. mpi4py is
imported only by ``init()`` inside an MPI launch, CuPy only by the NCCL transport.

Example (``mpiexec -n 2 python train.py``):
    >>> import gpunet as gn
    >>> comm = gn.distributed.init()
    >>> model = gn.distributed.DataParallel(model)
    >>> sampler = gn.distributed.DistributedSampler(train_set)      # shuffle=True, seed=0
    >>> loader = gn.data.DataLoader(train_set, batch_size=32, sampler=sampler)
    >>> history = gn.train.fit(model, loss_fn, opt, loader, epochs=2, progress=False)  # calls sampler.set_epoch
    >>> len(history.train_loss)
    2
"""
from .collectives import all_gather, all_reduce, barrier, broadcast, get_rank, get_world_size
from .comm import Communicator, ReduceOp, get_communicator, init, is_initialized
from .data_parallel import DataParallel
from .launch import launched_by_mpi
from .sampler import DistributedSampler

__all__ = ["Communicator", "DataParallel", "DistributedSampler", "ReduceOp", "all_gather", "all_reduce",
           "barrier", "broadcast", "get_communicator", "get_rank", "get_world_size", "init",
           "is_initialized", "launched_by_mpi"]
