"""``gpunet.utils.data``: the same objects as :mod:`gpunet.data` under PyTorch's path.

Example:
    >>> from gpunet.utils.data import DataLoader, TensorDataset
    >>> DataLoader is gn.data.DataLoader
    True
"""
from ...data import DataLoader, Dataset, Subset, TensorDataset, random_split
from . import distributed  # noqa: F401

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]
