"""The models users train next, written once in PyTorch's names and built in either framework.

Each builder takes the framework's top module (``gpunet`` or ``torch``) and returns a model of
that framework's ``nn``; gpunet builds first, and PyTorch's copy loads gpunet's initial weights,
so both train from the same numbers.  The cases:

- ``resnet8``: a CIFAR-style ResNet-8 (He et al. 2016): 3×3 conv 16 → three stages of one
  basic block (16, 32, 64 channels; stride 2 and a 1×1 shortcut from the second), BatchNorm,
  residual adds, ``AdaptiveAvgPool2d``, on 3×32×32;
- ``vgg``: conv 64, conv 64, pool, conv 128, conv 128, pool (3×3, BatchNorm-free, bias) → linear,
  on 3×32×32;
- ``lenetbn``: ``gpunet train``'s default LeNet-5 (BatchNorm between each layer and its ReLU);
- ``lstmlm``/``grulm``: embedding 128 → one LSTM/GRU layer of 200 → linear over a 1,000-word
  vocabulary, 35 steps of batch 20, the loss over every position (the word LM's shape).

Example:
    >>> import gpunet
    >>> model = build_model(gpunet, "resnet8")
    >>> model(gpunet.zeros(2, 3, 32, 32)).shape
    gpunet.Size([2, 10])
"""
from __future__ import annotations

import numpy as np

LM_SHAPE = dict(vocab=1000, emb=128, hidden=200, seq=35, batch=20)
IMAGE_SHAPES = {"resnet8": (3, 32, 32), "vgg": (3, 32, 32), "lenetbn": (1, 28, 28)}


def _resnet8(T):
    nn, F = T.nn, T.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNet8(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.layer1 = BasicBlock(16, 16, 1)
            self.layer2 = BasicBlock(16, 32, 2)
            self.layer3 = BasicBlock(32, 64, 2)
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            return self.fc(T.flatten(self.pool(out), 1))

    return ResNet8()


def _vgg(T):
    nn = T.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128 * 8 * 8, 10))


def _lenetbn(T):
    nn = T.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.BatchNorm1d(120), nn.ReLU(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, 10))


def _language_model(T, cell):
    nn, s = T.nn, LM_SHAPE

    class LanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(s["vocab"], s["emb"])
            self.rnn = getattr(nn, cell)(s["emb"], s["hidden"])
            self.decoder = nn.Linear(s["hidden"], s["vocab"])

        def forward(self, tokens):
            out, _ = self.rnn(self.encoder(tokens))
            return self.decoder(out).reshape(-1, s["vocab"])

    return LanguageModel()


BUILDERS = {"resnet8": _resnet8, "vgg": _vgg, "lenetbn": _lenetbn,
            "lstmlm": lambda T: _language_model(T, "LSTM"),
            "grulm": lambda T: _language_model(T, "GRU")}


def build_model(T, name):
    """``name``'s model in framework ``T`` (the ``gpunet`` or ``torch`` module)."""
    return BUILDERS[name](T)


def initial_state(name, seed=0):
    """gpunet's initial state dict for ``name`` (seeded), as NumPy arrays both frameworks load."""
    import gpunet

    gpunet.manual_seed(seed)
    return {k: v.numpy().copy() for k, v in build_model(gpunet, name).state_dict().items()}


def data(name, n, seed=1):
    """Inputs and labels: images (n, C, H, W) and class ids, or token ids (seq, batch) and next
    tokens (seq·batch,) for the language models (``n`` is their batch)."""
    rng = np.random.default_rng(seed)
    if name in IMAGE_SHAPES:
        return (rng.standard_normal((n, *IMAGE_SHAPES[name])).astype(np.float32),
                rng.integers(0, 10, n))
    s = LM_SHAPE
    tokens = rng.integers(0, s["vocab"], (s["seq"] + 1, n))
    return tokens[:-1], tokens[1:].reshape(-1)
