"""One Function subclass per op, grouped by family; users call them through gpunet.functional.

Example:
    >>> from gpunet import ops
    >>> ops.activation.ReLU.apply(gn.tensor([-1.0, 2.0]))
    tensor([0., 2.], backend='numpy')
"""
from . import activation, conv, indexing, loss, math, normalization, pooling, recurrent  # noqa: F401
