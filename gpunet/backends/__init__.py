"""Backend selection: ``set_backend``, ``get_backend``, ``use_backend`` and ``GPUNET_BACKEND``.

Names: ``"numpy"``, ``"cuda"`` and ``"auto"`` (the default): ``auto`` picks ``cuda`` when
CuPy sees a usable GPU and ``numpy`` otherwise, and logs which and why once.  PyTorch's
``torch.backends.cuda``, ``.cudnn`` and ``.mps`` are here too (``gn.backends.cudnn.benchmark``).

Example:
    >>> import gpunet as gn
    >>> gn.set_backend("numpy")
    >>> gn.get_backend().name
    'numpy'
"""
from __future__ import annotations

import contextlib
import logging
import os

import numpy as np

from .base import Backend, simulator_on
from .device import device
from .numpy_backend import NumpyBackend

log = logging.getLogger("gpunet")

NAMES = ("numpy", "cuda", "auto")
_instances: dict[str, Backend] = {}
_current: Backend | None = None
auto_reason: str = ""


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine; the message says why."""


def cuda_unavailable_reason() -> str | None:
    """None when the ``cuda`` backend can run here, else what is missing and how to fix it."""
    try:
        from . import cuda_backend
    except ImportError as exc:  # the module itself failed to import
        return f"the cuda backend could not be imported ({exc})"
    return cuda_backend.unavailable_reason()


def _gpu_present() -> tuple[bool, str]:
    """Is a real GPU usable (never the simulator)?  Returns (yes, why)."""
    if simulator_on():
        return False, "NUMBA_ENABLE_CUDASIM is set (the simulator is for tests, not for training)"
    reason = cuda_unavailable_reason()
    if reason is None:
        return True, "CuPy sees a usable NVIDIA GPU"
    return False, reason


def backend(name: str) -> Backend:
    """The backend object for ``name`` ("numpy" | "cuda" | "auto"), created once.

    PyTorch's devices are accepted too, as ``gn.device`` parses them: "cpu" is the NumPy
    backend, "cuda:0" the GPU.
    """
    global auto_reason
    if isinstance(name, str) and name not in NAMES:
        try:
            name = device(name)
        except RuntimeError:
            raise ValueError(f"backend must be one of {NAMES} (or a device such as 'cpu' or "
                             f"'cuda:0'), got {name!r}") from None
    if isinstance(name, device):
        if name.type == "cuda" and name.index not in (None, 0):
            raise ValueError(f"{name}: gpunet drives one GPU per process (cuda:0); pick the GPU with "
                             "CUDA_VISIBLE_DEVICES, or use gn.distributed for several")
        name = name.backend_name
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"backend must be one of {NAMES}, got {name!r}")
    if name == "auto":
        ok, why = _gpu_present()
        chosen = "cuda" if ok else "numpy"
        if not auto_reason:
            auto_reason = f"auto backend: using {chosen!r} because {why}"
            log.info(auto_reason)
        name = chosen
    if name not in _instances:
        if name == "numpy":
            _instances[name] = NumpyBackend()
        else:
            reason = cuda_unavailable_reason()
            if reason is not None:
                raise BackendUnavailableError(f"the 'cuda' backend cannot run here: {reason}")
            from .cuda_backend import CudaBackend
            _instances[name] = CudaBackend()
        seed = new_backend_seed(name)
        if seed is not None:
            _instances[name].seed(seed)
    return _instances[name]


_manual_seed: int | None = None
_SEED_OFFSETS = {"numpy": 1, "cuda": 1}  # one stream: both backends draw the same numbers


def seed_all(seed: int) -> None:
    """Seed every backend's generator, and those created later, from ``gn.manual_seed``'s seed."""
    global _manual_seed
    _manual_seed = int(seed)
    for name, be in _instances.items():
        be.seed(new_backend_seed(name))


def new_backend_seed(name: str) -> int | None:
    """Seed for backend ``name`` after ``gn.manual_seed`` (None: unseeded)."""
    return None if _manual_seed is None else _manual_seed + _SEED_OFFSETS.get(name, 3)


def set_backend(name: str) -> None:
    """Make ``name`` the default backend for new tensors."""
    global _current
    _current = backend(name)


def get_backend() -> Backend:
    """The default backend (from ``GPUNET_BACKEND``, else ``auto``, on first use)."""
    global _current
    if _current is None:
        _current = backend(os.environ.get("GPUNET_BACKEND", "auto"))
    return _current


@contextlib.contextmanager
def use_backend(name: str):
    """``with gn.use_backend("numpy"): ...`` sets the default backend for the block."""
    global _current
    previous = _current
    _current = backend(name)
    try:
        yield _current
    finally:
        _current = previous


def resolve(spec) -> Backend:
    """A Backend from a name, a Backend, or None (the default)."""
    if spec is None:
        return get_backend()
    if isinstance(spec, Backend):
        return spec
    return backend(spec)


def is_device_array(value) -> bool:
    """True for an array of a device backend (a CuPy array), whether or not that backend has
    been created in this process."""
    return type(value).__module__.split(".")[0] == "cupy"


def to_host(value):
    """The one host copy: a NumPy array for a Tensor, a NumPy array or a CuPy array (the cuda
    backend reads it back, raising any error its kernels flagged); ``np.asarray`` otherwise.

    Example:
        >>> to_host(gn.tensor([1.0, 2.0]))
        array([1., 2.], dtype=float32)
    """
    if isinstance(value, np.ndarray):
        return value
    if callable(getattr(value, "numpy", None)):  # a Tensor (any backend) or a torch tensor
        return np.asarray(value.numpy())
    if is_device_array(value):
        return backend("cuda").to_host(value)
    return np.asarray(value)


def set_num_threads(n: int) -> None:
    """Threads the NumPy backend splits a batch over (as ``torch.set_num_threads``).

    The default is ``GPUNET_NUM_THREADS`` or the number of cores this process may use; BLAS is
    held to one thread inside gpunet's kernels, so this is the whole thread budget.  Chunks run
    on several threads only when ``threadpoolctl`` is installed (the ``train``, ``bench`` and
    ``dev`` extras bring it).

    Example:
        >>> gn.set_num_threads(1)      # everything in the calling thread
        >>> gn.get_num_threads()
        1
    """
    from numpy_kernels import _parallel

    _parallel.set_num_threads(n)


def get_num_threads() -> int:
    """The thread count set by :func:`set_num_threads` (or its default)."""
    from numpy_kernels import _parallel

    return _parallel.num_threads()


from . import cuda, cudnn, mps  # noqa: E402  (PyTorch's torch.backends.cuda / .cudnn / .mps)
