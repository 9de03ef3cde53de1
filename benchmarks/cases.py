"""The benchmark cases, each buildable in gpunet or in PyTorch from the same weights and data.

A case is a name such as ``lenet-step-b64``, ``lenet-infer-b256``, ``conv-fwd``, ``conv-fwdbwd``,
``lstm-fwdbwd``, ``conv3x3-c64-s2`` (forward + backward of a 3×3 conv, C→C channels, stride 1
or 2) or ``<model>-step-b<N>`` for a model of ``benchmarks/user_models.py`` (``resnet8``,
``vgg``, ``lenetbn``, ``lstmlm``, ``grulm``); ``build(framework, case, backend)`` returns a
``Case``: the call to time, a sync that waits for queued device work, the images per call and
the FLOPs per call (or None).

Example:
    >>> c = build("gpunet", "lenet-step-b64", "numpy")
    >>> c.fn(); c.sync(); c.items
    64
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from benchmarks.models import GpunetLeNet, TorchLeNet, batch, lenet_weights
from kernel_geometry import out_size

SCALING_BATCHES = (16, 32, 64, 128, 256, 512, 1024)
CONV_SHAPE = dict(n=32, c=64, k=64, h=32, w=32, ks=3)  # Conv2d(64, 64, 3, padding=1)
LSTM_SHAPE = dict(t=50, n=64, f=128, h=128)  # nn.LSTM(128, 128) on 50 steps of 64 sequences


@dataclass
class Case:
    fn: Callable[[], object]
    sync: Callable[[], None]
    items: int
    flops: float | None = None


def conv_flops(n, c, k, h, w, ks):
    """Forward FLOPs of a stride-1 'same' conv: 2·N·C_out·H·W·C_in·k²."""
    return 2.0 * n * k * h * w * c * ks * ks


def _device(backend):
    return "cuda" if backend == "cuda" else "cpu"


def _lenet(framework, backend, mode, n):
    w = lenet_weights(0)
    model = GpunetLeNet(w, backend) if framework == "gpunet" else TorchLeNet(w, _device(backend))
    x, y = model.tensors(*batch(n))
    fn = (lambda: model.step(x, y)) if mode == "step" else (lambda: model.infer(x))
    return Case(fn, model.sync, n)


def _conv_arrays():
    s = CONV_SHAPE
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s["n"], s["c"], s["h"], s["w"])).astype(np.float32)
    w = (rng.standard_normal((s["k"], s["c"], s["ks"], s["ks"])) * 0.05).astype(np.float32)
    b = np.zeros(s["k"], np.float32)
    gy = rng.standard_normal((s["n"], s["k"], s["h"], s["w"])).astype(np.float32)
    return x, w, b, gy


def _conv_gpunet(backend, backward):
    import gpunet as gn
    from gpunet import functional as F

    be = gn.backends.backend(backend)
    x, w, b, gy = _conv_arrays()
    xg, wg, bg = (gn.tensor(a, requires_grad=True, backend=be) for a in (x, w, b))
    gyg = gn.tensor(gy, backend=be)

    def fwd():
        with gn.no_grad():
            return F.conv2d(xg, wg, bg, padding=1)

    def fwd_bwd():
        for p in (xg, wg, bg):
            p.grad = None
        F.conv2d(xg, wg, bg, padding=1).backward(gyg)

    return fwd_bwd if backward else fwd, be.synchronize


def _conv_torch(backend, backward):
    import torch

    dev = _device(backend)
    x, w, b, gy = _conv_arrays()
    xt, wt, bt = (torch.from_numpy(a).to(dev).requires_grad_() for a in (x, w, b))
    gyt = torch.from_numpy(gy).to(dev)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, padding=1)

    def fwd_bwd():
        for p in (xt, wt, bt):
            p.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gyt)

    return fwd_bwd if backward else fwd, _sync(torch, backend)


def _lstm(framework, backend):
    """Forward + backward of one LSTM layer; the loss weighs every output (sequences/s)."""
    s = LSTM_SHAPE
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s["t"], s["n"], s["f"])).astype(np.float32)
    gy = rng.standard_normal((s["t"], s["n"], s["h"])).astype(np.float32)
    bound = 1 / np.sqrt(s["h"])
    weights = {f"{k}_l0": rng.uniform(-bound, bound, shape).astype(np.float32)
               for k, shape in (("weight_ih", (4 * s["h"], s["f"])), ("weight_hh", (4 * s["h"], s["h"])),
                                ("bias_ih", (4 * s["h"],)), ("bias_hh", (4 * s["h"],)))}
    if framework == "gpunet":
        import gpunet as gn

        be = gn.backends.backend(backend)
        lstm = gn.nn.LSTM(s["f"], s["h"], backend=be)
        lstm.load_state_dict(weights)
        xt, gyt = gn.tensor(x, requires_grad=True, backend=be), gn.tensor(gy, backend=be)
        sync = be.synchronize
    else:
        import torch

        dev = _device(backend)
        lstm = torch.nn.LSTM(s["f"], s["h"]).to(dev)
        lstm.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        xt, gyt = torch.from_numpy(x).to(dev).requires_grad_(), torch.from_numpy(gy).to(dev)
        sync = _sync(torch, backend)

    def fwd_bwd():
        for p in [xt, *lstm.parameters()]:
            p.grad = None
        lstm(xt)[0].backward(gyt)

    return Case(fwd_bwd, sync, s["n"])


CONV3X3_SHAPE = dict(n=16, h=32, w=32)  # conv3x3-cC-sS: 16 images of C×32×32


def _conv3x3(framework, backend, c, stride):
    """Forward + backward of Conv2d(c, c, 3, stride, padding=1); FLOPs counted for all three
    products (output, input gradient, weight gradient)."""
    s = CONV3X3_SHAPE
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s["n"], c, s["h"], s["w"])).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    T = _framework(framework)
    dev = _device(backend)
    kw = {"backend": backend} if framework == "gpunet" else {"device": dev}
    xt = T.tensor(x, requires_grad=True, **kw)
    wt = T.tensor(w, requires_grad=True, **kw)
    ho = out_size(s["h"], 3, stride, 1)
    gy = T.tensor(rng.standard_normal((s["n"], c, ho, ho)).astype(np.float32), **kw)

    def fwd_bwd():
        xt.grad = wt.grad = None
        T.nn.functional.conv2d(xt, wt, stride=stride, padding=1).backward(gy)

    return Case(fwd_bwd, _sync(T, backend), s["n"], 3 * 2.0 * s["n"] * c * ho * ho * c * 9)


def _framework(name):
    return __import__("gpunet" if name == "gpunet" else "torch")


def _sync(T, backend):
    if T.__name__ == "gpunet":
        return T.backends.backend(backend).synchronize
    return T.cuda.synchronize if backend == "cuda" else (lambda: None)


def _user_model(framework, backend, name, n):
    """One SGD (momentum 0.9) training step of a ``user_models`` model, from gpunet's weights."""
    from benchmarks import user_models

    T = _framework(framework)
    state = user_models.initial_state(name)
    x, y = user_models.data(name, n)
    if framework == "gpunet":
        with T.use_backend(backend):
            model = user_models.build_model(T, name)
        model.load_state_dict({k: T.tensor(v) for k, v in state.items()})
        to = dict(backend=backend)
    else:
        model = user_models.build_model(T, name).to(_device(backend))
        model.load_state_dict({k: T.from_numpy(v) for k, v in state.items()})
        to = dict(device=_device(backend))
    model.train()
    x, y = T.tensor(x, **to), T.tensor(np.asarray(y, np.int64), **to)
    opt = T.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = T.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    items = n if name in user_models.IMAGE_SHAPES else n * user_models.LM_SHAPE["seq"]  # tokens
    return Case(step, _sync(T, backend), items)


def build(framework, case, backend="numpy") -> Case:
    """The callable for ``case`` in ``framework`` ("gpunet" or "torch") on ``backend``."""
    m = re.fullmatch(r"lenet-(step|infer)-b(\d+)", case)
    if m:
        return _lenet(framework, backend, m.group(1), int(m.group(2)))
    m = re.fullmatch(r"(resnet8|vgg|lenetbn|lstmlm|grulm)-step-b(\d+)", case)
    if m:
        return _user_model(framework, backend, m.group(1), int(m.group(2)))
    m = re.fullmatch(r"conv3x3-c(\d+)-s([12])", case)
    if m:
        return _conv3x3(framework, backend, int(m.group(1)), int(m.group(2)))
    if case in ("conv-fwd", "conv-fwdbwd"):
        backward = case == "conv-fwdbwd"
        fn, sync = (_conv_gpunet if framework == "gpunet" else _conv_torch)(backend, backward)
        flops = conv_flops(**CONV_SHAPE) * (3 if backward else 1)
        return Case(fn, sync, CONV_SHAPE["n"], flops)
    if case == "lstm-fwdbwd":
        return _lstm(framework, backend)
    raise ValueError(f"unknown benchmark case {case!r}; expected lenet-step-bN, lenet-infer-bN, "
                     "conv-fwd, conv-fwdbwd, lstm-fwdbwd, conv3x3-cC-sS or "
                     "(resnet8|vgg|lenetbn|lstmlm|grulm)-step-bN")
