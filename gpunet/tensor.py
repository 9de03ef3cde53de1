"""Tensor: an array on a backend, with define-by-run autograd.

Example:
    >>> import gpunet as gn
    >>> x = gn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([2., 4., 6.], dtype=float32)
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from . import backends
from .autograd_engine import run_backward
from .backends.device import of_backend
from .dtypes import is_dtype, tensor_type_name
from .size import Size

DEFAULT_FLOAT = np.float32


def _host_array(data, dtype):
    """Anything array-like on the host -> a NumPy array with gpunet's default dtypes."""
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        # NumPy arrays keep their float width (as torch.tensor does); Python floats -> float32.
        return arr if isinstance(data, np.ndarray) else arr.astype(DEFAULT_FLOAT)
    raise TypeError(f"tensor: data of dtype {arr.dtype} is not supported; use float, int or bool")


class Tensor:
    """An n-dimensional array on a backend that can record gradients.

    Create one with ``gn.tensor(data, requires_grad=..., backend=...)``.
    """

    __array_priority__ = 1000  # numpy scalars defer to our operators

    def __init__(self, data, requires_grad=False, backend=None, dtype=None):
        be = backends.resolve(backend)
        if isinstance(data, Tensor):
            data = data.backend.to_host(data._data)
        if be.is_array(data) and not isinstance(data, np.ndarray):
            array = data.astype(data.dtype if dtype is None else dtype, copy=True)
        else:
            host = _host_array(data, dtype)
            # a copy, as torch.tensor makes: the tensor never shares the caller's memory
            array = be.asarray(host.copy() if host is data or host.base is not None else host)
        self._init(array, be, requires_grad)

    def _init(self, array, backend, requires_grad):
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {array.dtype}; "
                "convert with .astype('float32')")
        self._data = array
        self.backend = backend
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None

    _shared = False  # the array is the caller's too (from_numpy, from_dlpack): never replaced

    def _in_c_order(self):
        """Make an op's channels-last output (a NumPy conv's, ``numpy_kernels/_im2row``)
        C-ordered before anything views or shares it, so views, ``detach()``, ``.data``,
        ``numpy()`` and DLPack alias it as they would PyTorch's contiguous tensor (autograd's
        saved copy of the old array is guarded by the version counter); returns self."""
        a = self._data
        if (type(a) is np.ndarray and a.ndim == 4 and not a.flags.c_contiguous
                and not self._shared and getattr(self, "_view_base", None) is None
                and a.transpose(0, 2, 3, 1).flags.c_contiguous):
            self._data = np.ascontiguousarray(a)
        return self

    # PyTorch's version counter: a one-item list shared by a tensor, its views and detach();
    # bumped by every in-place change. None until someone needs it (saved for backward, viewed).
    _vc = None
    _version = property(lambda self: 0 if self._vc is None else self._vc[0],
                        doc="How many in-place changes this tensor's storage has had (PyTorch's name).")

    @property
    def data(self) -> Tensor:
        """PyTorch's ``.data``: the same storage as a tensor outside the graph, with its own
        version counter, so in-place changes through it are invisible to autograd.

        Example:
            >>> w = gn.ones(2, requires_grad=True)
            >>> _ = w.data.mul_(3)
            >>> w.tolist(), w.data.requires_grad
            ([3.0, 3.0], False)
        """
        return Tensor._wrap(self._in_c_order()._data, self.backend)

    @data.setter
    def data(self, value):
        if isinstance(value, Tensor):
            if value.backend is not self.backend:
                raise ValueError(f"data: the new value is on backend {value.backend.name!r}, this "
                                 f"tensor on {self.backend.name!r}; move it with .to() first")
            value = value._data
        elif not self.backend.is_array(value):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        self._data = value

    @classmethod
    def _wrap(cls, array, backend, requires_grad=False):
        t = cls.__new__(cls)
        t._init(array, backend, requires_grad)
        return t

    _NOT_DEEPCOPIED = frozenset(("_data", "backend", "requires_grad", "grad", "_node", "_vc",
                                 "_view_base", "_post_accumulate_grad_hooks"))

    def __deepcopy__(self, memo):
        """As PyTorch: a leaf's copy has its own storage on the same backend, the same
        ``requires_grad``, a copy of ``.grad`` and of any attributes set on it, but no hooks.

        Example:
            >>> import copy
            >>> w = gn.ones(2, requires_grad=True); (w * 3).sum().backward()
            >>> c = copy.deepcopy(w)
            >>> c.requires_grad, c.grad.tolist(), c._data is w._data
            (True, [3.0, 3.0], False)
        """
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the "
                               "deepcopy protocol at the moment (PyTorch's rule); deepcopy x.detach()")
        if id(self) in memo:
            return memo[id(self)]
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new._init(self._data.copy(), self.backend, self.requires_grad)
        if self.grad is not None:
            new.grad = self.grad.__deepcopy__(memo)
        for key, value in self.__dict__.items():
            if key not in self._NOT_DEEPCOPIED:
                new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    # --- properties ----------------------------------------------------------
    # an array's shape is already a tuple of ints: no per-item int() as in Size(...)
    shape = property(lambda self: tuple.__new__(Size, self._data.shape),
                     doc="The shape, a ``gn.Size``.")
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    is_leaf = property(lambda self: self._node is None)
    T = property(lambda self: self.permute(*reversed(range(self.ndim))))
    device = property(lambda self: of_backend(self.backend), doc="``gn.device`` of the data.")
    is_cuda = property(lambda self: self.backend.name == "cuda", doc="True on the GPU backend.")

    def size(self, dim=None):
        """The shape, as ``torch.Tensor.size()``; ``size(d)`` is the length of dim ``d``."""
        return tuple.__new__(Size, self._data.shape) if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        extra = "" if self.backend.name == "numpy" else f", device='{self.device}'"
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype=gpunet.{self.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.function.__name__}Backward>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        host = self.numpy()
        body = np.array2string(host, separator=", ", threshold=1000, prefix="tensor(",
                               formatter=_float_formatter(host))
        return f"tensor({body}{extra})"

    # --- conversion ------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a host NumPy array (a copy when the tensor lives on a GPU)."""
        return self.backend.to_host(self._in_c_order()._data)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {tuple(self.shape)}")
        return self.numpy().reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __format__(self, spec):
        """``f"{loss:.3f}"`` formats a one-element tensor's value, as PyTorch does."""
        return format(self.item(), spec) if spec and self.numel() == 1 else format(str(self), spec)

    def __dlpack__(self, *args, **kwargs):
        """DLPack export (``torch.from_dlpack(t)``, ``np.from_dlpack(t)``): zero-copy."""
        return self._in_c_order()._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def cpu(self) -> Tensor:
        """This tensor on the NumPy backend (PyTorch's "cpu")."""
        return self.to("numpy")

    def cuda(self) -> Tensor:
        """This tensor on the GPU backend."""
        return self.to("cuda")

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same storage, cut from the graph; in-place changes to either are seen by both
        (and by autograd's version check, as in PyTorch)."""
        out = Tensor._wrap(self._in_c_order()._data, self.backend)
        out._vc = self._vc = self._vc or [0]
        return out

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False) -> Tensor:
        """PyTorch's ``to``: ``x.to("cuda")``, ``x.to(gn.float64)``, ``x.to(device, dtype)``,
        ``x.to(other)`` (its device and dtype), or by keyword.  Returns ``self`` when nothing
        changes (unless ``copy``).  A float-to-float cast stays in the graph; a move to another
        backend is a new leaf (it keeps ``requires_grad``).

        Example:
            >>> x = gn.tensor([1, 2])
            >>> x.to(gn.float64).dtype, x.to("cpu", gn.float32).dtype, x.to(x) is x
            (dtype('float64'), dtype('float32'), True)
        """
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.backend, arg.dtype
            elif is_dtype(arg):
                dtype = arg
            elif isinstance(arg, (str, backends.Backend, backends.device)):
                device = arg
            else:
                raise TypeError(f"to(): expected a device, a dtype or a Tensor, got {arg!r}")
        out = self
        if device is not None:
            be = backends.resolve(device)
            if be is not self.backend:
                out = Tensor._wrap(be.asarray(self.numpy()), be, self.requires_grad)
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = out.float() if np.dtype(dtype) == np.float32 else out.double() \
                if np.dtype(dtype) == np.float64 else out.astype(np.dtype(dtype))
        return out.clone() if copy and out is self else out

    def type(self, dtype=None):
        """PyTorch's ``type``: the type name (``'gpunet.FloatTensor'``) with no argument, else
        this tensor cast to ``dtype``.

        Example:
            >>> gn.zeros(2).type(), gn.zeros(2).type(gn.long).dtype
            ('gpunet.FloatTensor', dtype('int64'))
        """
        if dtype is None:
            return tensor_type_name(self.dtype, self.is_cuda)
        return self.to(dtype)

    def __index__(self):
        """A one-element integer tensor used as an index (``classes[labels[j]]``)."""
        if self.numel() != 1 or self.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def astype(self, dtype) -> Tensor:
        """A copy with another dtype (not differentiable)."""
        return Tensor._wrap(self._data.astype(dtype), self.backend)

    def requires_grad_(self, flag=True) -> Tensor:
        self._init(self._data, self.backend, flag)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # --- autograd --------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False) -> None:
        """Backpropagate from this tensor; leaf tensors with requires_grad get ``.grad``.

        Gradients accumulate across calls, as in PyTorch; zero them between steps.  The graph's
        saved arrays are freed afterwards unless ``retain_graph=True``, and a second backward
        through a freed graph raises ``RuntimeError``.
        """
        run_backward(self, grad, retain_graph, Tensor)

    def _accumulate(self, g):
        if self.grad is None:
            # a copy when g is the tensor itself or the cached seed (a user may write into .grad)
            one = self.backend.one(g.dtype)
            own = g is self._data or _views(g, one)
            self.grad = Tensor._wrap(g.copy() if own else g, self.backend)
        else:
            self.grad = Tensor._wrap(self.grad._data + g, self.backend)
        for hook in list(self.__dict__.get("_post_accumulate_grad_hooks", {}).values()):
            hook(self)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` each time backward() has accumulated into this leaf's ``.grad``
        (PyTorch's name; gradient averaging in ``gn.distributed.DataParallel`` rides on it).

        Example:
            >>> handle = w.register_post_accumulate_grad_hook(lambda p: print(p.grad.shape))
            >>> handle.remove()
        """
        if self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors have .grad to hook")
        hooks = self.__dict__.setdefault("_post_accumulate_grad_hooks", {})
        key = object()
        hooks[key] = hook
        return _HookHandle(hooks, key)


def _float_formatter(host):
    """PyTorch's float printing: ``1.`` when every value is whole, else 4 decimals, in
    scientific notation when the magnitudes span more than 1000x or pass 1e8 (or go below
    1e-4); every entry padded to one width."""
    if host.dtype.kind != "f" or host.size == 0:
        return None
    finite = np.abs(host[np.isfinite(host)]).astype(np.float64)
    nonzero = finite[finite != 0]
    if nonzero.size == 0:
        return None
    big, small = nonzero.max(), nonzero.min()
    whole = bool((np.floor(finite) == finite).all())
    sci = big / small > 1000.0 or big > 1e8 or (not whole and small < 1e-4)
    if sci:
        fmt = "{:.4e}".format
    elif whole:
        fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)  # noqa: E731
    else:
        fmt = "{:.4f}".format
    width = max(len(fmt(v)) for v in host.reshape(-1)[:2000])
    return {"float_kind": lambda v: fmt(v).rjust(width)}


class _HookHandle:
    """What register_*_hook returns: ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


def _views(a, b) -> bool:
    """True when ``a`` and ``b`` are views of the same memory owner (host-side: the ends of
    their chains of ``.base``)."""
    def owner(x):
        while x.base is not None:
            x = x.base
        return x
    return owner(a) is owner(b)


def as_tensor_like(value, ref: Tensor) -> Tensor:
    """A Python/NumPy scalar or array as a constant tensor on ref's backend (ref's float dtype)."""
    if isinstance(value, numbers.Number) or (isinstance(value, np.ndarray) and value.ndim == 0):
        dtype = ref.dtype if ref.dtype.kind == "f" else None
        if dtype is None and isinstance(value, float):
            dtype = DEFAULT_FLOAT  # int tensor with a float: float32, as in PyTorch
        return Tensor._wrap(ref.backend.asarray(np.asarray(value, dtype=dtype)), ref.backend)
    if isinstance(value, np.ndarray) or ref.backend.is_array(value):
        return Tensor._wrap(ref.backend.asarray(value) if isinstance(value, np.ndarray) else value,
                            ref.backend)
    raise TypeError(f"expected a Tensor, number or array, got {type(value).__name__}")
