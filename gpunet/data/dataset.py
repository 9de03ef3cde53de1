"""Datasets: ``Dataset``, ``TensorDataset``, ``Subset`` and ``random_split``.

A dataset is anything with ``len()`` and ``dataset[i]`` returning a tuple of fields.
``get_batch(indices)`` returns a whole batch at once; ``TensorDataset`` and ``Subset`` do
it with one fancy-index per array (no Python loop over the items).

Example:
    >>> ds = TensorDataset(x_train, y_train)          # host NumPy arrays or gpunet Tensors
    >>> train, val = random_split(ds, [0.9, 0.1], seed=0)
    >>> len(train), len(val)                          # 64 examples: floor(57.6) + 1, floor(6.4)
    (58, 6)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import random as _random
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


def _as_index_array(indices, n, who):
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise TypeError(f"{who}: indices must be a 1-D integer array, got {idx.dtype} of shape {tuple(idx.shape)}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{who}: indices must be in [0, {n}), got values in [{idx.min()}, {idx.max()}]")
    return idx.astype(np.int64, copy=False)


def _collate(items):
    """A list of per-item tuples -> a tuple of stacked host arrays (one per field)."""
    if not items:
        raise ValueError("cannot make a batch from zero items")
    first = items[0] if isinstance(items[0], tuple) else None
    if first is None:
        items = [(item,) for item in items]
    fields = []
    for column in zip(*items):
        fields.append(np.stack([c.numpy() if isinstance(c, Tensor) else np.asarray(c) for c in column]))
    return tuple(fields)


class Dataset:
    """Base class: override ``__len__`` and ``__getitem__`` (returning a tuple of fields).

    ``get_batch(indices)`` stacks items one by one; override it for a vectorised path.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self): return 10
        ...     def __getitem__(self, i): return (np.float32(i), np.int64(i * i))
    """

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def get_batch(self, indices):
        """A tuple of arrays (host NumPy, or backend arrays inside Tensors) for ``indices``."""
        return _collate([self[int(i)] for i in indices])


class TensorDataset(Dataset):
    """Arrays (host NumPy arrays or gpunet Tensors) that share their first dimension.

    Example:
        >>> ds = TensorDataset(np.zeros((100, 1, 28, 28), np.float32), np.arange(100))
        >>> x, y = ds[3]
        >>> x.shape, int(y)
        ((1, 28, 28), 3)
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array, got none")
        fixed = []
        for i, a in enumerate(arrays):
            if not isinstance(a, Tensor):
                a = np.asarray(a)
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is a scalar; every array needs a first (sample) dimension")
            fixed.append(a)
        lengths = [a.shape[0] for a in fixed]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: arrays must have the same first dimension, got lengths {lengths}")
        self.arrays = tuple(fixed)

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices):
        idx = _as_index_array(indices, len(self), "TensorDataset.get_batch")
        out = []
        for a in self.arrays:
            if isinstance(a, Tensor):  # index on the tensor's own backend, no host round trip
                out.append(Tensor._wrap(a._data[a.backend.asarray(idx)], a.backend))
            else:
                out.append(a[idx])
        return tuple(out)


class Subset(Dataset):
    """The items of ``dataset`` at ``indices`` (vectorised when the parent is)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = _as_index_array(indices, len(dataset), "Subset")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices):
        idx = _as_index_array(indices, len(self), "Subset.get_batch")
        return self.dataset.get_batch(self.indices[idx])


def _split_lengths(n, lengths):
    if not isinstance(lengths, (list, tuple)) or not lengths:
        raise TypeError(f"random_split: lengths must be a non-empty list of ints or fractions, got {lengths!r}")
    if all(isinstance(v, numbers.Integral) for v in lengths):
        lengths = [int(v) for v in lengths]
        if min(lengths) < 0 or sum(lengths) != n:
            raise ValueError(f"random_split: lengths {lengths} must be >= 0 and sum to the dataset size {n}, "
                             f"got sum {sum(lengths)}")
        return lengths
    fracs = [float(v) for v in lengths]
    if min(fracs) < 0 or max(fracs) > 1 or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions {lengths} must be in [0, 1] and sum to 1, got sum {sum(fracs)}")
    counts = [int(math.floor(n * f)) for f in fracs]
    for i in range(n - sum(counts)):  # hand out the remainder round-robin, as PyTorch does
        counts[i % len(counts)] += 1
    return counts


def random_split(dataset, lengths, seed=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths or fractions.

    ``seed=None`` draws from ``gpunet.random.host_rng()`` (repeatable after ``gn.manual_seed``).

    Example:
        >>> train, val = random_split(TensorDataset(x, y), [0.9, 0.1], seed=0)
        >>> a, b, c = random_split(ds, [32, 16, 16])
        >>> len(a), len(b), len(c)
        (32, 16, 16)
    """
    n = len(dataset)
    counts = _split_lengths(n, lengths)
    rng = np.random.default_rng(seed) if seed is not None else _random.host_rng()
    perm = rng.permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, perm[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
