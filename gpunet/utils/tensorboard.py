"""``gpunet.utils.tensorboard.SummaryWriter``: PyTorch's TensorBoard logger, over ``tensorboardX``.

A thin subclass of ``tensorboardX.SummaryWriter`` (``pip install "gpunet[tensorboard]"``) whose
``add_*`` methods take gpunet Tensors: a 0-d tensor is logged as its number, any other as its
NumPy array. Event files land in ``log_dir`` (default ``runs/<date>_<host>``), for
``tensorboard --logdir runs``.

Example:
    >>> import tempfile
    >>> from gpunet.utils.tensorboard import SummaryWriter
    >>> writer = SummaryWriter(log_dir=tempfile.mkdtemp())
    >>> writer.add_scalar("loss", loss_fn(model(x), y), global_step=0)
    >>> writer.add_histogram("fc.weight", model[4].weight, 0)
    >>> writer.close()
"""
from __future__ import annotations

import functools

try:
    import tensorboardX
except ImportError:
    raise ImportError('gpunet.utils.tensorboard needs tensorboardX: pip install tensorboardX '
                      '(or pip install "gpunet[tensorboard]")') from None

from ..tensor import Tensor

__all__ = ["SummaryWriter"]


def _plain(value):
    """A gpunet Tensor as a number (0-d) or a NumPy array; dicts, lists and tuples through."""
    if isinstance(value, Tensor):
        return value.item() if value.ndim == 0 else value.numpy()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, Tensor) for v in value):
        return type(value)(_plain(v) for v in value)
    return value


def _taking_tensors(name):
    base = getattr(tensorboardX.SummaryWriter, name)

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        return base(self, *map(_plain, args), **{k: _plain(v) for k, v in kwargs.items()})

    method.__doc__ = f"tensorboardX's ``{name}``, gpunet Tensors read back to the host first."
    del method.__wrapped__  # so doctest and help() read this docstring, not tensorboardX's
    return method


_METHODS = ("add_scalar", "add_scalars", "add_histogram", "add_histogram_raw", "add_image",
            "add_images", "add_image_with_boxes", "add_pr_curve", "add_embedding", "add_hparams",
            "add_mesh", "add_video", "add_audio")


class SummaryWriter(tensorboardX.SummaryWriter):
    """``SummaryWriter(log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
    filename_suffix="")`` as PyTorch's; every ``add_*`` method also takes gpunet Tensors.

    Example:
        >>> import tempfile
        >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
        ...     writer.add_scalars("loss", {"train": gn.tensor(0.5), "val": 0.7}, 1)
    """


for _name in _METHODS:
    if hasattr(tensorboardX.SummaryWriter, _name):
        setattr(SummaryWriter, _name, _taking_tensors(_name))
