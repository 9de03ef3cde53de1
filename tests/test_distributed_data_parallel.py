"""DataParallel's bucketed gradient averaging and nn.SyncBatchNorm in one process, over a
loopback stand-in for two ranks with identical data (so averaged = local) on both backends."""
import sys

import numpy as np
import pytest
import torch

import gpunet as gn
from gpunet import nn
from gpunet.distributed import Communicator, DataParallel

from test_distributed import LoopbackMPI


def _mlp(seed=0):
    gn.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 3))


def _grads(model, x, y):
    for p in model.parameters():
        p.grad = None
    nn.CrossEntropyLoss()(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_post_accumulate_grad_hook_runs_once_per_backward_and_can_be_removed():
    w = gn.tensor(np.ones(3, np.float32), requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().tolist()))
    ((w * 2) + w).sum().backward()  # two paths into w, one accumulation
    assert seen == [[3.0, 3.0, 3.0]]
    handle.remove()
    (w * 2).sum().backward()
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(print)


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_one_all_reduce_per_bucket_and_the_mean_gradient(backend):
    with gn.use_backend(backend):
        x = gn.tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
        y = gn.tensor(np.array([0, 1, 2, 1]))
        reference = _grads(_mlp().to(backend), x, y)
        mpi = LoopbackMPI()
        model = DataParallel(_mlp().to(backend), comm=Communicator(mpi), bucket_cap_mb=100 * 4 / 2**20)
        assert [c[0] for c in mpi.calls] == ["Bcast"] * 6  # rank 0's weights, one tensor at a time
        mpi.calls.clear()
        got = _grads(model, x, y)
    # 6 parameters (35+7+42+6+18+3 floats) in reverse order, cut at 100 floats: [76, 35], and
    # one all-reduce per bucket (in the order backward completes them), not one per parameter.
    sizes = [sum(p._data.size for _, p in b.params) for b in model.buckets]
    assert sizes == [76, 35]
    assert sorted(mpi.calls) == sorted(("Allreduce", s) for s in sizes)
    for g, r in zip(got, reference):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-7)  # the mean of two equal halves


def test_state_dict_keys_and_no_sync_and_unused_parameters():
    model = DataParallel(_mlp(), comm=Communicator(LoopbackMPI()))
    assert list(model.state_dict())[0] == "module.0.weight" and model.module[0].weight.shape == (7, 5)
    x, y = gn.tensor(np.ones((2, 5), np.float32)), gn.tensor(np.array([0, 2]))
    with model.no_sync():
        local = _grads(model, x, y)
    assert all(b.ready == set() for b in model.buckets)  # nothing was averaged
    model.module[0].weight.grad = None
    partial = DataParallel(nn.Sequential(nn.Linear(5, 3), nn.Linear(5, 3)), comm=Communicator(LoopbackMPI()))
    partial.module[0](x).sum().backward()  # the second layer takes no part in this loss
    with pytest.raises(RuntimeError, match=r"gave no gradient to 1\.weight, 1\.bias"):
        partial(x)
    assert len(local) == 6


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_sync_batchnorm_over_identical_ranks_is_batchnorm(backend):
    """Two ranks holding the same batch have the global statistics of that batch."""
    rng = np.random.default_rng(1)
    x_host = rng.standard_normal((3, 4, 5, 2)).astype(np.float64)
    gy_host = rng.standard_normal((3, 4, 5, 2))
    import gpunet.distributed.comm as comm_module

    with gn.use_backend(backend):
        plain = nn.BatchNorm2d(4, dtype=np.float64)
        plain.weight.data[...] = plain.weight.backend.asarray(np.linspace(0.5, 2, 4))
        sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(plain))[0]
        assert isinstance(sync, nn.SyncBatchNorm) and sync.weight is plain.weight
        outs = []
        for layer, comm in ((plain, None), (sync, Communicator(LoopbackMPI()))):
            saved, comm_module._default = comm_module._default, comm
            try:
                x = gn.tensor(x_host, requires_grad=True)
                layer.weight.grad = None
                y = layer(x)
                y.backward(gn.tensor(gy_host))
                outs.append([y.numpy(), x.grad.numpy(), layer.weight.grad.numpy()])
            finally:
                comm_module._default = saved
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # and the eval-mode / one-process layer is PyTorch's
    t = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    with torch.no_grad():
        t.weight.copy_(torch.linspace(0.5, 2, 4, dtype=torch.float64))
    np.testing.assert_allclose(outs[0][0], t(torch.from_numpy(x_host)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_convert_sync_batchnorm_refuses_process_groups():
    with pytest.raises(NotImplementedError, match="process_group=None"):
        nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3), process_group=object())


class _FakeNccl:
    """cupy.cuda.nccl's surface as its documentation gives it, acting for two ranks with equal data."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT64, NCCL_SUM = 7, 8, 4, 0
    available = True

    def __init__(self, arrays):
        self.arrays, self.calls = arrays, []

    def get_unique_id(self):
        return (1, 2, 3)

    def NcclCommunicator(self, ndev, uid, rank):  # noqa: N802 - CuPy's name
        self.calls.append(("init", ndev, uid, rank))
        return self

    def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802
        self.calls.append(("allReduce", send == recv, count, dtype, op, stream))
        self.arrays[recv].host[...] *= 2

    def broadcast(self, send, recv, count, dtype, root, stream):
        self.calls.append(("broadcast", send == recv, count, dtype, root, stream))

    def allGather(self, send, recv, count, dtype, stream):  # noqa: N802
        self.calls.append(("allGather", count, dtype, stream))
        self.arrays[recv].host[...] = self.arrays[send].host


class _DeviceArray:
    """What the NCCL transport reads of a CuPy array: .data.ptr, .flags, .size, .shape, .dtype."""

    def __init__(self, host, registry):
        self.host, self.size, self.shape, self.dtype = host, host.size, host.shape, host.dtype
        self.flags, self.strides = host.flags, host.strides
        self.data = type("Memory", (), {"ptr": host.ctypes.data})()
        registry[self.data.ptr] = self


def test_nccl_transport_passes_device_pointers_counts_dtypes_and_the_current_stream(monkeypatch):
    import types

    from gpunet.distributed import nccl as transport

    registry = {}
    fake = _FakeNccl(registry)
    stream = types.SimpleNamespace(ptr=0xABC)
    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(nccl=fake, get_current_stream=lambda: stream),
        empty=lambda shape, dtype: _DeviceArray(np.zeros(shape, dtype), registry))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cupy.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", fake)

    class TwoRanks(LoopbackMPI):
        def bcast(self, obj, root=0):
            return obj

    comm = Communicator(TwoRanks())
    gpu = types.SimpleNamespace(name="cuda", simulated=False)
    made, reason = transport.create(comm, gpu)
    assert reason is None and fake.calls == [("init", 2, (1, 2, 3), 0)]
    grads = _DeviceArray(np.array([1.0, 2.0, 3.0], np.float32), registry)
    made.allreduce(grads)
    made.broadcast(grads, 1)
    gathered = made.allgather(_DeviceArray(np.array([5, 6], np.int64), registry))
    assert fake.calls[1:] == [("allReduce", True, 3, fake.NCCL_FLOAT32, fake.NCCL_SUM, 0xABC),
                              ("broadcast", True, 3, fake.NCCL_FLOAT32, 1, 0xABC),
                              ("allGather", 2, fake.NCCL_INT64, 0xABC)]
    assert grads.host.tolist() == [2.0, 4.0, 6.0] and gathered.host.tolist() == [[5, 6], [5, 6]]
    strided = _DeviceArray(np.zeros((3, 2), np.float32).T, registry)
    with pytest.raises(ValueError, match="NCCL needs a contiguous array"):
        made.allreduce(strided)
