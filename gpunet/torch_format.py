"""PyTorch's checkpoint format (what ``torch.save`` writes), written and read without torch.

A zip with one folder (``archive/`` or the file's stem) of records: ``data.pkl`` (a protocol-2
pickle), ``byteorder``, ``data/<key>`` (each storage's raw little-endian bytes, stored at a
64-byte aligned offset), ``version``, ... .  A tensor is pickled as torch/serialization.py does,
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())``
with the persistent id ``("storage", torch.FloatStorage, key, "cpu", numel)``; the GLOBAL
opcodes for torch's names are written by hand.  Reading (``torch_format_reader.py``) goes through a restricted unpickler
that refuses every global but torch's tensor names, NumPy's array pickles, OrderedDict, set,
complex and bytes (as ``torch.load(weights_only=True)`` does).

Example:
    >>> from gpunet import torch_format_reader
    >>> buf = io.BytesIO()
    >>> write(buf, pack({"w": gn.ones(2, 3), "step": 3}))
    >>> torch_format_reader.read(zipfile.ZipFile(buf))["w"].shape
    gpunet.Size([2, 3])
"""
from __future__ import annotations

import functools
import io
import math
import pickle
import secrets
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from . import backends, trusted_globals
from .backends.device import device
from .size import Size
from .tensor import Tensor

_STORAGES = {"HalfStorage": "float16", "FloatStorage": "float32", "DoubleStorage": "float64",
             "CharStorage": "int8", "ShortStorage": "int16", "IntStorage": "int32",
             "LongStorage": "int64", "ByteStorage": "uint8", "BoolStorage": "bool",
             "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_STORAGE_OF = {np.dtype(v): k for k, v in _STORAGES.items()}
_ALIGN, _CHUNK = 64, 1 << 24
_SUPPORTED = "tensors, NumPy arrays, dict/OrderedDict/list/tuple/set, bool/int/float/complex/str/bytes/None"


class UnsupportedGlobalError(pickle.UnpicklingError, ValueError):
    """A pickle names a global that gn.load does not allow (it never runs code from a file)."""


class _Name(tuple):
    """(module, name) of a torch global, pickled as a GLOBAL opcode (torch need not exist)."""

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise TypeError(f"{'.'.join(self)} is a stand-in for pickling")


@functools.lru_cache(maxsize=None)
def _Global(module, name):  # noqa: N802 - one object per name, so the pickle memoizes it
    return _Name((module, name))


class _Reduce(tuple):
    """(func, args): pickled as ``func(*args)``."""


class _Object(tuple):
    """(class GLOBAL, state dict): a whole module, pickled as torch pickles one (NEWOBJ, BUILD)."""


class _Storage(tuple):
    """(flat array, key, storage type name): pickled as torch's persistent id."""


_REBUILD_V2 = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")


def unsupported(obj, where):
    """The one-line TypeError for an object gn.save cannot store (a whole module is named as such)."""
    name, has = type(obj).__name__, lambda a: not isinstance(obj, type) and callable(getattr(obj, a, None))
    if trusted_globals.is_module(obj):
        return TypeError(f"gn.save: {where} is a whole {name} module, which only a .pt file can hold; save "
                         "model.state_dict() instead and load it with model.load_state_dict(gn.load(path))")
    if has("state_dict"):
        return TypeError(f"gn.save: {where} is a {name} object; save its .state_dict() instead and "
                         "restore it with .load_state_dict()")
    return TypeError(f"gn.save: {where} is of type {type(obj).__module__}.{type(obj).__qualname__}; "
                     f"gn.save stores {_SUPPORTED}")


class _Packer:
    """Turns an object into the stand-ins the pickler writes, sharing storages as torch does."""

    def __init__(self):
        self.storages, self._by_root, self._done = [], {}, {}  # obj (alive in the caller) is kept whole

    def prep(self, obj, where):
        t = type(obj)
        if obj is None or t in (bool, int, float, complex, str, bytes):
            return obj
        if id(obj) in self._done:  # the same object twice stays one object (and cycles end)
            return self._done[id(obj)]
        if t is list:
            out = self._done[id(obj)] = []
            out.extend(self.prep(v, f"{where}[{i}]") for i, v in enumerate(obj))
            return out
        if t in (dict, OrderedDict):
            out = self._done[id(obj)] = t()
            for k, v in obj.items():
                out[self.prep(k, f"a key of {where}")] = self.prep(v, f"{where}[{k!r}]")
            return out
        out = t(self.prep(v, f"{where}[{i}]") for i, v in enumerate(obj)) if t in (tuple, set, frozenset) \
            else self._leaf(obj, where)
        self._done[id(obj)] = out
        return out

    def _leaf(self, obj, where):
        if isinstance(obj, Tensor):
            if any(c.__name__ == "Parameter" for c in type(obj).__mro__):  # as torch pickles one
                plain = self._tensor(obj._data, obj.backend, False, where)
                return _Reduce((_REBUILD_PARAMETER, (plain, bool(obj.requires_grad), OrderedDict())))
            return self._tensor(obj._data, obj.backend, obj.requires_grad, where)
        if isinstance(obj, np.ndarray) and (type(obj) is np.ndarray or isinstance(obj, np.memmap)):
            if obj.dtype.hasobject:
                raise TypeError(f"gn.save: {where} is an object array; only numeric/bool/string arrays can be saved")
            return np.asarray(obj)
        if isinstance(obj, np.generic) or type(obj) is bytearray:
            return obj
        if isinstance(obj, np.dtype):
            return _Global("torch", str(obj)) if obj in _STORAGE_OF else obj
        if type(obj) is Size:
            return _Reduce((_Global("torch", "Size"), (tuple(obj),)))
        if type(obj) is device:
            return _Reduce((_Global("torch", "device"), (obj.type,) if obj.index is None else (obj.type, obj.index)))
        if backends.is_device_array(obj):
            return backends.to_host(obj)
        if trusted_globals.is_module(obj):
            return self._module(obj, where)
        named = trusted_globals.named_global(obj)  # a class or function a module holds (activation=F.relu)
        if named is not None:
            return _Global(*named)
        if type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach"):  # a torch tensor
            host = obj.detach().cpu().numpy()
            return self._tensor(host, backends.backend("numpy"), obj.requires_grad, where)
        raise unsupported(obj, where)

    def _module(self, obj, where):
        named = trusted_globals.named_global(type(obj))
        if named is None:
            raise TypeError(f"gn.save: {where} is a {type(obj).__qualname__} module whose class cannot be found "
                            "by name (defined inside a function?); save its state_dict() instead")
        out = self._done[id(obj)] = _Object((_Global(*named), {}))  # before its state: cycles end here
        out[1].update((k, self.prep(v, f"{where}.{k}")) for k, v in vars(obj).items())
        return out

    def _tensor(self, array, backend, requires_grad, where):
        arr = array if isinstance(array, np.ndarray) else backend.to_host(array)
        name = _STORAGE_OF.get(arr.dtype.newbyteorder("="))
        if name is None:
            raise TypeError(f"gn.save: {where} has dtype {arr.dtype}; tensors can be "
                            f"{', '.join(sorted(str(d) for d in _STORAGE_OF))}")
        root = arr
        while isinstance(root.base, np.ndarray):
            root = root.base
        found = _view_of(root, arr)
        if found is None:  # its own contiguous little-endian copy
            flat = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).reshape(-1)
            storage, offset = self._new(flat, name), 0
            strides = _contiguous(arr.shape)
        else:
            offset, strides = found
            storage = self._by_root.get(id(root))
            if storage is None:
                flat = (root if root.flags.c_contiguous else root.T).reshape(-1)
                storage = self._by_root[id(root)] = self._new(flat, name)
        return _Reduce((_REBUILD_V2, (storage, offset, tuple(arr.shape), strides, bool(requires_grad),
                                      OrderedDict())))

    def _new(self, flat, name):
        self.storages.append(_Storage((flat, str(len(self.storages)), name)))
        return self.storages[-1]


def _contiguous(shape):
    return tuple(math.prod(max(n, 1) for n in shape[i + 1:]) for i in range(len(shape)))


def _view_of(root, arr):
    """(offset, strides) in elements of ``arr`` inside the memory of its base ``root``, or None."""
    item, little = arr.itemsize, arr.dtype.newbyteorder("<")
    if arr.size == 0 or root.dtype != arr.dtype or arr.dtype != little or \
            not (root.flags.c_contiguous or root.flags.f_contiguous):
        return None
    start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    if start < 0 or start % item or any(s < 0 or s % item for s in arr.strides):
        return None
    strides = tuple(s // item for s in arr.strides)
    if start // item + sum((n - 1) * s for n, s in zip(arr.shape, strides)) >= root.size:
        return None
    return start // item, strides


class _Pickler(pickle._Pickler):  # the Python pickler: its dispatch table can write GLOBALs by name
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_name(self, obj):
        self.write(pickle.GLOBAL + f"{obj[0]}\n{obj[1]}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[_Name] = _save_name

    def _save_object(self, obj):
        self.save(obj[0])
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj[1])
        self.write(pickle.BUILD)

    dispatch[_Object] = _save_object

    def persistent_id(self, obj):
        if type(obj) is _Storage:
            return ("storage", _Global("torch", obj[2]), obj[1], "cpu", int(obj[0].size))
        return None

    def reducer_override(self, obj):
        return tuple(obj) if type(obj) is _Reduce else NotImplemented


def pack(obj):
    """The records of a torch.save file for ``obj``, as [(name, bytes or array)]; raises TypeError
    (naming where) for anything PyTorch's ``weights_only`` loader could not read back."""
    packer = _Packer()
    ready = packer.prep(obj, "obj")
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(ready)
    records = [("data.pkl", buf.getvalue()), (".format_version", b"1"), (".storage_alignment", b"64"),
               ("byteorder", b"little")]
    records += [(f"data/{key}", flat) for flat, key, _ in packer.storages]
    return records + [("version", b"3\n"), (".data/serialization_id", b"%040d" % secrets.randbits(128))]


class _Counter(io.RawIOBase):
    """Unseekable and counting: zipfile then writes data descriptors, as torch's writer does."""

    def __init__(self, f):
        super().__init__()
        self.f, self.n = f, 0

    def write(self, b):
        self.f.write(b)
        self.n += memoryview(b).nbytes
        return memoryview(b).nbytes

    def tell(self):
        return self.n


def write(f, records, archive="archive"):
    """Write ``pack()``'s records to the binary file ``f`` as a zip, each stored and 64-byte aligned."""
    out = _Counter(f)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in records:
            name = f"{archive}/{name}"
            view = memoryview(data.view(np.uint8) if isinstance(data, np.ndarray) else data)
            zip64 = view.nbytes * 1.05 > zipfile.ZIP64_LIMIT
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.file_size = view.nbytes
            pad = -(out.tell() + 30 + len(name.encode("utf-8")) + (20 if zip64 else 0) + 4) % _ALIGN
            info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad  # torch's padding field
            with zf.open(info, "w", force_zip64=zip64) as w:
                for i in range(0, view.nbytes, _CHUNK):
                    w.write(view[i:i + _CHUNK])
            info.extra = b""  # the padding belongs in the local header only


# ------------------------------------------------------------------------------- reading

