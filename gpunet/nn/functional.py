"""``gpunet.nn.functional``: PyTorch's path to :mod:`gpunet.functional` (the same functions),
plus ``dropout2d`` (written beside ``nn.Dropout2d``).

Example:
    >>> import gpunet.nn.functional as F
    >>> F.relu is gn.functional.relu
    True
"""
from .. import functional as _functional

__all__ = [name for name in vars(_functional) if not name.startswith("_")
           and callable(getattr(_functional, name))]
globals().update({name: getattr(_functional, name) for name in __all__})

from .layers import dropout2d  # noqa: E402  (beside nn.Dropout2d)

__all__ = __all__ + ["dropout2d"]
