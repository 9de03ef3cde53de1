"""Whole modules in a checkpoint, as PyTorch 2.6+ treats them: ``gn.save(model, f)`` pickles the
module, and ``gn.load(f)`` rebuilds it only from classes the caller trusts.

``gn.load`` never imports or runs code named by a file.  A pickled module names its classes
(``model.RNNModel``, ``gpunet.nn.layers.Linear``) and, like ``torch.load(weights_only=True)``,
``gn.load`` refuses each one that is not allow-listed, in one line that says how to allow it:
``gn.serialization.add_safe_globals([...])`` for the whole process, or
``with gn.serialization.safe_globals([...]):`` around the load.  Saving a ``state_dict()``
needs neither, and is what PyTorch's own docs advise.

Example:
    >>> import io
    >>> buf = io.BytesIO()
    >>> gn.save(gn.nn.Linear(2, 1), buf)
    >>> with gn.serialization.safe_globals([gn.nn.Linear]):
    ...     gn.load(io.BytesIO(buf.getvalue())).weight.shape
    gpunet.Size([1, 2])
"""
from __future__ import annotations

import contextvars
import sys
import types

__all__ = ["add_safe_globals", "clear_safe_globals", "get_safe_globals", "safe_globals"]

_PROCESS: dict[str, object] = {}
_SCOPED = contextvars.ContextVar("gpunet_safe_globals", default=())


def _key(entry):
    """(name, object) of an allow-list entry: an object, or (object, "module.name") as in torch."""
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
        return entry[1], entry[0]
    name = getattr(entry, "__qualname__", None)
    module = getattr(entry, "__module__", None)
    if not (isinstance(name, str) and isinstance(module, str)):
        raise TypeError(f"safe globals: expected classes or functions (or (obj, 'module.name') pairs), "
                        f"got {entry!r}")
    return f"{module}.{name}", entry


def add_safe_globals(safe_globals):
    """Trust these classes/functions in every later ``gn.load`` of this process (torch's name)."""
    _PROCESS.update(_key(e) for e in safe_globals)


def clear_safe_globals():
    """Forget what :func:`add_safe_globals` trusted."""
    _PROCESS.clear()


def get_safe_globals():
    """What is trusted now, process-wide and in the enclosing :class:`safe_globals` blocks."""
    return list(_PROCESS.values()) + [obj for _, obj in _SCOPED.get()]


class safe_globals:  # noqa: N801 - PyTorch's name; a context manager
    """Trust these classes/functions in ``gn.load`` inside the ``with`` block only."""

    def __init__(self, safe_globals):
        self._entries = tuple(_key(e) for e in safe_globals)
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_SCOPED.set(_SCOPED.get() + self._entries))
        return self

    def __exit__(self, *exc):
        _SCOPED.reset(self._tokens.pop())


def lookup(module, name):
    """The trusted object saved as ``module.name``, or None."""
    key = f"{module}.{name}"
    for k, obj in reversed(_SCOPED.get()):
        if k == key:
            return obj
    return _PROCESS.get(key)


def refusal(module, name, where):
    """The one-line message for a global nobody trusted."""
    short = name.rsplit(".", 1)[-1]
    return (f"load: {where}: Unsupported global: GLOBAL {module}.{name} was not an allowed global by "
            f"default; if you trust it, use gn.serialization.add_safe_globals([{short}]) or the "
            f"gn.serialization.safe_globals([{short}]) context manager, or save the model's "
            "state_dict() instead (gn.load reads tensors, arrays, numbers and strings and never runs "
            "code from a file)")


def is_module(obj):
    """True for an ``nn.Module`` instance (found by its methods: nn imports this package)."""
    return not isinstance(obj, type) and callable(getattr(obj, "state_dict", None)) \
        and callable(getattr(obj, "named_parameters", None))


def named_global(obj):
    """(module, qualname) of a class or function reachable by that name, else None."""
    if not isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        return None
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    found = sys.modules.get(module or "")
    for part in name.split("."):
        found = getattr(found, part, None)
    return (module, name) if found is obj and "<" not in name else None
