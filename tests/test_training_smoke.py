"""End to end: a tiny MLP and a tiny convnet learn a small synthetic problem (the loss must fall)."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import nn, optim
pytestmark = pytest.mark.training  # what training reaches: must hold on any BLAS kernel


def blobs(rng, n=32, classes=3, features=4):
    centres = rng.standard_normal((classes, features)) * 3
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.standard_normal((n, features))
    return gn.tensor(x.astype(np.float32)), gn.tensor(y)


def fit(model, opt, x, y, steps=30):
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    pytest.param(lambda ps: optim.Adam(ps, lr=0.02), id="adam"),
])
def test_mlp_loss_falls(backend, rng, make_opt):
    # A batch of 8: the cuda backend runs in the (slow) simulator without a GPU.
    gn.manual_seed(0)
    x, y = blobs(rng, n=8)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 3))
    losses = fit(model, make_opt(model.parameters()), x, y)
    assert losses[-1] < 0.3 * losses[0], losses
    model.eval()
    accuracy = (model(x).argmax(axis=1).numpy() == y.numpy()).mean()
    assert accuracy > 0.9


def test_convnet_loss_falls(rng):
    # NumPy backend only: 30 conv steps in Numba's CUDA simulator take minutes; the cuda kernels
    # are proven op by op (gradchecks) in the other tests, and this test is about learning.
    gn.manual_seed(0)
    with gn.use_backend("numpy"):
        n = 24
        y = rng.integers(0, 2, n)
        x = rng.standard_normal((n, 1, 8, 8)) * 0.3
        x[y == 0, :, 2:6, 3:5] += 1.5  # class 0: a vertical bar, class 1: a horizontal bar
        x[y == 1, :, 3:5, 2:6] += 1.5
        x, y = gn.tensor(x.astype(np.float32)), gn.tensor(y)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.1),
            nn.Linear(8, 2))
        losses = fit(model, optim.AdamW(model.parameters(), lr=0.01), x, y)
        assert losses[-1] < 0.3 * losses[0], losses


def test_lstm_learns_to_sum_a_sequence(rng):
    gn.manual_seed(0)
    with gn.use_backend("numpy"):
        x = rng.uniform(-1, 1, (16, 5, 1)).astype(np.float32)
        target = gn.tensor(x.sum(axis=1))
        lstm, head = nn.LSTM(1, 8, batch_first=True), nn.Linear(8, 1)
        params = list(lstm.parameters()) + list(head.parameters())
        opt = optim.Adam(params, lr=0.03)
        losses = []
        for _ in range(40):
            opt.zero_grad()
            out, _ = lstm(gn.tensor(x))
            loss = nn.MSELoss()(head(out[:, -1]), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.2 * losses[0], losses
