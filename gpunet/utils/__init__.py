"""``gpunet.utils``: PyTorch's ``torch.utils`` paths, so ports change only their imports.

Example:
    >>> from gpunet.utils.data import DataLoader, TensorDataset
"""
from . import data  # noqa: F401
