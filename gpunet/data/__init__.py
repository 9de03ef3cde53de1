"""Data pipeline: datasets of arrays and a loader that yields batches as Tensors.

Example:
    >>> from gpunet.data import DataLoader, TensorDataset, random_split
    >>> train, val = random_split(TensorDataset(x, y), [0.9, 0.1], seed=0)
    >>> for xb, yb in DataLoader(train, batch_size=64, shuffle=True):
    ...     ...
"""
from .dataset import Dataset, Subset, TensorDataset, random_split
from .loader import DataLoader

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]
