"""Data pipeline: datasets, PyTorch's samplers and collate, and a loader that yields batches as Tensors.

Example:
    >>> from gpunet.data import DataLoader, RandomSampler, TensorDataset, random_split
    >>> train, val = random_split(TensorDataset(x, y), [0.75, 0.25], seed=0)
    >>> for xb, yb in DataLoader(train, batch_size=2, shuffle=True, seed=0):
    ...     print(tuple(xb.shape), tuple(yb.shape))
    (2, 1, 28, 28) (2,)
    (1, 1, 28, 28) (1,)
    >>> s = RandomSampler(train, replacement=True, num_samples=int(1e10))   # drawn lazily
    >>> xb, yb = next(iter(DataLoader(train, sampler=s, batch_size=4)))
    >>> tuple(xb.shape)
    (4, 1, 28, 28)
"""
from .collate import default_collate, default_convert
from .dataset import Dataset, Subset, TensorDataset, random_split
from .loader import DataLoader
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = ["BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
           "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "random_split"]
