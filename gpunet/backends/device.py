"""``gn.device``: PyTorch's name for where a tensor lives, mapped onto gpunet's backends.

``device("cpu")`` is the NumPy backend and ``device("cuda")`` / ``device("cuda:0")`` the GPU
backend; gpunet's own names ``"numpy"`` and ``"cuda"`` are accepted too.  As in PyTorch, a
device equals another device of the same type and index (``device("cuda") !=
device("cuda:0")``), never a string.

Example:
    >>> gn.device("cuda:0")
    device(type='cuda', index=0)
    >>> gn.device("cpu").type, str(gn.device("cuda", 1))
    ('cpu', 'cuda:1')
"""
from __future__ import annotations

_TYPES = {"cpu": "cpu", "numpy": "cpu", "cuda": "cuda"}


class device:  # noqa: N801 - PyTorch's spelling
    """A device type ("cpu" or "cuda") and an optional index, parsed as PyTorch parses them."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 - PyTorch's argument name
        if isinstance(type, device):
            if index is not None:
                raise ValueError("device(): give an index or a device, not both")
            type, index = type.type, type.index
        elif isinstance(type, str):
            name, _, number = type.partition(":")
            if name not in _TYPES:
                raise RuntimeError(f"device(): expected one of 'cpu', 'cuda' (or gpunet's 'numpy'), "
                                   f"optionally with ':index', got {type!r}")
            if number:
                if index is not None:
                    raise RuntimeError(f"device(): {type!r} already has an index; got index={index!r} too")
                if not number.isdigit():
                    raise RuntimeError(f"device(): the index in {type!r} must be a non-negative int")
                index = int(number)
            type = _TYPES[name]
        else:
            raise TypeError(f"device(): expected a str or a device, got {type.__class__.__name__}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise RuntimeError(f"device(): index must be a non-negative int, got {index!r}")
        if type == "cpu" and index not in (None, 0):
            raise RuntimeError(f"device(): the cpu has only index 0, got {index}")
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("device objects are immutable")

    @property
    def backend_name(self) -> str:
        """The gpunet backend this device names: "numpy" for the cpu, "cuda" for the GPU."""
        return "numpy" if self.type == "cpu" else "cuda"

    def __eq__(self, other):
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


def of_backend(backend) -> device:
    """The device of a backend's arrays: cpu for NumPy, cuda:0 for the GPU backend."""
    return device("cpu") if backend.name == "numpy" else device("cuda", 0)
