"""``gpunet.nn.functional``: PyTorch's path to :mod:`gpunet.functional` (the same functions).

Example:
    >>> import gpunet.nn.functional as F
    >>> F.relu is gn.functional.relu
    True
"""
from .. import functional as _functional

__all__ = [name for name in vars(_functional) if not name.startswith("_")
           and callable(getattr(_functional, name))]
globals().update({name: getattr(_functional, name) for name in __all__})
