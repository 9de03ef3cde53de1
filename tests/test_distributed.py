"""gpunet.distributed in one process: the sampler against PyTorch's, the launcher's environment,
one-process collectives, and DataParallel / SyncBatchNorm over a loopback stand-in for two ranks.
(tests/test_distributed_mpi.py runs the real thing under mpiexec -n 2.)"""
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler as TorchDistributedSampler

import gpunet as gn
from gpunet import nn
from gpunet.data import DataLoader, TensorDataset
from gpunet.distributed import Communicator, DataParallel, DistributedSampler, launch


class LoopbackMPI:
    """Stands in for COMM_WORLD of two ranks holding identical data: a sum doubles."""

    def __init__(self):
        self.calls = []

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def Allreduce(self, _in_place, buf):
        self.calls.append(("Allreduce", buf.size))
        buf *= 2

    def Bcast(self, buf, root=0):
        self.calls.append(("Bcast", buf.size))

    def Allgather(self, send, recv):
        recv[...] = send

    def allreduce(self, obj, op=None):
        return obj


# --- DistributedSampler ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,replicas", [(10, 3), (7, 2), (2, 4), (12, 4), (1, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_as_pytorch_without_shuffle(n, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchDistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                         drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_shuffled_shards_are_disjoint_and_cover_the_epoch():
    n, replicas = 23, 3
    shards = [list(DistributedSampler(range(n), replicas, r, seed=4)) for r in range(replicas)]
    assert all(len(s) == 8 for s in shards)  # ceil(23 / 3), one index repeated as padding
    merged = [shards[i % replicas][i // replicas] for i in range(24)]
    assert sorted(merged[:n]) == list(range(n)) and merged[n] == merged[0]
    again = [list(DistributedSampler(range(n), replicas, r, seed=4)) for r in range(replicas)]
    assert again == shards  # same seed on every rank: the same permutation
    later = DistributedSampler(range(n), replicas, 0, seed=4)
    later.set_epoch(1)
    assert list(later) != shards[0]
    dropped = [set(DistributedSampler(range(n), replicas, r, seed=4, drop_last=True)) for r in range(replicas)]
    assert sum(len(s) for s in dropped) == 21 and len(set.union(*dropped)) == 21


@pytest.mark.parametrize("kwargs,needle", [
    (dict(num_replicas=0, rank=0), "num_replicas must be an int >= 1, got 0"),
    (dict(num_replicas=2, rank=2), "rank must be in [0, 1]"),
    (dict(num_replicas=2, rank=0, seed=-1), "seed must be an int >= 0, got -1"),
])
def test_sampler_refuses_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError) as err:
        DistributedSampler(range(4), **kwargs)
    assert needle in str(err.value)


def test_dataloader_takes_a_sampler_as_pytorch():
    x = np.arange(10, dtype=np.float32)[:, None]
    sampler = DistributedSampler(range(10), num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(TensorDataset(x, np.arange(10)), batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [b[1].numpy().tolist() for b in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(TensorDataset(x), sampler=sampler, shuffle=True)
    with pytest.raises(TypeError, match="sampler must be an iterable of indices with len"):
        DataLoader(TensorDataset(x), sampler=5)


# --- launcher environment and the one-process job ----------------------------------------------
def test_launch_read_from_each_launchers_environment(monkeypatch):
    for var in ("PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_RANK", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE",
                "MV2_COMM_WORLD_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    assert not launch.launched_by_mpi() and launch.env_world_size() == 1 and launch.env_rank() == 0
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("PMI_RANK", "3")
    monkeypatch.setenv("MPI_LOCALRANKID", "1")
    assert launch.launched_by_mpi() and (launch.env_world_size(), launch.env_rank(), launch.local_rank()) == (4, 3, 1)
    for var in ("PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("PMIX_RANK", "1")
    assert launch.launched_by_mpi() and (launch.env_world_size(), launch.env_rank()) == (2, 1)


def test_a_single_process_run_never_imports_mpi4py(tmp_path):
    code = ("import sys, gpunet as gn; from gpunet import cli; c = gn.distributed.init(); "
            "cli.main(['train', '--limit', '200', '--epochs', '1', '--backend', 'numpy', '--no-progress', "
            f"'--out', {str(tmp_path)!r}]); "
            "assert (c.rank, c.size) == (0, 1); assert 'mpi4py' not in sys.modules; assert 'cupy' not in sys.modules")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_one_process_collectives_and_their_argument_errors():
    from gpunet import distributed as dist

    dist.init()
    t = gn.tensor([1.0, 2.0])
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    dist.broadcast(t, src=0)
    parts = [gn.zeros(2)]
    dist.all_gather(parts, t)
    dist.barrier()
    assert t.numpy().tolist() == [1.0, 2.0] == parts[0].numpy().tolist()
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    with pytest.raises(ValueError, match=r"op must be ReduceOp.SUM .* got 'max'"):
        dist.all_reduce(t, op="max")
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 1\), got 3"):
        dist.broadcast(t, src=3)
    with pytest.raises(ValueError, match="tensor_list must be a list of 1 tensors"):
        dist.all_gather([], t)
    with pytest.raises(TypeError, match="all_reduce: tensor must be a gpunet Tensor, got ndarray"):
        dist.all_reduce(np.ones(2))
    with pytest.raises(TypeError, match="op='mean' needs a floating-point tensor, got int64"):
        dist.all_reduce(gn.tensor([1, 2]), op="mean")


# --- transports over the loopback stand-in ---------------------------------------------------
def test_cuda_tensors_fall_back_to_mpi_with_one_logged_line(caplog):
    be = gn.backends.backend("cuda")  # the simulator in CI: host arrays, no NCCL
    comm = Communicator(LoopbackMPI())
    with caplog.at_level(logging.WARNING, logger="gpunet"):
        for _ in range(2):
            a = be.asarray(np.array([1.0, 3.0], np.float32))
            comm.allreduce_array(a, be, "sum")
            np.testing.assert_array_equal(be.to_host(a), [2.0, 6.0])
    assert comm.transport_for(be) == "mpi" and comm.transport_for(gn.backends.backend("numpy")) == "mpi"
    lines = [r.getMessage() for r in caplog.records if "NCCL unavailable" in r.getMessage()]
    assert len(lines) == 1 and "simulator" in lines[0]


def test_nccl_is_chosen_only_for_device_arrays():
    from gpunet.distributed import nccl

    assert "host memory" in nccl.why_not_nccl(gn.backends.backend("numpy"))
    assert "NUMBA_ENABLE_CUDASIM" in nccl.why_not_nccl(gn.backends.backend("cuda"))
