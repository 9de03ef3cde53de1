"""Run by tests/test_distributed_mpi.py: N SGD steps through gn.train.fit, saving the weights.

Under ``mpiexec -n K`` each rank trains at per-rank --batch B on its DistributedSampler shard
(DataParallel averages gradients); run plainly it is one process at the given batch over the
same seeded permutation. Rank r writes OUT.rank{r}.npz.

    mpiexec -n 2 python train_steps.py OUT --batch 8 --dtype float64 --model plain
    python train_steps.py OUT --batch 16 --dtype float64 --model plain
"""
import argparse

import numpy as np

import gpunet as gn
from gpunet import nn, optim
from gpunet.data import DataLoader, TensorDataset


def build(kind, dtype):
    gn.manual_seed(1)  # ranks may differ here: DataParallel broadcasts rank 0's weights
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    if kind == "syncbn":
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)]
    model = nn.Sequential(*layers)
    return model.double() if dtype == "float64" else model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--dtype", choices=("float32", "float64"), required=True)
    p.add_argument("--model", choices=("plain", "syncbn"), default="plain")
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    gn.set_backend("numpy")
    comm = gn.distributed.init()
    data_rng = np.random.default_rng(0)
    n = args.steps * args.batch * comm.size
    x = data_rng.standard_normal((n, 1, 8, 8)).astype(args.dtype)
    y = data_rng.integers(0, 3, n)
    model = build(args.model, args.dtype)
    initial = model[0].weight.numpy().copy()
    if comm.size > 1:
        if args.model == "syncbn":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = gn.distributed.DataParallel(model, bucket_cap_mb=0.0005)  # several buckets
    sampler = gn.distributed.DistributedSampler(TensorDataset(x, y), num_replicas=comm.size, rank=comm.rank,
                                                shuffle=True, seed=5)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, sampler=sampler)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = gn.train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False)
    assert len(loader) == args.steps, (len(loader), args.steps)
    inner = getattr(model, "module", model)
    state = {k: v.numpy() for k, v in inner.state_dict().items()}
    state["train_loss"] = np.array(history.train_loss[-1])
    state["initial_0.weight"] = initial
    gn.save(state, f"{args.out}.rank{comm.rank}.npz")


if __name__ == "__main__":
    main()
