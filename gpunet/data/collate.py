"""``default_collate`` and ``default_convert``: PyTorch's rules for making a batch from items.

``default_collate`` stacks a list of items into one batch, recursing into dicts, namedtuples,
tuples (which become lists, as in torch) and lists: gpunet Tensors and NumPy arrays are
stacked, NumPy scalars and Python numbers become 1-D Tensors (Python floats float64, ints
int64, bools bool), strings and bytes stay a list.  ``default_convert`` (the loader's
``collate_fn`` with ``batch_size=None``) turns the arrays of one item into Tensors.
Integer arrays become int64 Tensors (gpunet's integer dtype; torch keeps uint8/int32).

Internally the loader collates on the host (``_collate_host``, in its worker threads) and
moves the result to the backend (``_on_backend``, in the main thread).

Example:
    >>> from gpunet.data import default_collate
    >>> batch = default_collate([{"x": np.zeros(3, np.float32), "y": 1}, {"x": np.ones(3, np.float32), "y": 2}])
    >>> tuple(batch["x"].shape), batch["y"].tolist()
    ((2, 3), [1, 2])
"""
from __future__ import annotations

import collections.abc
import copy
import re

import numpy as np

from .. import backends
from ..tensor import Tensor, _host_array

__all__ = ["default_collate", "default_convert"]

_STR_OR_OBJECT = re.compile(r"[SaUO]")
_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def default_collate(batch):
    """A list of dataset items -> one batch of gpunet Tensors on the current default backend.

    Example:
        >>> x, y = default_collate([(np.float32([1, 2]), 0), (np.float32([3, 4]), 1)])
        >>> x.tolist(), y.tolist(), y.dtype
        ([[1.0, 2.0], [3.0, 4.0]], [0, 1], dtype('int64'))
    """
    return _on_backend(_collate_host(batch), backends.resolve(None))


def default_convert(data):
    """One item's NumPy arrays and scalars -> gpunet Tensors (Python numbers stay as they are).

    Example:
        >>> default_convert({"x": np.arange(3), "n": 5})
        {'x': tensor([0, 1, 2]), 'n': 5}
    """
    return _on_backend(_convert_host(data), backends.resolve(None))


def _rebuild(elem, values):
    """``values`` (one per entry of the sequence ``elem``) in ``elem``'s type, as torch does."""
    if isinstance(elem, tuple):
        return type(elem)(*values) if hasattr(elem, "_fields") else list(values)  # tuple -> list, as torch
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(values):
                clone[i] = v
            return clone
        return type(elem)(values)
    except TypeError:
        return list(values)


def _rebuild_mapping(elem, values):
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return dict(values)


def _stack(arrays, xp=np):
    try:
        return xp.stack(arrays)
    except ValueError as e:  # torch.stack raises RuntimeError
        shapes = sorted({tuple(a.shape) for a in arrays})
        raise RuntimeError(f"stack expects each tensor to be equal size, but got shapes {shapes}") from e


def _collate_host(batch):
    """``default_collate``'s structure with stacked host arrays (or backend Tensors) as leaves."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        be = elem.backend
        return Tensor._wrap(_stack([t._data if t.backend is be else be.asarray(t.numpy()) for t in batch],
                                   be.xp), be)
    if isinstance(elem, np.ndarray):
        if _STR_OR_OBJECT.search(elem.dtype.str) is not None:
            raise TypeError(_ERROR.format(elem.dtype))
        return _stack([np.asarray(b) for b in batch])
    if isinstance(elem, (np.bool_, np.number, np.object_)):
        return np.asarray(batch)
    if isinstance(elem, float):
        return np.asarray(batch, dtype=np.float64)
    if isinstance(elem, int):
        return np.asarray(batch, dtype=np.bool_ if isinstance(elem, bool) else np.int64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _rebuild_mapping(elem, {key: _collate_host([d[key] for d in batch]) for key in elem})
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return _rebuild(elem, [_collate_host(samples) for samples in zip(*batch)])
    raise TypeError(_ERROR.format(type(elem)))


def _convert_host(data):
    """``default_convert``'s structure, arrays still on the host."""
    if isinstance(data, (Tensor, np.ndarray)):
        return data  # string and object arrays are left alone by _on_backend
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return np.asarray(data)
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {key: _convert_host(data[key]) for key in data})
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild(data, [_convert_host(d) for d in data])
    return data


def _on_backend(obj, be, pin=None):
    """Host arrays in ``obj`` -> Tensors on ``be`` (Tensors moved there), the structure kept;
    ``pin``: None, or the backend's function copying a host array into page-locked memory."""
    if isinstance(obj, np.ndarray):
        if _STR_OR_OBJECT.search(obj.dtype.str) is not None:
            return obj  # default_convert leaves string and object arrays alone, as torch
        host = _host_array(obj, None)
        host = host if host.flags.c_contiguous else np.ascontiguousarray(host)
        return Tensor._wrap(be.asarray(host if pin is None else pin(host)), be)
    if isinstance(obj, Tensor):
        return obj if obj.backend is be else obj.to(be)
    if isinstance(obj, collections.abc.Mapping):
        return _rebuild_mapping(obj, {key: _on_backend(v, be, pin) for key, v in obj.items()})
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):  # strings collated inside a sequence
        return tuple(_on_backend(v, be, pin) for v in obj)
    if isinstance(obj, (list, tuple)):
        return _rebuild(obj, [_on_backend(v, be, pin) for v in obj])
    return obj

