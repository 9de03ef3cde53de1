"""Every op of gpunet.functional passes a float64 gradient check, on every backend."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F


def t(rng, *shape, low=None, high=None):
    data = rng.uniform(low, high, shape) if low is not None else rng.standard_normal(shape)
    return gn.tensor(data, requires_grad=True)


@pytest.mark.parametrize("xs, ws, stride, padding", [
    ((1, 1, 3, 3), (1, 1, 1, 1), 1, 0),
    ((2, 3, 7, 5), (2, 3, 3, 2), 2, 1),
    ((1, 2, 5, 7), (3, 2, 3, 3), (2, 1), (1, 2)),
])
def test_conv2d(backend, rng, xs, ws, stride, padding):
    x, w, b = t(rng, *xs), t(rng, *ws), t(rng, ws[0])
    assert gn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), [x, w, b])


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("xs, k, s, p", [((1, 1, 4, 4), 2, 2, 0), ((2, 2, 7, 5), 3, 2, 1),
                                          ((1, 1, 3, 6), (1, 3), (1, 2), (0, 1))])
def test_pooling(backend, rng, pool, xs, k, s, p):
    # distinct values: finite differences are undefined at a tie in max pooling
    x = gn.tensor(rng.permutation(np.prod(xs)).reshape(xs) * 0.1, requires_grad=True)
    assert gn.gradcheck(lambda x: pool(x, k, s, p), [x])


@pytest.mark.parametrize("fn", [F.relu, F.sigmoid, F.tanh, F.softmax, F.log_softmax,
                                lambda x: F.softmax(x, axis=0), F.flatten])
def test_activations(backend, rng, fn):
    x = gn.tensor(rng.standard_normal((3, 7)) + 0.01, requires_grad=True)  # keep away from relu's kink
    assert gn.gradcheck(fn, [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n, c", [(1, 1), (3, 7), (4, 3)])
def test_softmax_cross_entropy(backend, rng, reduction, n, c):
    x, labels = t(rng, n, c), gn.tensor(rng.integers(0, c, n))
    assert gn.gradcheck(lambda x: F.softmax_cross_entropy(x, labels, reduction), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses(backend, rng, reduction):
    a, target = t(rng, 3, 4), t(rng, 3, 4)
    assert gn.gradcheck(lambda a, b: F.mse_loss(a, b, reduction), [a, target])
    a2 = gn.tensor(a.numpy() + np.sign(a.numpy() - target.numpy()) * 0.1, requires_grad=True)
    assert gn.gradcheck(lambda a, b: F.l1_loss(a, b, reduction), [a2, target])
    p, y = t(rng, 3, 4, low=0.1, high=0.9), t(rng, 3, 4, low=0.0, high=1.0)
    assert gn.gradcheck(lambda p, y: F.binary_cross_entropy(p, y, reduction), [p, y])
    assert gn.gradcheck(lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction), [a, y])


def test_linear_and_dropout(backend, rng):
    x, w, b = t(rng, 5, 4), t(rng, 3, 4), t(rng, 3)
    assert gn.gradcheck(F.linear, [x, w, b])
    x3 = t(rng, 2, 5, 4)  # leading batch dimensions
    assert gn.gradcheck(F.linear, [x3, w, b])

    def dropout_with_fixed_mask(x):
        gn.manual_seed(7)  # the same mask on every call, so the function is deterministic
        return F.dropout(x, p=0.4)

    assert gn.gradcheck(dropout_with_fixed_mask, [t(rng, 4, 6)])


@pytest.mark.parametrize("fn", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1),
    lambda a, b: (a @ b.T).exp().log(), lambda a, b: (a ** 3) * b ** 2, lambda a, b: -a * 2 + 1 / (b * b + 1),
])
def test_arithmetic_with_broadcasting(backend, rng, fn):
    a, b = t(rng, 4, 3), t(rng, 1, 3)
    assert gn.gradcheck(fn, [a, b])


@pytest.mark.parametrize("fn", [
    lambda a: a.sum(), lambda a: a.sum(axis=1), lambda a: a.mean(axis=(0, 2), keepdims=True),
    lambda a: a.max(axis=-1).values, lambda a: a.max(), lambda a: a.reshape(6, 4),
    lambda a: a.permute(2, 0, 1), lambda a: a.transpose(0, 2), lambda a: a[1, :, ::2],
    lambda a: a[np.array([0, 0, 1])], lambda a: a.T, lambda a: a.abs().clip(0.2, 1.0),
    lambda a: a.min(1, keepdim=True).values, lambda a: a.var(dim=1), lambda a: a.std(),
    lambda a: (a * a + 1).sqrt(), lambda a: a.unsqueeze(1).squeeze(1), lambda a: a.clone() * 2,
])
def test_reductions_and_shapes(backend, rng, fn):
    a = gn.tensor(rng.permutation(24).reshape(2, 3, 4) * 0.1 - 1.15, requires_grad=True)
    assert gn.gradcheck(fn, [a])


def test_gradcheck_catches_a_wrong_gradient(rng):
    class BadSquare(gn.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, gy):
            return (gy * ctx.saved[0],)  # missing the factor 2

    x = gn.tensor(rng.standard_normal(5), requires_grad=True, backend="numpy")
    with pytest.raises(gn.GradcheckError, match="input 0 .* disagrees at index"):
        gn.gradcheck(BadSquare.apply, [x])


@pytest.mark.parametrize("n, hs", [(1, 1), (3, 2)])
def test_lstm_and_gru_cells(backend, rng, n, hs):
    from gpunet.ops.recurrent import gru_cell, lstm_cell

    gi, gh, state = t(rng, n, 4 * hs), t(rng, n, 4 * hs), t(rng, n, hs)
    assert gn.gradcheck(lambda a, b, c: F.concat(lstm_cell(a, b, c), dim=1), [gi, gh, state])
    gi, gh = t(rng, n, 3 * hs), t(rng, n, 3 * hs)
    assert gn.gradcheck(gru_cell, [gi, gh, state])


@pytest.mark.parametrize("bias, masked", [(True, True), (False, False)])
def test_lstm_and_gru_over_time(backend, rng, bias, masked):
    from gpunet.ops.recurrent import GRUSequence, LSTMSequence

    steps, n, hs = 3, 2, 2
    mask = (np.arange(steps)[:, None, None] < np.array([3, 1])[None, :, None]) if masked else None
    mask = None if mask is None else gn.get_backend().asarray(mask.astype(np.float64))
    for cls, gates, n_states in ((LSTMSequence, 4, 2), (GRUSequence, 3, 1)):
        x, w_ih, w_hh = t(rng, steps, n, 3), t(rng, gates * hs, 3), t(rng, gates * hs, hs)
        h0 = [t(rng, n, hs) for _ in range(n_states)]
        b_ih, b_hh = ([t(rng, gates * hs)] if bias else [] for _ in range(2))
        assert gn.gradcheck(lambda *a: cls.apply(*a, bias=bias, mask=mask),
                            [x, w_ih, *b_ih, *h0, w_hh, *b_hh])


def test_a_sequence_of_no_steps_has_zero_weight_gradients(rng):
    from gpunet.ops.recurrent import GRUSequence, LSTMSequence

    for cls, gates, states in ((LSTMSequence, 4, 2), (GRUSequence, 3, 1)):
        x, w_ih, w_hh = t(rng, 0, 2, 3), t(rng, gates * 2, 3), t(rng, gates * 2, 2)
        h0 = [t(rng, 2, 2) for _ in range(states)]
        cls.apply(x, w_ih, *h0, w_hh, bias=False).sum().backward()
        assert not w_ih.grad.numpy().any() and not w_hh.grad.numpy().any()
        assert all(h.grad.shape == (2, 2) and not h.grad.numpy().any() for h in h0)


def test_recurrent_cell_argument_errors(rng):
    from gpunet.ops.recurrent import gru_cell, lstm_cell

    with pytest.raises(ValueError, match=r"lstm_cell: gh must have shape \(N, 4\*H\) = \(2, 8\) "
                                         r"for c_prev of shape \(2, 2\), got \(2, 6\)"):
        lstm_cell(t(rng, 2, 8), t(rng, 2, 6), t(rng, 2, 2))
    with pytest.raises(ValueError, match=r"gru_cell: h_prev must be a 2-D float Tensor, got shape \(2,\)"):
        gru_cell(t(rng, 2, 6), t(rng, 2, 6), t(rng, 2))


@pytest.mark.parametrize("index", [(slice(1, 3), slice(None, None, 2)), (slice(None), 1),
                                   (Ellipsis, None, 0), 2, ([0, 0, 2],), (slice(None), [3, 1, 3])])
def test_getitem_basic_and_repeated_fancy_indices(backend, rng, index):
    x = t(rng, 4, 5)
    assert gn.gradcheck(lambda x: x[index] * 1.5, [x])
