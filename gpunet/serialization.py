"""Save and load state dicts as ``.npz`` (or ``.safetensors``) files, written atomically.

Format: a standard NumPy ``.npz`` (a zip of ``.npy`` files), readable without gpunet::

    weights = numpy.load("model.npz")      # weights["conv1.weight"] is an ndarray

* A flat dict of arrays/tensors (a model's ``state_dict()``) is stored as exactly its
  keys, nothing else.
* Anything richer (nested dicts and lists, int keys, Python scalars, strings, None, as
  in an optimiser's state dict) is flattened to dotted keys (``"state.0.exp_avg"``,
  ``"param_groups.0.lr"``; numbers become 0-d arrays) plus one extra entry
  ``"__gpunet_meta__"``: a 0-d string array holding JSON that describes the structure,
  so that ``load`` rebuilds the same nested object.

Values may be NumPy arrays, NumPy scalars, Python bool/int/float/str/None, or objects
with a ``.numpy()`` method (gpunet tensors, on any device: saved from host memory).
Tensors come back as NumPy arrays. Files are written to a temporary file in the
same folder, fsynced and renamed over ``path``: a crash mid-save leaves the last good
file untouched (at worst a stray hidden ``.<name>.<pid>.<hex>.tmp`` file beside it).
"""

import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from . import backends

__all__ = ["save", "load", "check_state_dict", "StateDictMismatchError", "META_KEY"]

META_KEY = "__gpunet_meta__"
_FORMAT = "gpunet.state_dict.npz"
_VERSION = 1
_INT64 = np.iinfo(np.int64)


def _to_host(value):
    """A NumPy array for an array-like leaf, or None if ``value`` is not one."""
    if isinstance(value, np.ndarray) or callable(getattr(value, "numpy", None)) \
            or backends.is_device_array(value):  # a Tensor / Parameter, or a raw CuPy array
        return backends.to_host(value)
    return None


def _flatten(obj, name, arrays):
    """Put obj's arrays into ``arrays`` under dotted names; return its JSON structure node."""

    def put(arr):
        if name in arrays or name == META_KEY:
            raise ValueError(f"save: two entries flatten to the same name {name!r}; rename one of the keys")
        if arr.dtype.hasobject:
            raise TypeError(f"save: {name!r} is an object array; only numeric/bool/string arrays can be saved")
        arrays[name] = arr
        return name

    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be str or int; got {k!r} ({type(k).__name__}) under {name!r}")
            child = f"{name}.{k}" if name else str(k)
            items.append([k, "s" if isinstance(k, str) else "i", _flatten(v, child, arrays)])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"t": kind, "items": [_flatten(v, f"{name}.{i}" if name else str(i), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, bool):
        return {"t": "bool", "key": put(np.array(obj))}
    if isinstance(obj, int):
        if _INT64.min <= obj <= _INT64.max:
            return {"t": "int", "key": put(np.array(obj, dtype=np.int64))}
        return {"t": "json", "value": obj}
    if isinstance(obj, float):
        return {"t": "float", "key": put(np.array(obj, dtype=np.float64))}
    if obj is None or isinstance(obj, str):
        return {"t": "json", "value": obj}
    if isinstance(obj, np.generic):
        return {"t": "npscalar", "key": put(np.asarray(obj))}
    arr = _to_host(obj)
    if arr is None:
        raise TypeError(
            f"save: {name or 'state_dict'!r} is a {type(obj).__name__}; values must be arrays, tensors, "
            "dicts, lists, tuples, bool/int/float/str/None"
        )
    return {"t": "array", "key": put(arr)}


def _is_plain(tree):
    """True for a flat {str: array} dict, which is saved with no metadata entry."""
    return all(kind == "s" and node["t"] == "array" for _, kind, node in tree["items"])


def _write_npz(f, arrays, compress):
    """Write ``arrays`` to the open binary file ``f`` in NumPy's npz layout."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=compression, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, arrays, compress, write=None):
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
            (write or _write_npz)(f, arrays, compress)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def save(state_dict, path, *, compress=False):
    """Save a (possibly nested) state dict to ``path`` as an ``.npz`` file, atomically.

    ``path`` is used as given (no ``.npz`` is appended). ``compress=True`` deflates the arrays.

    Example:
        >>> save(model.state_dict(), "lenet.npz")                                   # doctest: +SKIP
        >>> save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, "ckpt.npz")  # doctest: +SKIP
        >>> numpy.load("lenet.npz")["conv1.weight"].shape                           # doctest: +SKIP
        (6, 1, 5, 5)
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: state_dict must be a dict; got {type(state_dict).__name__}")
    path = os.fspath(path)
    arrays = {}
    tree = _flatten(state_dict, "", arrays)
    if path.endswith(".safetensors"):
        if not _is_plain(tree):
            raise ValueError(f"save: {path}: a .safetensors file holds a flat dict of arrays (a "
                             "model's state_dict); save nested checkpoints as .npz")
        return _atomic_write(path, arrays, compress, _write_safetensors)
    if not _is_plain(tree):
        meta = {"format": _FORMAT, "version": _VERSION, "tree": tree}
        arrays[META_KEY] = np.array(json.dumps(meta, allow_nan=True))
    _atomic_write(path, arrays, compress)


def _rebuild(node, arrays, used):
    t = node["t"]
    if t == "dict":
        return {(k if kind == "s" else int(k)): _rebuild(v, arrays, used) for k, kind, v in node["items"]}
    if t in ("list", "tuple"):
        items = [_rebuild(v, arrays, used) for v in node["items"]]
        return items if t == "list" else tuple(items)
    if t == "json":
        return node["value"]
    key = node["key"]
    if key not in arrays:
        raise ValueError(f"load: the metadata names array {key!r} but the file has no such entry (corrupt file?)")
    used.add(key)
    arr = arrays[key]
    if t == "array":
        return arr
    if t == "npscalar":
        return arr[()]
    if t in ("bool", "int", "float"):
        return {"bool": bool, "int": int, "float": float}[t](arr[()])
    raise ValueError(f"load: unknown node type {t!r} in the metadata (file written by a newer gpunet?)")


def _safetensors_numpy():
    try:
        from safetensors import numpy as st
    except ImportError:
        raise ImportError("reading or writing .safetensors files needs the safetensors package: "
                          "pip install 'gpunet[safetensors]'") from None
    return st


def _write_safetensors(f, arrays, compress):
    f.write(_safetensors_numpy().save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))


def load(path):
    """Load a file written by :func:`save` (or any ``.npz`` or ``.safetensors`` file, PyTorch's
    ``safetensors.torch.save_file`` included); arrays come back as NumPy arrays.

    Example:
        >>> state = load("lenet.npz")            # doctest: +SKIP
        >>> model.load_state_dict(state)         # doctest: +SKIP
    """
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        st = _safetensors_numpy()
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        try:
            return st.load_file(path)
        except Exception as e:  # safetensors raises its own error types for a damaged file
            raise ValueError(f"load: {path} is not a readable .safetensors file ({e})") from e
    bad_file = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except bad_file as e:
        raise ValueError(f"load: {path} is not a readable .npz state dict ({e})") from e
    if not hasattr(z, "files"):  # a plain array from a .npy file
        raise ValueError(f"load: {path} is a single .npy array, not an .npz state dict")
    try:
        with z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # a damaged member can fail in zipfile, zlib or NumPy's header parser
        raise ValueError(f"load: {path} is not a readable .npz state dict ({e})") from e
    meta = arrays.pop(META_KEY, None)
    if meta is None:
        return arrays
    try:
        info = json.loads(str(meta[()]))
        tree = info["tree"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"load: {path} has an unreadable {META_KEY!r} entry ({e})") from e
    if info.get("format") != _FORMAT or info.get("version", 0) > _VERSION:
        raise ValueError(
            f"load: {path} is format {info.get('format')!r} version {info.get('version')!r}; "
            f"this gpunet reads {_FORMAT!r} up to version {_VERSION}"
        )
    used = set()
    result = _rebuild(tree, arrays, used)
    extra = sorted(set(arrays) - used)
    if extra:
        raise ValueError(f"load: {path} has arrays the metadata does not describe: {extra} (corrupt file?)")
    return result


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
