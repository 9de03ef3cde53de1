"""``gpunet.utils.data``: the same objects as :mod:`gpunet.data` under PyTorch's path.

Example:
    >>> from gpunet.utils.data import DataLoader, TensorDataset, WeightedRandomSampler
    >>> DataLoader is gn.data.DataLoader and WeightedRandomSampler is gn.data.WeightedRandomSampler
    True
"""
from ...data import (BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler, Subset,
                     SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, default_convert,
                     random_split)
from . import dataloader, distributed  # noqa: F401

__all__ = ["BatchSampler", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
           "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "random_split"]
