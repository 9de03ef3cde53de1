"""Reading PyTorch's checkpoint format (``torch_format.py`` writes it) without torch.

A restricted unpickler: every global but torch's tensor names, NumPy's array pickles,
OrderedDict, set, complex and bytes is refused unless ``gn.serialization.add_safe_globals``
allowed it (as ``torch.load(weights_only=True)`` does); each storage is read from its
``data/<key>`` record into one host array, CRC-checked, and tensors are strided views of it.

Example:
    >>> import io, zipfile
    >>> from gpunet import torch_format
    >>> buf = io.BytesIO()
    >>> torch_format.write(buf, torch_format.pack({"w": gn.ones(2, 3)}))
    >>> read(zipfile.ZipFile(buf))["w"].shape
    gpunet.Size([2, 3])
"""
from __future__ import annotations

import _compat_pickle
import codecs
import io
import math
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from . import backends, trusted_globals
from .backends.device import device
from .size import Size
from .tensor import Tensor
from .torch_format import _CHUNK, _STORAGES, UnsupportedGlobalError, _contiguous


class _StorageType(tuple):
    """(torch's name, NumPy dtype) of a storage class such as torch.FloatStorage."""


class _Loaded(tuple):
    """(flat host array, Backend) of one storage read from the archive."""


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, _Loaded) or metadata:
        raise ValueError(f"a tensor with storage {type(storage).__name__} and metadata {metadata!r} "
                         "(conjugate/negative views are not supported)")
    arr, be = storage[0], storage[1]
    arr = _strided(arr, offset, size, stride)
    return Tensor._wrap(arr if be.name == "numpy" else be.asarray(arr), be, bool(requires_grad))


def _rebuild_parameter(data, requires_grad, hooks, state=None):
    """A gpunet Parameter (found as Tensor's subclass: nn imports this package, not the reverse)."""
    if not isinstance(data, Tensor):
        raise ValueError(f"a Parameter of {type(data).__name__}")
    cls = next((c for c in Tensor.__subclasses__() if c.__name__ == "Parameter"), Tensor)
    return cls._wrap(data._data, data.backend, bool(requires_grad))


def _rebuild_from_type_v2(func, new_type, args, state):  # extra Python attributes are dropped
    if func not in (_rebuild_tensor_v2, _rebuild_parameter):
        raise ValueError(f"_rebuild_from_type_v2 with {func!r}")
    t = func(*args)
    return _rebuild_parameter(t, t.requires_grad, None) if new_type == "Parameter" else t


def _strided(arr, offset, size, stride):
    """The tensor's elements of storage ``arr``: a view when contiguous, else a copy."""
    ok = isinstance(offset, int) and offset >= 0 and isinstance(size, tuple) and isinstance(stride, tuple) \
        and len(size) == len(stride) and all(isinstance(n, int) and n >= 0 for n in size + stride)
    if not ok:
        raise ValueError(f"a tensor with offset {offset!r}, size {size!r}, stride {stride!r}")
    if 0 in size:
        return np.empty(size, arr.dtype)
    if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= arr.size:
        raise ValueError(f"a tensor (offset {offset}, size {size}, stride {stride}) reaches past the end "
                         f"of its storage of {arr.size} elements")
    if tuple(stride) == _contiguous(size):
        return arr[offset:offset + math.prod(size)].reshape(size)
    view = np.lib.stride_tricks.as_strided(arr[offset:], size, [s * arr.itemsize for s in stride])
    return np.array(view)


def _encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8", "ascii"):
        raise ValueError(f"_codecs.encode of {type(obj).__name__} with {encoding!r}")
    return codecs.encode(obj, encoding, errors)


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise ValueError(f"numpy _reconstruct of {subtype!r}")
    return _NP_RECONSTRUCT(subtype, shape, dtype)


_NP_RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]
_ALLOWED = {
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2, "torch._utils._rebuild_tensor": _rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Tensor": "Tensor", "torch.nn.parameter.Parameter": "Parameter",  # types, as plain names
    "torch.Size": Size, "torch.device": device, "collections.OrderedDict": OrderedDict,
    "builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex,
    "builtins.bytes": bytes, "builtins.bytearray": bytearray, "_codecs.encode": _encode,
    "numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype,
    "numpy.core.multiarray._reconstruct": _reconstruct, "numpy._core.multiarray._reconstruct": _reconstruct,
    "numpy.core.multiarray.scalar": np.float64(0).__reduce__()[0],
    "numpy._core.multiarray.scalar": np.float64(0).__reduce__()[0],
    **{f"torch.{k}": _StorageType((k, np.dtype(v))) for k, v in _STORAGES.items()},
    **{f"torch.{v}": np.dtype(v) for v in _STORAGES.values()},  # torch.float32 -> gn.float32
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, zf, prefix, byteorder, target, where):
        super().__init__(file)
        self._zf, self._prefix, self._byteorder = zf, prefix, byteorder
        self._target, self._where, self._storages = target, where, {}

    def find_class(self, module, name):
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 2's Python 2 names
            module, name = _compat_pickle.NAME_MAPPING[module, name]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get(f"{module}.{name}")
        if found is None:
            found = trusted_globals.lookup(module, name)
        if found is None:
            raise UnsupportedGlobalError(trusted_globals.refusal(module, name, self._where))
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise ValueError(f"unknown persistent id {pid!r}")
        _, (kind, native), key, location, numel = pid
        if key not in self._storages:
            name = f"{self._prefix}data/{key}"
            dtype = native.newbyteorder("<" if self._byteorder == "little" else ">")
            try:
                size = self._zf.getinfo(name).file_size
            except KeyError:
                raise ValueError(f"the pickle names storage {name!r}, which the archive lacks") from None
            if size != numel * dtype.itemsize:
                raise ValueError(f"{name} holds {size} bytes, not {numel} {kind} elements")
            arr = np.empty(numel, dtype)
            raw = memoryview(arr.view(np.uint8))
            with self._zf.open(name) as fh:  # zipfile checks the CRC as the last byte is read
                done = 0
                while done < size:
                    got = fh.readinto(raw[done:done + _CHUNK])
                    if not got:
                        raise ValueError(f"{name} ends after {done} of its {size} bytes")
                    done += got
            self._storages[key] = _Loaded((arr.astype(native, copy=False), self._target(location)))
        return self._storages[key]


def is_archive(names):
    """The name of the pickle when a zip's member names are a torch.save archive's, else None."""
    return next((n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)), None)


def read(zf, target=lambda location: backends.backend("numpy"), where="file"):
    """The object in the torch.save archive ``zf`` (an open ZipFile), its tensors as gpunet Tensors
    on the backend ``target(location)`` gives for each storage's saved location ("cpu", "cuda:0")."""
    names = zf.namelist()
    pkl = is_archive(names)
    prefix = pkl[:-len("data.pkl")]
    if prefix + "constants.pkl" in names:
        raise ValueError(f"load: {where} is a TorchScript archive (torch.jit.save); gn.load reads "
                         "torch.save files (save the model's state_dict() with torch.save)")
    try:
        order = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
        if order not in ("little", "big"):
            raise ValueError(f"unknown byteorder {order!r}")
        return _Unpickler(io.BytesIO(zf.read(pkl)), zf, prefix, order, target, where).load()
    except UnsupportedGlobalError:
        raise
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"load: {where} is a damaged torch.save file ({e})") from e
