"""Ready-made models for 28×28 single-channel images (digits, MNIST, Fashion-MNIST).

Example:
    >>> from gpunet import models
    >>> model = models.lenet5()            # expects (N, 1, 28, 28) float32 in [0, 1]
    >>> logits = model(x)                  # (N, 10)
"""
from __future__ import annotations

import numbers

from . import nn

__all__ = ["lenet5", "mlp", "resnet8", "MODELS", "build"]


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def lenet5(num_classes=10, in_channels=1, batch_norm=False, dropout=0.0):
    """LeNet-5 with ReLU and max pooling (LeCun et al. 1998, modernised): 61,706 parameters
    (62,158 with ``batch_norm=True``, which ``gpunet train`` uses by default).

    conv 6@5×5 pad 2 → ReLU → maxpool 2 → conv 16@5×5 → ReLU → maxpool 2 → flatten
    → Linear 400→120 → ReLU → Linear 120→84 → ReLU → Linear 84→num_classes.
    ``batch_norm=True`` adds BatchNorm after each conv and hidden linear layer (before the ReLU);
    ``dropout=p`` adds Dropout(p) before each of the two last linear layers.

    Example:
        >>> model = lenet5(num_classes=10)
        >>> model(gn.tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
        gpunet.Size([2, 10])
    """
    num_classes = _positive("num_classes", num_classes)
    in_channels = _positive("in_channels", in_channels)
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

    def block(layer, width, bn):
        return [layer] + ([bn(width)] if batch_norm else []) + [nn.ReLU()]

    drop = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(
        *block(nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), 6, nn.BatchNorm2d), nn.MaxPool2d(2),
        *block(nn.Conv2d(6, 16, kernel_size=5), 16, nn.BatchNorm2d), nn.MaxPool2d(2),
        nn.Flatten(),
        *block(nn.Linear(16 * 5 * 5, 120), 120, nn.BatchNorm1d),
        *drop, *block(nn.Linear(120, 84), 84, nn.BatchNorm1d),
        *drop, nn.Linear(84, num_classes),
    )


def mlp(num_classes=10, hidden=(256, 128), in_features=28 * 28, dropout=0.0):
    """A multi-layer perceptron on flattened images: Flatten → [Linear → ReLU (→ Dropout)]* → Linear.

    Example:
        >>> model = mlp(hidden=(512,), dropout=0.2)      # 784 → 512 → 10
    """
    num_classes = _positive("num_classes", num_classes)
    in_features = _positive("in_features", in_features)
    if isinstance(hidden, numbers.Integral):
        hidden = (hidden,)
    hidden = [_positive("hidden sizes", h) for h in hidden]
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    layers = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's basic block: conv3x3 → BN → ReLU → conv3x3 → BN, plus the input (through a
    1x1 conv and BN where the stride or width changes), then ReLU (He et al. 2016)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn1.forward_relu(self.conv1(x))  # relu(bn1(...)) in one pass
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet8(num_classes=10, in_channels=1, width=16):
    """ResNet-8 for small images (He et al.'s CIFAR family, n = 1): conv3x3 ``width`` → three
    stages of one basic block (``width``, 2·``width``, 4·``width`` channels; stride 2 from the
    second) → global average pool → Linear.  77,754 parameters at ``width=16`` (one input channel); any image size.

    Example:
        >>> model = resnet8()
        >>> model(gn.tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
        gpunet.Size([2, 10])
    """
    num_classes = _positive("num_classes", num_classes)
    in_channels = _positive("in_channels", in_channels)
    width = _positive("width", width)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        BasicBlock(width, width), BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 4 * width, 2),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4 * width, num_classes))


MODELS = {"lenet": lenet5, "mlp": mlp, "resnet8": resnet8}


def build(name, num_classes=10, **options):
    """A model by its CLI name: ``"lenet"``, ``"mlp"`` or ``"resnet8"``; ``options`` go to its builder.

    Example:
        >>> model = build("lenet", batch_norm=True)
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](num_classes=num_classes, **options)
