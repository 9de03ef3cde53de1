"""Forward values of the primitive ops against their textbook definitions, on every backend."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F


def conv2d_direct(x, w, b, stride, padding):
    """y[n,k,i,j] = b[k] + sum_{c,u,v} w[k,c,u,v] * xpad[n,c,i*s+u,j*s+v], as nested sums."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    xpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xpad[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, k, ho, wo))
    for a in range(n):
        for o in range(k):
            for i in range(ho):
                for j in range(wo):
                    total = 0.0 if b is None else b[o]
                    for ci in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                total += w[o, ci, u, v] * xpad[a, ci, i * sh + u, j * sw + v]
                    y[a, o, i, j] = total
    return y


def pool_direct(x, k, s, p, reduce):
    n, c, h, w = x.shape
    fill = -np.inf if reduce is np.max else 0.0
    xpad = np.full((n, c, h + 2 * p[0], w + 2 * p[1]), fill)
    xpad[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(xpad[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]], axis=(2, 3))
    return y


CONV_CASES = [  # x shape, w shape, stride, padding
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 2), 2, 1),
    ((1, 2, 3, 7), (3, 2, 1, 3), (1, 2), (0, 1)),
    ((3, 1, 4, 4), (2, 1, 4, 4), 1, 0),
    ((1, 2, 6, 5), (2, 2, 5, 3), 3, 2),
]


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_nested_sum(backend, rng, xs, ws, stride, padding, with_bias):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if with_bias else None
    y = F.conv2d(gn.tensor(x), gn.tensor(w), gn.tensor(b) if with_bias else None, stride, padding)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    np.testing.assert_allclose(y.numpy(), conv2d_direct(x, w, b, pair(stride), pair(padding)),
                               rtol=1e-12, atol=1e-12)


POOL_CASES = [  # x shape, kernel, stride, padding
    ((1, 1, 4, 4), 2, 2, 0),
    ((2, 3, 7, 7), 3, 2, 1),  # overlapping windows with padding
    ((1, 2, 5, 6), (2, 3), (1, 2), (1, 0)),
    ((1, 1, 1, 1), 1, 1, 0),
]


@pytest.mark.parametrize("xs, k, s, p", POOL_CASES)
def test_pools_match_definition(backend, rng, xs, k, s, p):
    x = rng.standard_normal(xs)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    np.testing.assert_array_equal(F.max_pool2d(gn.tensor(x), k, s, p).numpy(),
                                  pool_direct(x, pair(k), pair(s), pair(p), np.max))
    np.testing.assert_allclose(F.avg_pool2d(gn.tensor(x), k, s, p).numpy(),
                               pool_direct(x, pair(k), pair(s), pair(p), np.mean), rtol=1e-12)


def test_max_pool_ties_route_gradient_to_first_maximum(backend):
    x = gn.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    F.max_pool2d(x, 2, 1).sum().backward()
    # windows start at (0,0),(0,1),(1,0),(1,1); each picks its top-left element
    expected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], float)
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool_overlapping_windows_accumulate(backend):
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre is the max of all four 2x2 windows
    t = gn.tensor(x, requires_grad=True)
    F.max_pool2d(t, 2, 1).sum().backward()
    assert t.grad.numpy()[0, 0, 1, 1] == 4.0 and t.grad.numpy().sum() == 4.0


def test_softmax_cross_entropy_definition_and_stability(backend):
    logits = np.array([[1e4, 0.0, -1e4], [2.0, 1.0, 0.1], [-1e4, -1e4, -1e4]])
    labels = np.array([1, 0, 2])
    per = F.softmax_cross_entropy(gn.tensor(logits), gn.tensor(labels), reduction="none").numpy()
    shifted = logits - logits.max(1, keepdims=True)
    expected = -(shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))[np.arange(3), labels]
    np.testing.assert_allclose(per, expected, rtol=1e-12)
    assert np.isfinite(per).all() and per[0] == pytest.approx(1e4)
    mean = F.softmax_cross_entropy(gn.tensor(logits), gn.tensor(labels)).item()
    total = F.softmax_cross_entropy(gn.tensor(logits), gn.tensor(labels), reduction="sum").item()
    assert mean == pytest.approx(expected.mean()) and total == pytest.approx(expected.sum())


def test_activations_match_definitions(backend, rng):
    x = rng.standard_normal((3, 4)) * 5
    t = gn.tensor(x)
    np.testing.assert_array_equal(F.relu(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(t).numpy(), np.tanh(x), rtol=1e-12)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(F.softmax(t).numpy(), e / e.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(t).numpy(), np.log(e / e.sum(1, keepdims=True)),
                               rtol=1e-12, atol=1e-12)
    assert F.sigmoid(gn.tensor(np.array([-1000.0, 1000.0]))).numpy().tolist() == [0.0, 1.0]


def test_losses_match_definitions(backend, rng):
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.integers(0, 2, (4, 3)).astype(float)
    P, T = gn.tensor(p), gn.tensor(t)
    assert F.mse_loss(P, T).item() == pytest.approx(((p - t) ** 2).mean())
    assert F.l1_loss(P, T).item() == pytest.approx(np.abs(p - t).mean())
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert F.binary_cross_entropy(P, T).item() == pytest.approx(bce.mean())
    z = np.log(p / (1 - p))  # logits whose sigmoid is p
    assert F.binary_cross_entropy_with_logits(gn.tensor(z), T).item() == pytest.approx(bce.mean())
    big = F.binary_cross_entropy_with_logits(gn.tensor(np.array([1e4, -1e4])), gn.tensor(np.array([0.0, 1.0])))
    assert big.item() == pytest.approx(1e4)
    np.testing.assert_allclose(F.mse_loss(P, T, reduction="none").numpy(), (p - t) ** 2)


def test_linear_and_dropout(backend, rng):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    np.testing.assert_allclose(F.linear(gn.tensor(x), gn.tensor(w), gn.tensor(b)).numpy(), x @ w.T + b)
    gn.manual_seed(0)
    ones = gn.tensor(np.ones((200, 50)))
    y = F.dropout(ones, p=0.25).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02  # 10,000 draws: 4 standard deviations is 0.017
    assert F.dropout(ones, p=0.25, training=False) is ones


def test_float32_stays_float32(backend, rng):
    x = gn.tensor(rng.standard_normal((2, 1, 5, 5)).astype(np.float32), requires_grad=True)
    w = gn.tensor(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), requires_grad=True)
    loss = F.softmax_cross_entropy(F.flatten(F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)),
                                   gn.tensor([0, 3]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
