"""The NumPy backend under two user threads at once, and at any batch and image size.

Its kernels keep per-thread scratch and share one worker pool; these tests show that two
training loops in two Python threads give exactly the weights they give one after the other,
and that no shape (batch 1 to 5,000, odd image sizes) breaks a training step.
"""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet as gn
from gpunet import functional as F
from gpunet import nn, optim


def _small_convnet(image):
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * (image // 2 - 2) ** 2, 5))


def _train(model, x, y, steps, out):
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xs, ys = gn.tensor(x), gn.tensor(y)
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out.append([p.numpy().copy() for p in model.parameters()])


def test_two_threads_training_at_once_match_training_in_turn(rng):
    with gn.use_backend("numpy"):
        data = [(rng.standard_normal((96, 1, 12, 12)).astype(np.float32),
                 rng.integers(0, 5, 96)) for _ in range(2)]
        gn.manual_seed(3)
        models = [_small_convnet(12) for _ in range(2)]
        start = [{k: gn.tensor(v.numpy().copy()) for k, v in m.state_dict().items()} for m in models]
        alone = []
        for m, (x, y) in zip(models, data):
            _train(m, x, y, 6, alone)
        for m, s in zip(models, start):
            m.load_state_dict(s)
        together = [[], []]
        threads = [threading.Thread(target=_train, args=(m, x, y, 6, out))
                   for m, (x, y), out in zip(models, data, together)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for a, b in zip(alone, together):
        assert len(b) == 1, "a training thread raised"
        for pa, pb in zip(a, b[0]):
            np.testing.assert_array_equal(pa, pb)


def _step_at(batch, image, rng):
    with gn.use_backend("numpy"):
        gn.manual_seed(0)
        model = _small_convnet(image)
        x = rng.standard_normal((batch, 1, image, image)).astype(np.float32)
        y = rng.integers(0, 5, batch)
        out = []
        _train(model, x, y, 2, out)
        for p, w in zip(model.parameters(), out[0]):
            assert p.grad.shape == p.shape and np.isfinite(w).all()


@settings(max_examples=12, deadline=None, derandomize=True)
@given(batch=st.integers(1, 5000), image=st.integers(6, 33))
def test_any_batch_and_image_size_trains(batch, image):
    _step_at(batch, image, np.random.default_rng(batch))


@pytest.mark.parametrize("batch", [1300, 4000])
def test_lenet_backward_at_batches_that_once_crashed_the_buffer_pool(batch, rng):
    """Batch 1300 and 4000 raised KeyError from the old ArrayPool (issue 10)."""
    with gn.use_backend("numpy"):
        model = gn.models.lenet5()
        x = gn.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
        loss = F.softmax_cross_entropy(model(x), gn.tensor(rng.integers(0, 10, batch)))
        loss.backward()
        assert np.isfinite(loss.item())
        assert all(p.grad is not None for p in model.parameters())
