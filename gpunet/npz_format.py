"""The ``.npz`` files of ``gn.save``: a nested state flattened to dotted array names plus a JSON
``"__gpunet_meta__"`` entry describing the structure, and read back the same way."""

import json
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from . import backends, torch_format

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
    if arr is None and callable(getattr(obj, "state_dict", None)) and not isinstance(obj, type):
        raise torch_format.unsupported(obj, repr(name))
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


_BAD_FILE = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def _load_npz(fh, name):
    try:
        z = np.load(fh, allow_pickle=False)
    except _BAD_FILE as e:
        raise ValueError(f"load: {name} is not a readable .npz state dict ({e})") from e
    try:
        with z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # a damaged member can fail in zipfile, zlib or NumPy's header parser
        raise ValueError(f"load: {name} is not a readable .npz state dict ({e})") from e
    meta = arrays.pop(META_KEY, None)
    if meta is None:
        return arrays
    try:
        info = json.loads(str(meta[()]))
        tree = info["tree"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"load: {name} has an unreadable {META_KEY!r} entry ({e})") from e
    if info.get("format") != _FORMAT or info.get("version", 0) > _VERSION:
        raise ValueError(
            f"load: {name} is format {info.get('format')!r} version {info.get('version')!r}; "
            f"this gpunet reads {_FORMAT!r} up to version {_VERSION}"
        )
    used = set()
    result = _rebuild(tree, arrays, used)
    extra = sorted(set(arrays) - used)
    if extra:
        raise ValueError(f"load: {name} has arrays the metadata does not describe: {extra} (corrupt file?)")
    return result
