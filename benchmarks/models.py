"""The benchmark models, built identically in gpunet and PyTorch from one set of initial weights.

LeNet-5 on 1×28×28: conv 6@5×5 pad 2 → ReLU → maxpool 2 → conv 16@5×5 → ReLU → maxpool 2 →
120 → 84 → 10, softmax cross-entropy, SGD with momentum 0.9.  gpunet uses ``gpunet.nn`` and
``gpunet.optim``: what users run.

Example:
    >>> w = lenet_weights(seed=0)
    >>> g, t = GpunetLeNet(w, "numpy"), TorchLeNet(w, "cpu")
    >>> g.step(xg, yg); t.step(xt, yt)
"""
from __future__ import annotations

import numpy as np

LR, MOMENTUM = 0.01, 0.9
SHAPES = [("conv1.weight", (6, 1, 5, 5)), ("conv1.bias", (6,)),
          ("conv2.weight", (16, 6, 5, 5)), ("conv2.bias", (16,)),
          ("fc1.weight", (120, 400)), ("fc1.bias", (120,)),
          ("fc2.weight", (84, 120)), ("fc2.bias", (84,)),
          ("fc3.weight", (10, 84)), ("fc3.bias", (10,))]


def lenet_weights(seed=0) -> list[np.ndarray]:
    """Kaiming-uniform-like float32 initial weights, in PyTorch's parameter order."""
    rng = np.random.default_rng(seed)
    shapes, out = dict(SHAPES), []
    for name, shape in SHAPES:
        fan_in = int(np.prod(shapes[name.replace("bias", "weight")][1:]))
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, size=shape).astype(np.float32))
    return out


def batch(n, seed=1):
    """Random images (n,1,28,28) float32 and integer labels (n,)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


class GpunetLeNet:
    """LeNet-5 training step and inference in gpunet, built with ``gpunet.nn`` + ``gpunet.optim``."""

    api = "nn+optim"

    def __init__(self, weights, backend="numpy"):
        import gpunet as gn
        from gpunet import nn, optim

        self.gn, self.be = gn, gn.backends.backend(backend)
        with gn.use_backend(self.be.name):
            self.model = nn.Sequential(
                nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
            params = list(self.model.parameters())
            assert [tuple(p.shape) for p in params] == [s for _, s in SHAPES], "unexpected layout"
            for p, w in zip(params, weights):
                p.data[...] = self.be.asarray(w)
            self.opt = optim.SGD(params, lr=LR, momentum=MOMENTUM)

    def tensors(self, x, y):
        """Host arrays -> gpunet tensors on this backend (done once, outside the timing)."""
        return self.gn.tensor(x, backend=self.be), self.gn.tensor(y, backend=self.be)

    def step(self, x, y):
        """One full training step: forward, loss, backward, SGD update."""
        loss = self.gn.functional.softmax_cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def infer(self, x):
        with self.gn.no_grad():
            return self.model(x)

    def sync(self):
        self.be.synchronize()


class TorchLeNet:
    """The same LeNet-5 in PyTorch, on ``device`` ("cpu" or "cuda")."""

    def __init__(self, weights, device="cpu"):
        import torch
        from torch import nn

        self.torch, self.device = torch, device
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        with torch.no_grad():
            for p, w in zip(self.model.parameters(), weights):
                p.copy_(torch.from_numpy(w))
        self.model.to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def tensors(self, x, y):
        return (self.torch.from_numpy(x).to(self.device),
                self.torch.from_numpy(np.asarray(y, np.int64)).to(self.device))

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def infer(self, x):
        with self.torch.no_grad():
            return self.model(x)

    def sync(self):
        if self.device != "cpu":
            self.torch.cuda.synchronize()
