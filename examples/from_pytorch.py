"""From PyTorch to gpunet: a plain PyTorch training script whose only change is its imports.

The three import lines below are the whole port; the PyTorch original reads
``import torch`` / ``from torch import nn, optim`` / ``import torch.nn.functional as F``.
Everything else is what a PyTorch user types from memory: an ``nn.Module`` subclass, a manual
loop with ``zero_grad`` / ``backward`` / ``step``, ``train()`` / ``eval()``, ``no_grad``,
``view`` / ``permute``, ``argmax`` accuracy and ``clip_grad_norm_``. It trains an MLP and a
small convnet with BatchNorm on the embedded handwritten digits and prints their accuracy.
``tests/test_examples.py`` runs it and its PyTorch original from the same weights and checks
that the losses agree to float32 rounding.

    python examples/from_pytorch.py [--fast]
"""
import zlib

import numpy as np

import gpunet as torch                      # PyTorch: import torch
from gpunet import nn, optim                # PyTorch: from torch import nn, optim
from gpunet import functional as F          # PyTorch: import torch.nn.functional as F

from gpunet.datasets import digits          # the data: plain NumPy arrays
from _common import parse_args


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.view(x.size(0), -1))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.permute(0, 2, 3, 1)                 # NHWC, as a port from Keras would have it
        return self.fc(x.reshape(x.size(0), -1))


def same_start(model):
    """Initial weights from NumPy, seeded by parameter name: identical in both frameworks."""
    state = {}
    for name, p in model.named_parameters():
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        bound = 1.0 / np.sqrt(np.prod(p.shape[1:])) if len(p.shape) > 1 else 0.1
        state[name] = torch.tensor(rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32))
    model.load_state_dict(state, strict=False)
    return model


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    model.train()
    return (pred == y).float().mean().item()


def train(model, x, y, steps, batch_size=64, lr=0.05):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for step in range(steps):
        start = (step * batch_size) % (len(x) - batch_size)
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        opt.step()
        losses.append(loss.item())
    return losses


def main(argv=None, steps=None, double=False):
    """Train both models; returns their losses. ``double=True`` trains in float64 (the tests
    compare frameworks there, where rounding cannot be amplified by training)."""
    args = parse_args(__doc__, argv)
    steps = steps or (40 if args.fast else 300)
    torch.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = digits()
    order = np.random.default_rng(0).permutation(len(x_train))
    x, y = torch.tensor(x_train[order]), torch.tensor(y_train[order])
    xt, yt = torch.tensor(x_test), torch.tensor(y_test)
    if double:
        x, xt = x.double(), xt.double()
    results = {}
    for name, model in (("mlp", MLP()), ("convnet", ConvNet())):
        model = same_start(model)
        losses = train(model.double() if double else model, x, y, steps)
        results[name] = losses
        print(f"{name:8s} loss {losses[0]:.3f} -> {losses[-1]:.3f} over {steps} steps, "
              f"test accuracy {accuracy(model, xt, yt):.1%}")
    return results


if __name__ == "__main__":
    main()
