"""Fashion-MNIST and MNIST from the standard idx files already on disk (never downloaded).

Both sets use the same four file names, gzipped or not::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

Debian/Ubuntu's package ``dataset-fashion-mnist`` installs them in
``/usr/share/datasets/fashion-mnist/``.
"""

import os

import numpy as np

from .idx import IdxFormatError, read_idx

__all__ = ["fashion_mnist", "mnist", "FASHION_MNIST_CLASSES", "DEBIAN_FASHION_MNIST_DIR"]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_INSTALL = "sudo apt-get install dataset-fashion-mnist"

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory, stem):
    """The path of ``stem.gz`` or ``stem`` in ``directory``, or None."""
    for name in (stem + ".gz", stem):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _candidate_dirs(path, subdir, system_dir):
    """Directories to search, in order. An explicit ``path`` is the only place looked at."""
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        return [path, os.path.join(path, subdir)]
    dirs = []
    env = os.environ.get("GPUNET_DATA")
    if env:
        env = os.path.expanduser(env)
        dirs += [os.path.join(env, subdir), env]
    if system_dir:
        dirs.append(system_dir)
    return dirs


def _locate(name, path, subdir, system_dir, install_hint):
    """The first directory holding all four files, or a FileNotFoundError listing what was tried."""
    dirs = _candidate_dirs(path, subdir, system_dir)
    stems = [s for pair in _FILES.values() for s in pair]
    for d in dirs:
        if all(_find(d, s) for s in stems):
            return d
    searched = "\n".join(f"  - {d}" for d in dirs) or "  (nowhere: no path given and $GPUNET_DATA unset)"
    hint = f"Install it with:  {install_hint}\nor p" if install_hint else "P"
    raise FileNotFoundError(
        f"{name}: the idx files ({', '.join(s + '.gz' for s in stems)}) were not all found in any of:\n"
        f"{searched}\n{hint}ut the four files in a folder and pass path=... or set $GPUNET_DATA "
        f"(gpunet never downloads data)."
    )


def _load_split(name, directory, split):
    img_stem, lab_stem = _FILES[split]
    img_path, lab_path = _find(directory, img_stem), _find(directory, lab_stem)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IdxFormatError(f"{name}: {img_path} holds {images.dtype} {tuple(images.shape)}; needs uint8 (N, 28, 28)")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IdxFormatError(f"{name}: {lab_path} holds {labels.dtype} {tuple(labels.shape)}; needs uint8 (N,)")
    if len(images) != len(labels):
        raise IdxFormatError(f"{name}: {img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{name}: {lab_path} has label {labels.max()}; needs 0..9")
    x = images.astype(np.float32)[:, None, :, :]
    x /= np.float32(255.0)
    return x, labels.astype(np.int64)


def _load(name, path, split, subdir, system_dir, install_hint):
    if split not in (None, "train", "test"):
        raise ValueError(f"{name}: split must be None, 'train' or 'test'; got {split!r}")
    directory = _locate(name, path, subdir, system_dir, install_hint)
    if split is not None:
        return _load_split(name, directory, split)
    return _load_split(name, directory, "train"), _load_split(name, directory, "test")


def fashion_mnist(path=None, split=None):
    """Fashion-MNIST: 60,000 train and 10,000 test 28x28 clothing images, 10 classes.

    Looks for the four idx files in ``path`` (and ``path/fashion-mnist``) if given;
    otherwise in ``$GPUNET_DATA/fashion-mnist``, ``$GPUNET_DATA`` and
    ``/usr/share/datasets/fashion-mnist`` (``sudo apt-get install dataset-fashion-mnist``).
    Raises FileNotFoundError listing those places when they are missing.
    Returns float32 images (N, 1, 28, 28) in [0, 1] and int64 labels, as
    ``((x_train, y_train), (x_test, y_test))``, or one ``(x, y)`` pair for
    ``split="train"`` / ``"test"``. Class names: ``FASHION_MNIST_CLASSES``
    (also ``fashion_mnist.class_names``).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = fashion_mnist()   # doctest: +SKIP
        >>> x_train.shape, FASHION_MNIST_CLASSES[y_train[0]]          # doctest: +SKIP
        ((60000, 1, 28, 28), 'Ankle boot')
    """
    return _load("fashion_mnist", path, split, "fashion-mnist", DEBIAN_FASHION_MNIST_DIR, _FASHION_INSTALL)


fashion_mnist.class_names = FASHION_MNIST_CLASSES


def mnist(path=None, split=None):
    """MNIST from its four idx files, for users who have them (no Debian package ships them).

    Looks in ``path`` (and ``path/mnist``) if given, else ``$GPUNET_DATA/mnist`` and
    ``$GPUNET_DATA``. Same return values as :func:`fashion_mnist`.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = mnist("~/data/mnist")   # doctest: +SKIP
        >>> x_train.shape, y_test.shape                                    # doctest: +SKIP
        ((60000, 1, 28, 28), (10000,))
    """
    return _load("mnist", path, split, "mnist", None, None)
