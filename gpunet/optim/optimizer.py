"""Optimisers: the Optimizer base (param_groups, state, state_dict) and SGD (Adam: ``adam.py``).

SGD and Adam make one in-place call per parameter group and dtype to the backend's fused
multi-tensor update (``sgd_update_many`` / ``adam_update_many``; on ``cuda`` one kernel launch
updates up to 16 parameters), under ``no_grad``.

Example:
    >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
"""
from __future__ import annotations

import numbers

import copy

import numpy as np

from .. import backends, graph_capture as graphs
from ..function import no_grad
from ..tensor import Tensor

_REQUIRED = object()


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with "params" and hyper-parameters) and per-parameter ``state``.

    Subclasses implement ``_update(p, group, state)``. ``state_dict()`` returns every state
    array as a host copy, a gn Tensor on the numpy backend (PyTorch's tensors), so ``gn.save`` of
    it is read by ``torch.load(weights_only=True)`` and restores to resume exactly.

    Example:
        >>> opt = optim.SGD([{"params": model[0].parameters()},              # the conv
        ...                  {"params": model[4].parameters(), "lr": 0.01}], lr=0.1)
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            "(e.g. model.parameters()), got a single Tensor; wrap it in a list")
        if hasattr(params, "named_parameters"):
            raise TypeError(f"{type(self).__name__}: params must be model.parameters(), got the module itself")
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(param) -> {"step": int, "exp_avg": array, ...}
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict {"params": [...], hyper-parameter overrides...}; missing values come from defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"param group must be a dict with a 'params' entry, got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: params[{i}] must be a Parameter, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: params[{i}] (shape {tuple(p.shape)}) does not require grad")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: params[{i}] (shape {tuple(p.shape)}) appears in more than one group")
            seen.add(id(p))
        full = dict(group, params=params)
        for key, value in self.defaults.items():
            if value is _REQUIRED and key not in group:
                raise TypeError(f"{type(self).__name__}: argument {key!r} is required")
            full.setdefault(key, value)
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group):
        name = type(self).__name__
        for key in ("lr", "weight_decay", "momentum", "dampening", "eps", "alpha"):
            value = group.get(key, 0.0)
            if key == "lr" and isinstance(value, Tensor) and value.numel() == 1:
                value = float(value)  # a tensor lr (PyTorch's, for capture): filled in place
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    0 <= value < float("inf")):
                raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")
        betas = group.get("betas", (0.0, 0.0))
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter (set to None, as PyTorch does by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place.  ``closure`` (as in PyTorch):
        a function that clears the gradients, computes the loss, calls ``backward()`` and
        returns the loss; it is called first, and its loss is returned.

        Example:
            >>> def closure():
            ...     opt.zero_grad()
            ...     loss = loss_fn(model(x), y)
            ...     loss.backward()
            ...     return loss
            >>> loss = opt.step(closure)
            >>> loss.shape
            gpunet.Size([])
        """
        loss = None
        if closure is not None:
            if not callable(closure):
                raise TypeError(f"{type(self).__name__}.step(closure): closure must be a function "
                                f"that returns the loss, got {type(closure).__name__}")
            loss = closure()
        self._step()
        return loss

    _capture_safe = False  # True where the whole update runs in the backend's kernels

    def _step(self):
        if graphs.is_capturing():
            if not self._capture_safe:
                raise RuntimeError(
                    f"{type(self).__name__}.step() cannot be captured in a CUDA graph: part of "
                    "its update runs on the host; use SGD, or Adam/AdamW with capturable=True")
            # a number lr is frozen into the graph: schedulers refuse to change it, and a
            # replay refuses to run after it was changed by hand
            frozen = [(g, g["lr"]) for g in self.param_groups if not isinstance(g["lr"], Tensor)]
            self._captured_groups = {id(g) for g, _ in frozen}
            graphs.guard(lambda: _check_frozen_lr(self, frozen))
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._update_group(params, group)

    def _update_group(self, params, group):
        """Update ``params`` of one group; by default one ``_update`` per parameter."""
        for p in params:
            self._update(p, group, self.state.setdefault(id(p), {}))

    def _update(self, p, group, state):
        raise NotImplementedError

    # --- state ------------------------------------------------------------------
    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        """{"state": {index: {name: Tensor or int}}, "param_groups": [{..., "params": [index, ...]}]}.

        Parameters are numbered across groups in order, as in PyTorch. State arrays are host
        copies as numpy-backend Tensors (``step`` stays an int; PyTorch's is a 0-d tensor).

        Example:
            >>> opt = optim.Adam(model.parameters()); loss_fn(model(x), y).backward(); opt.step()
            >>> st = opt.state_dict()["state"][0]
            >>> st["step"], type(st["exp_avg"]).__name__, st["exp_avg"].device
            (1, 'Tensor', device(type='cpu'))
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {}
        for pid, st in self.state.items():
            if pid in index and st:
                state[index[pid]] = {k: _saved(v) for k, v in st.items()}
        groups, start = [], 0
        for g in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            saved["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state from ``state_dict()`` (or ``gn.load`` of it).

        State arrays (Tensors, NumPy or torch arrays) are copied to each parameter's backend and
        dtype; a 0-d ``step`` (PyTorch's) becomes an int.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "(from optimizer.state_dict())")
        saved_groups = list(state_dict["param_groups"])
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if sizes != saved_sizes:
            raise ValueError(f"load_state_dict: the saved optimizer has param groups of sizes {saved_sizes}, "
                             f"this one {sizes}; build it over the same parameters")
        params, new_state, problems = self._params(), {}, []
        for key, st in dict(state_dict["state"]).items():
            i = int(key)
            if not 0 <= i < len(params):
                problems.append(f"state for parameter {i}, but there are only {len(params)}")
                continue
            p, restored = params[i], {}
            for name, v in st.items():
                if _is_array(v) and name == "step" and np.ndim(_host(v)) == 0:
                    restored[name] = int(np.asarray(_host(v)).item())  # PyTorch's float tensor
                elif _is_array(v):
                    host = np.asarray(_host(v))
                    if host.shape != p.shape:
                        problems.append(f"{name} of parameter {i}: shape {tuple(host.shape)}, parameter has {tuple(p.shape)}")
                        continue
                    restored[name] = p.backend.asarray(np.array(host, dtype=p.dtype))
                else:
                    restored[name] = v.item() if isinstance(v, np.generic) else v
            new_state[id(p)] = restored
        if problems:
            raise ValueError("load_state_dict: the state does not fit the parameters:\n  " + "\n  ".join(problems))
        for group, saved in zip(self.param_groups, saved_groups):
            for k, v in saved.items():
                if k == "params":
                    continue
                if isinstance(group.get(k), Tensor):  # a tensor lr: filled, as a graph reads it
                    group[k].fill_(float(v))
                else:
                    group[k] = tuple(v) if isinstance(group.get(k), tuple) else v
        self.state = _in_place(self.state, new_state)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _is_array(v):
    return isinstance(v, Tensor) or hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


def _host(v):
    return backends.to_host(v)


def _in_place(old, new):
    """``new`` state, its arrays copied into ``old``'s where they fit (and a device step count
    refilled from a loaded number): a captured graph keeps reading the same buffers."""
    for pid, st in new.items():
        before = old.get(pid, {})
        for name, v in st.items():
            prev = before.get(name)
            if _is_array(prev) and not isinstance(prev, Tensor):
                if _is_array(v) and prev.shape == v.shape and prev.dtype == v.dtype:
                    prev[...] = v
                    st[name] = prev
                elif name == "step" and isinstance(v, numbers.Real) and prev.shape == ():
                    prev[...] = v
                    st[name] = prev
    return new


def lr_argument(group):
    """A group's lr as the update kernels take it: a number, or a tensor lr's device array."""
    return group["lr"]._data if isinstance(group["lr"], Tensor) else group["lr"]


def _check_frozen_lr(opt, frozen):
    for i, (group, lr) in enumerate(frozen):
        if group["lr"] != lr:
            raise RuntimeError(
                f"CUDAGraph.replay: {type(opt).__name__}'s param group {i} has lr={group['lr']!r}, "
                f"but the graph captured step() with lr={lr!r}, a number frozen into it; build "
                "the optimiser with lr=gn.tensor(...) to change it between replays")


def _saved(v):
    """A state value as ``state_dict()`` holds it: arrays and NumPy floats as host copies in gn
    Tensors on the numpy backend (PyTorch's tensors), lists item by item, NumPy ints as ints."""
    if isinstance(v, list):
        return [_saved(e) for e in v]
    if _is_array(v) or isinstance(v, np.floating):
        return Tensor._wrap(np.array(_host(v)), backends.backend("numpy"))
    return int(v) if isinstance(v, np.integer) else v


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and L2 weight decay.

    ``buf = momentum * buf + (1 - dampening) * (g + wd * p)`` (buf = g on the first step);
    ``p -= lr * (g + momentum * buf if nesterov else buf)``.

    Example:
        >>> opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    """

    _capture_safe = True

    def __init__(self, params, lr=_REQUIRED, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                             f"dampening={dampening}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update_group(self, params, group):
        momentum = group["momentum"]
        buckets = {}  # one multi-tensor call per (backend, dtype, first step or not)
        for p in params:
            state = self.state.setdefault(id(p), {})
            first = state.get("momentum_buffer") is None
            if momentum and first:  # the first step writes the buffer without reading it
                _before_capture(self, "its momentum buffers")
                state["momentum_buffer"] = p.backend.xp.empty_like(p._data)
            buckets.setdefault((id(p.backend), p.dtype, first), []).append(
                (p, state.get("momentum_buffer")))
        for (_, _, first), items in buckets.items():
            ps = [p for p, _ in items]
            bufs = [b for _, b in items] if momentum else None
            ps[0].backend.sgd_update_many([p._data for p in ps], [p.grad._data for p in ps], bufs,
                                          lr_argument(group), momentum, group["dampening"],
                                          group["weight_decay"], group["nesterov"], first)


def _before_capture(opt, what):
    if graphs.is_capturing():
        raise RuntimeError(f"{type(opt).__name__}.step() inside a CUDA-graph capture would create "
                           f"{what}; run at least one eager step first (warm-up), as PyTorch needs")
