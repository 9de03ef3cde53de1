"""``gn.Size``: the type of ``t.shape`` and ``t.size()``, a tuple that prints as PyTorch's does.

Example:
    >>> gn.zeros(2, 3).shape
    gpunet.Size([2, 3])
    >>> gn.zeros(2, 3).shape == (2, 3), gn.zeros(2, 3).size()[1:]
    (True, gpunet.Size([3]))
"""
from __future__ import annotations


class Size(tuple):
    """A tuple of dimension lengths; slicing, ``+`` and ``*`` give a Size again, as in PyTorch.

    Example:
        >>> gn.Size([2, 3]).numel()
        6
    """

    def __new__(cls, sizes=()):
        return super().__new__(cls, (int(n) for n in sizes))

    def __repr__(self):
        return f"gpunet.Size({list(self)})"

    __str__ = __repr__

    def __getitem__(self, index):
        out = super().__getitem__(index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple(self) * n)

    __rmul__ = __mul__

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        out = 1
        for n in self:
            out *= n
        return out

    def __reduce__(self):
        return (Size, (tuple(self),))
