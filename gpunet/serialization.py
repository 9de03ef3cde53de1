"""gn.save / gn.load in PyTorch's own file format (``torch.save``'s zip), without torch; also
``.npz`` and ``.safetensors`` files.  Paths are written atomically.

* ``save(obj, "model.pt")`` (any name but the two below, or a binary file object) writes what
  ``torch.save`` writes; ``torch.load(path, weights_only=True)`` reads it into torch tensors.
* ``save(state, "model.npz")`` writes a NumPy ``.npz``: a flat ``{str: array}`` dict as exactly
  its keys; anything richer flattened to dotted keys (``"param_groups.0.lr"``) plus a JSON entry
  ``"__gpunet_meta__"`` describing the structure.  ``.safetensors``: a flat dict of arrays.

``load`` tells the format by content: torch.save zips (PyTorch's or gpunet's) give Tensors and
NumPy arrays as saved, ``.npz`` files (older gn.save) NumPy arrays.  Paths are written to a
temporary file beside them, fsynced and renamed: a crash mid-save leaves the last good file
untouched (at worst a stray hidden ``.<name>.<pid>.<hex>.tmp`` file beside it).
"""

import contextlib
import io
import json
import os
import secrets
import zipfile
from collections.abc import Mapping

import numpy as np

from . import backends, torch_format, torch_format_reader
from .npz_format import _FORMAT, _VERSION, META_KEY, _flatten, _is_plain, _load_npz, _write_npz
from .trusted_globals import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from .backends.base import Backend
from .backends.device import device

__all__ = ["save", "load", "check_state_dict", "StateDictMismatchError", "META_KEY", "add_safe_globals",
           "clear_safe_globals", "get_safe_globals", "safe_globals"]


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write {path}: its folder {directory} does not exist "
                                "(create it first, e.g. os.makedirs(folder, exist_ok=True))")
    while True:
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def save(obj, f, *, format=None, compress=False):  # noqa: A002 - the natural name
    """Save ``obj`` to ``f`` (a path or a binary file object opened 'wb'), as ``torch.save`` does.

    The format follows the name: ``.npz`` (``compress=True`` deflates it) and ``.safetensors``
    as their suffix says, PyTorch's zip otherwise; ``format="torch" | "npz" | "safetensors"``
    overrides it.  Tensors (any backend) are saved from host memory; views of one NumPy array
    share one storage, as in torch.  A whole module is pickled into a .pt file as torch pickles
    one; loading it needs its classes allow-listed (:mod:`gpunet.trusted_globals`), so saving its
    ``state_dict()`` is usually better.

    Example:
        >>> buf = io.BytesIO()
        >>> save({"model": model.state_dict(), "epoch": 3}, buf)
        >>> load(io.BytesIO(buf.getvalue()))["model"]["0.weight"].shape
        gpunet.Size([6, 1, 5, 5])
    """
    path = None if hasattr(f, "write") else os.fspath(f)
    suffix = os.path.splitext(path or "")[1]
    fmt = format or {".npz": "npz", ".safetensors": "safetensors"}.get(suffix, "torch")
    if fmt not in ("torch", "npz", "safetensors"):
        raise ValueError(f"save: format must be 'torch', 'npz' or 'safetensors', got {format!r}")
    if fmt == "torch":
        if compress:
            raise ValueError("save: compress=True needs an .npz file; PyTorch's format stores its records uncompressed")
        records = torch_format.pack(obj)
        stem = os.path.splitext(os.path.basename(path or ""))[0]  # torch's folder name
        write = lambda fh: torch_format.write(fh, records, stem if stem and stem.isascii() else "archive")  # noqa: E731
    else:
        if not isinstance(obj, Mapping):
            if callable(getattr(obj, "state_dict", None)) and not isinstance(obj, type):
                raise torch_format.unsupported(obj, "obj")
            raise TypeError(f"save: state_dict must be a dict; got {type(obj).__name__} (an .{fmt} file "
                            "holds a dict of arrays; save other objects as .pt)")
        arrays = {}
        tree = _flatten(obj, "", arrays)
        if fmt == "safetensors":
            if not _is_plain(tree):
                raise ValueError(f"save: {path or 'f'}: a .safetensors file holds a flat dict of arrays (a "
                                 "model's state_dict); save nested checkpoints as .npz or .pt")
            write = lambda fh: fh.write(_safetensors_numpy().save(  # noqa: E731
                {k: np.ascontiguousarray(v) for k, v in arrays.items()}))
        else:
            if not _is_plain(tree):
                arrays[META_KEY] = np.array(json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree},
                                                       allow_nan=True))
            write = lambda fh: _write_npz(fh, arrays, compress)  # noqa: E731
    if path is None:
        write(f)
    else:
        _atomic_write(path, write)


def _safetensors_numpy():
    try:
        from safetensors import numpy as st
    except ImportError:
        raise ImportError("reading or writing .safetensors files needs the safetensors package: "
                          "pip install 'gpunet[safetensors]'") from None
    return st


def _backend_of(to):
    if to is not None and not isinstance(to, (str, device, Backend)):
        raise TypeError(f"load: map_location must be 'cpu', 'cuda', a gn.device, a backend or a dict "
                        f"of them; got {type(to).__name__}")
    return backends.resolve("cpu" if to is None else to)


def _targets(map_location):
    """location -> Backend, as torch.load's ``map_location`` (default: the NumPy backend)."""
    if not isinstance(map_location, dict):
        be = _backend_of(map_location)
        return lambda location: be
    mapped = {k: _backend_of(v) for k, v in map_location.items()}  # unmapped: where it was saved
    return lambda location: mapped.get(location) or _backend_of(location)


def load(f, map_location=None, *, weights_only=True):
    """Load what :func:`save` or ``torch.save`` wrote to ``f`` (a path or a binary file object).

    A torch.save file gives gpunet Tensors (on ``map_location``: "cpu", the default, "cuda", a
    ``gn.device`` or a dict {saved location: target}, as in torch.load) and NumPy arrays as
    saved; ``.npz`` and ``.safetensors`` files give NumPy arrays.  Only data is unpickled, never
    code: any other global is refused with UnsupportedGlobalError (a ValueError), as
    ``torch.load(weights_only=True)`` does; ``weights_only=False`` is accepted but changes nothing.

    Example:
        >>> buf = io.BytesIO()
        >>> save({"w": gn.ones(2), "lr": 0.1}, buf)
        >>> load(io.BytesIO(buf.getvalue()))
        {'w': tensor([1., 1.]), 'lr': 0.1}
    """
    target = _targets(map_location)
    if hasattr(f, "read"):
        name = f.name if isinstance(getattr(f, "name", None), str) else "the file object"
        return _load_stream(f if getattr(f, "seekable", lambda: False)() else io.BytesIO(f.read()), name, target)
    path = os.fspath(f)
    if path.endswith(".safetensors"):
        st = _safetensors_numpy()
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        try:
            return st.load_file(path)
        except Exception as e:  # safetensors raises its own error types for a damaged file
            raise ValueError(f"load: {path} is not a readable .safetensors file ({e})") from e
    with open(path, "rb") as fh:
        return _load_stream(fh, path, target)


def _load_stream(fh, name, target):
    start = fh.tell()
    head = fh.read(8)
    fh.seek(start)
    unreadable = f"load: {name} is not a readable .npz state dict or torch.save file"
    if head[:6] == b"\x93NUMPY":
        raise ValueError(f"load: {name} is a single .npy array, not an .npz state dict")
    if head[:2] == b"\x80\x02":
        raise ValueError(f"load: {name} is in PyTorch's legacy format (torch.save(..., "
                         "_use_new_zipfile_serialization=False)); re-save it with torch.save's default")
    if head[:2] != b"PK":
        raise ValueError(f"{unreadable} (it is not a zip archive)")
    try:
        with zipfile.ZipFile(fh) as zf:
            if torch_format_reader.is_archive(zf.namelist()):
                return torch_format_reader.read(zf, target, name)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{unreadable} ({e})") from e
    fh.seek(start)
    return _load_npz(fh, name)


class StateDictMismatchError(KeyError, ValueError):
    """A state dict's keys or shapes do not match; ``missing``, ``unexpected``, ``mismatched`` list them."""

    def __init__(self, message, missing=(), unexpected=(), mismatched=()):
        super().__init__(message)
        self.message = message
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)

    def __str__(self):  # KeyError would print repr(message), quotes and \n escapes included
        return self.message


def _shape_of(value):
    if isinstance(value, Mapping):
        return "a dict"
    shape = getattr(value, "shape", None)
    if shape is None:
        try:
            shape = np.shape(value)
        except Exception:
            return type(value).__name__
    return tuple(int(n) for n in shape)


def _listing(title, lines, limit=20):
    shown = [f"    {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"    ... and {len(lines) - limit} more")
    return [f"  {title} ({len(lines)}):"] + shown


def check_state_dict(expected, got, *, strict=True, name="model"):
    """Compare a state dict ``got`` with the ``expected`` names and shapes; raise on a mismatch.

    ``expected`` maps each name to a shape tuple (or to an array/tensor, whose ``.shape``
    is used). Wrongly shaped entries always raise; missing and unexpected names raise
    only when ``strict``. The error, a :class:`StateDictMismatchError` (both a KeyError
    and a ValueError), lists every problem. Returns ``(missing, unexpected)`` name lists.

    Example:
        >>> check_state_dict({"fc.weight": (10, 84), "fc.bias": (10,)},
        ...                  {"fc.weight": np.zeros((10, 80)), "fc.extra": np.zeros(3)})
        Traceback (most recent call last):
        gpunet.serialization.StateDictMismatchError: error(s) loading state dict into model:
          missing (1):
            fc.bias (expected shape (10,))
          unexpected (1):
            fc.extra (shape (3,))
          wrong shape (1):
            fc.weight: expected (10, 84), got (10, 80)
    """
    if not isinstance(got, Mapping):
        raise TypeError(f"check_state_dict: got must be a dict of arrays; got {type(got).__name__}")
    want = {k: tuple(int(n) for n in getattr(v, "shape", v)) for k, v in expected.items()}
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    mismatched = []
    for k, shape in want.items():
        if k in got:
            actual = _shape_of(got[k])
            if actual != shape:
                mismatched.append((k, shape, actual))
    if mismatched or (strict and (missing or unexpected)):
        lines = [f"error(s) loading state dict into {name}:"]
        if strict and missing:
            lines += _listing("missing", [f"{k} (expected shape {want[k]})" for k in missing])
        if strict and unexpected:
            lines += _listing("unexpected", [f"{k} (shape {_shape_of(got[k])})" for k in unexpected])
        if mismatched:
            lines += _listing("wrong shape", [f"{k}: expected {s}, got {a}" for k, s, a in mismatched])
        raise StateDictMismatchError("\n".join(lines), missing, unexpected, mismatched)
    return missing, unexpected
