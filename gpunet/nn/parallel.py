"""``gn.nn.parallel``: PyTorch's single-process ``DataParallel`` and ``data_parallel``, on one device.

gpunet drives one device per process, so these run the module where its parameters are, as
PyTorch's do when they are given a single GPU (or find none): the inputs go to the module's
device and the module runs on them whole. ``state_dict()`` keys carry the ``module.`` prefix, as
PyTorch's. ``device_ids`` naming several devices is an error: train on several GPUs (or
machines) with one process each and ``gn.distributed.DataParallel``.

Example:
    >>> net = nn.DataParallel(nn.Linear(4, 2))
    >>> list(net.state_dict()), net(gn.randn(3, 4)).shape
    (['module.weight', 'module.bias'], gpunet.Size([3, 2]))
    >>> nn.parallel.data_parallel(nn.Linear(4, 2), gn.randn(3, 4)).shape
    gpunet.Size([3, 2])
"""
from __future__ import annotations

from ..backends.device import device as _device
from ..tensor import Tensor
from .module import Module

__all__ = ["DataParallel", "data_parallel"]


def _index(d, what, name):
    """The GPU index that ``d`` (an int, a ``gn.device`` or a device string) names; -1: the CPU."""
    if isinstance(d, int) and not isinstance(d, bool):
        return d
    try:
        dev = _device(d)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"{name}: {what} must be device indices or devices, got {d!r} ({exc})") from None
    return -1 if dev.type == "cpu" else (dev.index or 0)


def _check_devices(device_ids, output_device, name):
    """The one device index in use (0), or raise naming why several or another cannot be."""
    if device_ids is not None and not isinstance(device_ids, (list, tuple)):
        raise TypeError(f"{name}: device_ids must be a list of device indices, got {type(device_ids).__name__}")
    ids = sorted({_index(d, "device_ids", name) for d in (device_ids or [])})
    if len(ids) > 1:
        raise ValueError(f"{name}: device_ids={list(device_ids)!r} names {len(ids)} devices, but gpunet "
                         "drives one device per process; for several GPUs run one process per GPU "
                         "with gn.distributed.DataParallel (e.g. mpiexec -n 2 python train.py)")
    outs = [] if output_device is None else [_index(output_device, "output_device", name)]
    for i in ids + outs:
        if i not in (0, -1):
            raise ValueError(f"{name}: device {i} is not available: gpunet drives cuda:0 (or the CPU) in "
                             "each process; choose the GPU with CUDA_VISIBLE_DEVICES")


def _module_backend(module):
    return next((t.backend for t in list(module.parameters()) + list(module.buffers())), None)


def _to(obj, backend):
    """``obj`` with every Tensor in it (tuples, lists, dicts too) on ``backend`` (PyTorch's scatter)."""
    if isinstance(obj, Tensor):
        return obj if backend is None or obj.backend is backend else obj.to(backend)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(v, backend) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _to(v, backend)) for k, v in obj.items())
    return obj


class DataParallel(Module):
    """``DataParallel(module, device_ids=None, output_device=None, dim=0)``: ``module`` run on
    the one device (PyTorch's class given one GPU); ``.module`` is the wrapped model.

    ``device_ids`` is ``[0]`` when the module is on the GPU and ``[]`` on the CPU, as PyTorch's
    attribute reads on those machines; ``dim`` (the batch dimension) is kept for PyTorch's signature.

    Example:
        >>> net = nn.DataParallel(model)
        >>> net(x).shape, net.module is model
        (gpunet.Size([4, 10]), True)
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be a gpunet nn.Module, got {type(module).__name__}")
        _check_devices(device_ids, output_device, "DataParallel")
        self.module = module
        self.dim = dim
        be = _module_backend(module)
        self.device_ids = [0] if be is not None and be.name == "cuda" else []
        self.output_device = self.device_ids[0] if self.device_ids else None

    def forward(self, *inputs, **kwargs):
        be = _module_backend(self.module)
        return self.module(*_to(inputs, be), **_to(kwargs, be))


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """``module(*inputs, **module_kwargs)`` on the module's device, as PyTorch's ``data_parallel``
    with one GPU; ``inputs`` is a tuple of arguments or one argument.

    Example:
        >>> nn.parallel.data_parallel(model, x, device_ids=[0]).shape
        gpunet.Size([4, 10])
    """
    if not isinstance(module, Module):
        raise TypeError(f"data_parallel: module must be a gpunet nn.Module, got {type(module).__name__}")
    _check_devices(device_ids, output_device, "data_parallel")
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    be = _module_backend(module)
    return module(*_to(inputs, be), **_to(dict(module_kwargs or {}), be))
