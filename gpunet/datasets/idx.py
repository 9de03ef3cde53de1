"""Read and write the idx format that MNIST and Fashion-MNIST ship in.

An idx file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type,
``NN`` the number of dimensions), ``NN`` big-endian uint32 sizes, then the
elements in big-endian row-major order. Files ending in ``.gz`` are gunzipped.
Both functions depend on NumPy and the standard library only.
"""

import gzip
import os
import zlib

import numpy as np

__all__ = ["read_idx", "write_idx", "IdxFormatError"]

# type byte -> big-endian dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}


class IdxFormatError(ValueError):
    """Raised when a file is not a valid idx file (bad magic, truncated, trailing bytes)."""


def _read_bytes(path):
    path = os.fspath(path)
    if path.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, OSError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError; a cut-off stream raises EOFError.
            raise IdxFormatError(f"{path}: cannot gunzip ({e}); the file is corrupt or truncated") from e
    with open(path, "rb") as f:
        return f.read()


def read_idx(path):
    """Read an idx file (optionally ``.gz``) into a native-endian NumPy array.

    Raises ``IdxFormatError`` (a ``ValueError``) naming the file when the magic
    number is wrong or the data are shorter or longer than the header says.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
        >>> write_idx(path, np.array([3, 1, 4], np.uint8))
        >>> labels = read_idx(path)
        >>> labels, labels.dtype
        (array([3, 1, 4], dtype=uint8), dtype('uint8'))
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: {len(raw)} bytes is too short for an idx header (needs >= 4)")
    zero, code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES:
        raise IdxFormatError(
            f"{path}: bad idx magic number 0x{raw[:4].hex()}; expected 0x0000TTNN with type TT in "
            f"{{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}} (is this really an idx file?)"
        )
    if ndim == 0:
        raise IdxFormatError(f"{path}: idx header declares 0 dimensions; needs at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{path}: truncated header: {len(raw)} bytes, needs {header} for {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{path}: file {what}: header says shape {shape} of {dtype.newbyteorder('=')} "
            f"({expected} data bytes) but the file holds {got} data bytes"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def write_idx(path, array):
    """Write ``array`` as an idx file (gzipped if ``path`` ends in ``.gz``).

    Supports uint8, int8, int16, int32, float32 and float64 arrays of 1 to 255 dimensions.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "images-idx3-ubyte"
        >>> write_idx(path, np.zeros((2, 28, 28), np.uint8))
        >>> read_idx(path).shape
        (2, 28, 28)
    """
    path = os.fspath(path)
    array = np.asarray(array)
    code = _DTYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"write_idx: array has dtype {array.dtype}; needs one of "
            f"{sorted(str(d) for d in _DTYPE_CODES)}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array has {array.ndim} dimensions; needs 1 to 255")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
