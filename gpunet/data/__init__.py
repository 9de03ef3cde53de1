"""Data pipeline: datasets of arrays and a loader that yields batches as Tensors.

Example:
    >>> from gpunet.data import DataLoader, TensorDataset, random_split
    >>> train, val = random_split(TensorDataset(x, y), [0.75, 0.25], seed=0)
    >>> for xb, yb in DataLoader(train, batch_size=2, shuffle=True, seed=0):
    ...     print(xb.shape, yb.shape)
    (2, 1, 28, 28) (2,)
    (1, 1, 28, 28) (1,)
"""
from .dataset import Dataset, Subset, TensorDataset, random_split
from .loader import DataLoader

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]
