"""``DistributedSampler``: each rank's disjoint shard of every epoch's order (PyTorch's semantics).

All ranks draw the same permutation (NumPy's generator seeded with ``seed + epoch``, so the
same ``seed`` on every rank and ``set_epoch`` each epoch), pad it by wrapping around to a
multiple of ``num_replicas`` (or, with ``drop_last=True``, cut the tail instead), and rank r
takes positions r, r + K, r + 2K, ... The permutation is NumPy's, not torch's ``randperm``:
the shards are PyTorch's, the order within an epoch differs.

Example:
    >>> sampler = DistributedSampler(train_set, num_replicas=2, rank=comm.rank, seed=0)
    >>> loader = DataLoader(train_set, batch_size=32, sampler=sampler)
    >>> for epoch in range(10):
    ...     sampler.set_epoch(epoch)   # gn.train.fit does this for you
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["DistributedSampler"]


def _int_at_least(name, value, least):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"DistributedSampler: {name} must be an int >= {least}, got {value!r}")
    return int(value)


class DistributedSampler:
    """Indices of ``dataset`` for one of ``num_replicas`` ranks (defaults: from ``gn.distributed.init()``).

    * ``drop_last=False``: the order is padded with its own first indices so every rank gets
      ``ceil(N / K)`` samples (a few samples count twice per epoch);
    * ``drop_last=True``: the tail is dropped so every rank gets ``floor(N / K)``.

    Example:
        >>> s = DistributedSampler(range(10), num_replicas=3, rank=0, shuffle=False)
        >>> list(s)
        [0, 3, 6, 9]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: dataset must support len(), got {type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from .comm import get_communicator
            comm = get_communicator()
            num_replicas = comm.size if num_replicas is None else num_replicas
            rank = comm.rank if rank is None else rank
        self.num_replicas = _int_at_least("num_replicas", num_replicas, 1)
        self.rank = _int_at_least("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas - 1}] for "
                             f"num_replicas={self.num_replicas}, got {rank}")
        self.seed = _int_at_least("seed", seed, 0)
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:  # pad by wrapping around (repeatedly when N < K)
            order = np.resize(order, self.total_size)
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Make the next ``iter()`` draw epoch ``epoch``'s permutation (call it every epoch)."""
        self.epoch = _int_at_least("epoch", epoch, 0)

    def __repr__(self):
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
