"""``gpunet.utils.data.dataloader``, PyTorch's module path to :class:`gpunet.data.DataLoader`.

Example:
    >>> from gpunet.utils.data.dataloader import DataLoader
    >>> DataLoader is gn.data.DataLoader
    True
"""
from ...data import DataLoader, default_collate, default_convert

__all__ = ["DataLoader", "default_collate", "default_convert"]
