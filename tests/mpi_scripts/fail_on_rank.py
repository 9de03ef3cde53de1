"""Run by tests/test_distributed_mpi.py: rank 1 raises mid-loop while rank 0 waits in all-reduce."""
import numpy as np

import gpunet as gn

comm = gn.distributed.init()
t = gn.tensor(np.ones(3))
for step in range(10**6):
    gn.distributed.all_reduce(t)
    if step == 20 and comm.rank == 1:
        raise RuntimeError("deliberate failure on rank 1")
