"""Run by tests/test_distributed_mpi.py under ``mpiexec -n 2``: every collective, checked in place."""
import sys

import numpy as np

import gpunet as gn
import gpunet.distributed as dist

backend = sys.argv[1] if len(sys.argv) > 1 else "numpy"
gn.set_backend(backend)
comm = dist.init()
r, k = dist.get_rank(), dist.get_world_size()
assert k == 2, k

t = gn.tensor(np.arange(6, dtype=np.float64).reshape(2, 3) + 10 * r)
before = t._data
dist.all_reduce(t)
assert t._data is before, "all_reduce must work in place"
np.testing.assert_array_equal(t.numpy(), 2 * np.arange(6).reshape(2, 3) + 10)

m = gn.tensor(np.full(4, float(r + 1), np.float32))
dist.all_reduce(m, op=dist.ReduceOp.AVG)
np.testing.assert_array_equal(m.numpy(), np.full(4, 1.5, np.float32))

strided = gn.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) * (r + 1)).T  # not contiguous
dist.all_reduce(strided, op="sum")
np.testing.assert_array_equal(strided.numpy(), 3 * np.arange(12, dtype=np.float32).reshape(3, 4).T)

b = gn.tensor(np.full(5, float(r), np.float32))
dist.broadcast(b, src=1)
np.testing.assert_array_equal(b.numpy(), np.ones(5, np.float32))

parts = [gn.zeros(2, dtype="int64") for _ in range(k)]
dist.all_gather(parts, gn.tensor(np.array([r, 7 * r], dtype=np.int64)))
np.testing.assert_array_equal(np.stack([p.numpy() for p in parts]), [[0, 0], [1, 7]])

dist.barrier()
print(f"rank {r}: collectives ok on {backend} via {comm.transport_for(t.backend)}", flush=True)
