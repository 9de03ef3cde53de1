"""Containers: Sequential (modules applied in order), ModuleList (a registered list of modules)
and ModuleDict (a registered, ordered dict of them).

Example:
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> len(model), type(model[0]).__name__
    (3, 'Linear')
"""
from __future__ import annotations

from collections import OrderedDict

from . import module as _module
from .module import Module


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", … (or by an OrderedDict).

    A ``Linear``, ``Conv2d`` or ``BatchNorm`` directly followed by a ``ReLU`` runs as one
    fused op (``F.linear_relu`` / ``F.conv2d_relu`` / the batch norm's ReLU pass), and a plain
    ``Conv2d`` (or a ``BatchNorm2d``), ``ReLU``, ``MaxPool2d(k)`` as one op: the same values,
    fewer passes over memory.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> model[1]
        Linear(in_features=784, out_features=10, bias=True)
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            pool = _fusable_pool(mods, i)
            if pool:  # conv or batch norm, ReLU and a plain max pool as one op
                x = mods[i].forward_relu_max_pool(x, pool)
                i += 3
            elif i + 1 < len(mods) and _fusable(mods[i], mods[i + 1]):
                x = mods[i].forward_relu(x)  # the layer's bias and the ReLU in one pass
                i += 2
            else:
                x = mods[i](x)
                i += 1
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self


_types: dict = {}  # the layer classes, imported on first use (layers and normalization import us)


def _layer_types():
    if not _types:
        from .layers import Conv2d, Linear, MaxPool2d, ReLU
        from .normalization import BatchNorm1d, BatchNorm2d

        _types.update(relu=ReLU, pool=MaxPool2d, conv=Conv2d, bn2d=BatchNorm2d,
                      with_relu=(Linear, Conv2d, BatchNorm1d, BatchNorm2d))
    return _types


def _fusable(layer, nxt):
    """A Linear, Conv2d or BatchNorm followed by a ReLU runs fused, unless ``summary()`` is
    watching each module's output (the values are the same either way)."""
    t = _layer_types()
    return type(nxt) is t["relu"] and type(layer) in t["with_relu"] and not _module._hooks


def _fusable_pool(mods, i):
    """The pool size when ``mods[i:i + 3]`` are Conv2d (no groups or dilation) or BatchNorm2d,
    then ReLU and MaxPool2d(k) with stride k, no padding and floor mode, else 0 (the cheap
    type tests first: this runs at every position of every forward)."""
    t = _layer_types()
    if i + 2 >= len(mods) or type(mods[i + 2]) is not t["pool"] or not _fusable(mods[i], mods[i + 1]):
        return 0
    layer, pool = mods[i], mods[i + 2]
    if type(layer) is t["conv"]:
        if layer.groups != 1 or tuple(layer.dilation) != (1, 1):
            return 0
    elif type(layer) is not t["bn2d"]:
        return 0
    from .. import functional as F

    k = F._pair("kernel_size", pool.kernel_size, 1)
    s = k if pool.stride is None else F._pair("stride", pool.stride, 1)
    plain = k[0] == k[1] and s == k and F._pair("padding", pool.padding, 0) == (0, 0)
    return k[0] if plain and not pool.ceil_mode else 0


class ModuleList(Module):
    """A list of sub-modules that are registered (their parameters are found).

    Example:
        >>> blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
    """

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]


class ModuleDict(Module):
    """An ordered dict of sub-modules that are registered (``state_dict`` keys "name.param").

    Example:
        >>> heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "box": nn.Linear(8, 4)})
        >>> list(heads.keys()), "cls" in heads, len(heads)
        (['cls', 'box'], True, 2)
        >>> sorted(heads.state_dict())[:2]
        ['box.bias', 'box.weight']
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_key(self, key):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: module name should be a string, got {type(key).__name__}")
        if not key:
            raise KeyError('ModuleDict: module name can\'t be empty string ""')
        if "." in key:
            raise KeyError(f'ModuleDict: module name can\'t contain ".", got: {key}')
        if key not in self._modules and hasattr(self, key):
            raise KeyError(f"ModuleDict: attribute '{key}' already exists")
        return key

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(self._check_key(key), module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        """The names, in insertion order."""
        return self._modules.keys()

    def items(self):
        """(name, module) pairs, in insertion order."""
        return self._modules.items()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def clear(self):
        """Remove every module."""
        self._modules.clear()

    def pop(self, key):
        """Remove the module named ``key`` and return it."""
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        """Add (or replace) modules from a mapping or an iterable of (name, module) pairs.

        A mapping (dict, OrderedDict, ModuleDict) keeps its own order, as in PyTorch.
        """
        if isinstance(modules, (dict, ModuleDict)) or hasattr(modules, "keys"):
            for key, module in modules.items():
                self[key] = module
            return
        try:
            pairs = iter(modules)
        except TypeError:
            raise TypeError("ModuleDict.update should be called with an iterable of key/value "
                            f"pairs, but got {type(modules).__name__}") from None
        for j, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)):
                raise TypeError(f"ModuleDict update sequence element #{j} should be Iterable; "
                                f"is {type(pair).__name__}")
            if len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} has length {len(pair)}; "
                                 "2 is required")
            self[pair[0]] = pair[1]
