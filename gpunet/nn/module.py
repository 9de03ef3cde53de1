"""Module and Parameter: what every layer and model is built from (containers in containers.py).

Example:
    >>> from gpunet import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import backends
from ..function import no_grad
from ..serialization import check_state_dict
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable (``requires_grad=True``).

    Example:
        >>> w = nn.Parameter(np.zeros((3, 4), np.float32))
        >>> w.requires_grad
        True
    """

    def __init__(self, data, requires_grad=True, backend=None, dtype=None):
        if isinstance(data, Tensor) and backend in (None, data.backend) and dtype in (None, data.dtype):
            self._init(data._data, data.backend, requires_grad)  # share the array, as PyTorch does
            return
        if isinstance(data, np.ndarray):
            data = data.copy()  # in-place optimiser updates must not write into the caller's array
        super().__init__(data, requires_grad=requires_grad, backend=backend, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_hooks: list = []  # summary() records each module's output here while it runs


class Module:
    """Base class of every layer and model: subclass it, assign layers in ``__init__``, write ``forward``.

    Example:
        >>> class MLP(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = nn.Linear(784, 64), nn.Linear(64, 10)
        ...     def forward(self, x):
        ...         return self.fc2(F.relu(self.fc1(x)))
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in _hooks:
            hook(self, out)
        return out

    # --- attribute registration -------------------------------------------------
    def _stores(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 "parameters, buffers or sub-modules")
        return self._parameters, self._buffers, self._modules

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)):
            params, buffers, modules = self._stores()
            target = params if isinstance(value, Parameter) else modules
            for store in (params, buffers, modules, self.__dict__):
                if store is not target:
                    store.pop(name, None)
            self._non_persistent.discard(name)
            target[name] = value  # a name already there keeps its place, as PyTorch's dict does
            return
        stores = self.__dict__.get("_parameters"), self.__dict__.get("_buffers"), self.__dict__.get("_modules")
        for store, kinds, what in zip(stores, ((), (Tensor,), ()), ("a Parameter", "a Tensor", "a Module")):
            if store is not None and name in store:
                if value is not None and not isinstance(value, kinds):
                    raise TypeError(f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}: "
                                    f"it is registered as {what} (assign {what} or None)")
                store[name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only reached when ordinary lookup fails
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """Register a non-learnable tensor (e.g. running statistics) saved in ``state_dict``.

        Example:
            >>> class Counter(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.register_buffer("steps", gn.zeros(1))
            >>> list(Counter().state_dict())
            ['steps']
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_buffer: name must be a non-empty str without '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: tensor must be a gpunet Tensor or None, got {type(tensor).__name__}")
        _, buffers, _ = self._stores()
        self.__dict__.pop(name, None)
        buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: param must be a Parameter or None, got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._stores()[0][name] = param

    def add_module(self, name, module):
        """Register a sub-module under ``name`` (what attribute assignment does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: module must be a Module or None, got {type(module).__name__}")
        self.__dict__.pop(str(name), None)
        self._stores()[2][str(name)] = module

    # --- traversal ----------------------------------------------------------------
    def named_children(self):
        """(name, module) for each direct sub-module."""
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("") and every module below it, each once."""
        seen = set()

        def walk(module, pre):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield pre, module
            for name, child in module.named_children():
                yield from walk(child, f"{pre}.{name}" if pre else name)

        return walk(self, prefix)

    def modules(self):
        return (m for _, m in self.named_modules())

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module, children first, then on this one; returns self.

        Example:
            >>> _ = model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
            >>> float(model[4].bias.abs().sum())
            0.0
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named(self, store, recurse, persistent_only=False):
        seen = set()
        mods = self.named_modules() if recurse else [("", self)]
        for pre, module in mods:
            for name, t in getattr(module, store).items():
                if t is None or id(t) in seen or (persistent_only and name in module._non_persistent):
                    continue
                seen.add(id(t))
                yield (f"{pre}.{name}" if pre else name), t

    def named_parameters(self, recurse=True):
        """(dotted name, Parameter), e.g. ("conv1.weight", ...); shared parameters appear once."""
        return self._named("_parameters", recurse)

    def parameters(self, recurse=True):
        """Every Parameter, for an optimiser: ``SGD(model.parameters(), lr=0.1)``."""
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    def num_parameters(self, trainable_only=False):
        """How many numbers the parameters hold."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # --- modes, gradients, devices -------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout active, batch norm uses batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``; returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Set every parameter's ``.grad`` to None (``set_to_none=False``: zero it in place), as torch."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad._data[...] = 0

    def requires_grad_(self, flag=True):
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def _tensors(self):
        return list(self.parameters()) + list(self.buffers())

    def to(self, backend):
        """Move every parameter and buffer to ``backend`` ("numpy", "cuda"), in place; returns self.

        Example:
            >>> model.to("cuda")                   # doctest: +SKIP
        """
        be = backends.resolve(backend)
        for t in self._tensors():
            if t.backend is not be:
                t._data = be.asarray(t.numpy())
                t.backend = be
                if t.grad is not None:
                    t.grad = t.grad.to(be)
        return self

    def _cast(self, dtype):
        for t in self._tensors():
            if t.dtype.kind == "f":
                t._data = t._data.astype(dtype)
                t.grad = None
        return self

    def float(self):
        """Cast floating-point parameters and buffers to float32, in place."""
        return self._cast(np.float32)

    def double(self):
        """Cast floating-point parameters and buffers to float64 (for gradcheck), in place."""
        return self._cast(np.float64)

    # --- state ------------------------------------------------------------------------
    def state_dict(self):
        """{dotted name: Tensor} of parameters and persistent buffers (they share memory with the model).

        Example:
            >>> gn.save(model.state_dict(), "model.npz")      # doctest: +SKIP
        """
        return OrderedDict((k, t.detach()) for k, t in self._state_tensors())

    def _state_tensors(self):
        for pre, module in self.named_modules():
            for store, skip in (("_parameters", ()), ("_buffers", module._non_persistent)):
                for name, t in getattr(module, store).items():
                    if t is not None and name not in skip:
                        yield (f"{pre}.{name}" if pre else name), t

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` (Tensors or NumPy arrays, e.g. from ``gn.load``) into
        the module's tensors, in place.

        Raises StateDictMismatchError listing missing, unexpected and wrongly shaped keys
        (shapes are always checked; names only when ``strict``). Returns (missing, unexpected).
        """
        own = OrderedDict(self._state_tensors())
        missing, unexpected = check_state_dict(own, state_dict, strict=strict, name=type(self).__name__)
        with no_grad():
            for key, t in own.items():
                if key not in state_dict:
                    continue
                value = state_dict[key]
                if not (isinstance(value, Tensor) and value.backend is t.backend):
                    host = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
                    value = Tensor._wrap(t.backend.asarray(np.array(host, dtype=t.dtype)), t.backend)
                # in place, as PyTorch's param.copy_(input_param): the optimiser's references and
                # a captured graph's buffers stay this tensor's storage
                t._data[...] = value._data
        return IncompatibleKeys(missing, unexpected)

    # --- printing ---------------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown inside ``Name(...)``; layers override it."""
        return ""

    def _repr_body(self):
        lines = [f"({name}): " + child._repr_body().replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def __repr__(self):
        """PyTorch's: the module tree with each layer's settings (``summary()`` counts parameters)."""
        return self._repr_body()

    def summary(self, input_shape=None):
        """A table of the layers, their parameter counts and (given ``input_shape``) output shapes.

        Example:
            >>> print(model.summary((1, 1, 28, 28)))      # doctest: +SKIP
        """
        shapes = {}
        if input_shape is not None:
            ref = next(iter(self._tensors()), None)
            dtype = ref.dtype if ref is not None and ref.dtype.kind == "f" else np.float32
            be = ref.backend if ref is not None else backends.get_backend()
            x = Tensor._wrap(be.asarray(np.zeros(tuple(input_shape), dtype)), be)

            def record(module, out):
                first = out[0] if isinstance(out, tuple) else out
                shapes[id(module)] = getattr(first, "shape", None)

            was_training = self.training
            _hooks.append(record)
            try:
                with no_grad():
                    self.eval()(x)
            finally:
                _hooks.remove(record)
                self.train(was_training)
        rows = [("Layer (type)", "Output shape", "Params")]
        for name, m in self.named_modules():
            if m is self and any(True for _ in self.named_children()):
                continue
            own = sum(p.numel() for _, p in m._named("_parameters", recurse=False))
            shape = str(tuple(shapes[id(m)]) if shapes[id(m)] is not None else None) if id(m) in shapes else "-"
            rows.append((f"{name or type(m).__name__} ({type(m).__name__})", shape, f"{own:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"  # noqa: E731
        rule = "=" * len(fmt(rows[0]))
        return "\n".join([fmt(rows[0]), rule] + [fmt(r) for r in rows[1:]] + [
            rule, f"Total params: {self.num_parameters():,}",
            f"Trainable params: {self.num_parameters(trainable_only=True):,}"])
