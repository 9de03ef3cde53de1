"""Offline datasets as NumPy arrays: images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,).

- ``digits()``: 5,000 real MNIST digits embedded in the package (4,000 train / 1,000 test).
- ``fashion_mnist(path=None)``: Fashion-MNIST 60k/10k from idx files on disk
  (``sudo apt-get install dataset-fashion-mnist``, or ``$GPUNET_DATA``).
- ``mnist(path)``: full MNIST from idx files you already have.
- ``shakespeare()``: 200 KB of Shakespeare's plays (public domain) as one string, for character models.
- ``read_idx`` / ``write_idx``: the idx file format itself.

Nothing is ever downloaded. This package depends on NumPy and the standard library only.

Example:
    >>> from gpunet import datasets
    >>> (x_train, y_train), (x_test, y_test) = datasets.digits()
    >>> x_train.shape, y_train[:10].tolist()
    ((4000, 1, 28, 28), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
"""

from .embedded import DIGIT_CLASSES, digits, shakespeare
from .idx import IdxFormatError, read_idx, write_idx
from .idx_datasets import DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, fashion_mnist, mnist

__all__ = [
    "digits",
    "fashion_mnist",
    "mnist",
    "shakespeare",
    "read_idx",
    "write_idx",
    "IdxFormatError",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DEBIAN_FASHION_MNIST_DIR",
]
