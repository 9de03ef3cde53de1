"""F.cross_entropy / F.nll_loss and their modules against PyTorch: class weights, ignore_index,
label_smoothing, (N, C, d1, ...) and unbatched inputs, class-probability targets, every
reduction, values and input gradients, on both backends.

Tolerances: float64 throughout, so the kernels' different summation orders agree to ~1e-12.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet as gn
from gpunet import nn
from gpunet.nn import functional as F

TOL = dict(rtol=1e-10, atol=1e-12)


def _both(fn_name, x, target, weight=None, **kwargs):
    """(ours, theirs): loss values and input gradients from the same float64 data."""
    gx = gn.tensor(x, dtype=gn.float64, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    gt = gn.tensor(target)
    tt = torch.tensor(target)
    gw = None if weight is None else gn.tensor(weight, dtype=gn.float64)
    tw = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    ours = getattr(F, fn_name)(gx if fn_name == "cross_entropy" else F.log_softmax(gx, dim=1 if x.ndim > 1 else 0),
                               gt, weight=gw, **kwargs)
    theirs = getattr(torch.nn.functional, fn_name)(
        tx if fn_name == "cross_entropy" else torch.log_softmax(tx, dim=1 if x.ndim > 1 else 0),
        tt, weight=tw, **kwargs)
    seed = np.random.default_rng(1).standard_normal(tuple(theirs.shape))
    ours.backward(gn.tensor(seed, dtype=gn.float64))
    theirs.backward(torch.tensor(seed))
    return (ours.numpy(), gx.grad.numpy()), (theirs.detach().numpy(), tx.grad.numpy())


def _close(pair):
    (lo, go), (lt, gt) = pair
    np.testing.assert_allclose(lo, lt, **TOL)
    np.testing.assert_allclose(go, gt, **TOL)


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, -1, 2])
def test_class_ids_match_pytorch(backend, fn, reduction, weighted, ignore_index):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4))
    target = np.array([0, 2, -1, 3, 2, 1, -1]) if ignore_index == -1 else np.array([0, 2, 1, 3, 2, 1, 0])
    weight = rng.uniform(0.5, 2.0, 4) if weighted else None
    _close(_both(fn, x, target, weight, ignore_index=ignore_index, reduction=reduction))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_matches_pytorch(backend, reduction, weighted):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5))
    weight = rng.uniform(0.5, 2.0, 5) if weighted else None
    _close(_both("cross_entropy", x, np.array([4, -1, 0, 1, -1, 3]), weight, ignore_index=-1,
                 label_smoothing=0.15, reduction=reduction))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 5), extra=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), smoothing=st.sampled_from([0.0, 0.3]),
       weighted=st.booleans(), ignored=st.booleans(), seed=st.integers(0, 2**16))
def test_geometry_of_class_id_targets(n, c, extra, reduction, smoothing, weighted, ignored, seed):
    """(N, C, d1, ...) inputs with (N, d1, ...) targets, any sizes, on the numpy backend."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *extra))
    target = rng.integers(0, c, size=(n, *extra))
    if ignored:
        target[rng.random(target.shape) < 0.3] = -100
    weight = rng.uniform(0.5, 2.0, c) if weighted else None
    for fn in ("cross_entropy", "nll_loss"):
        kwargs = dict(reduction=reduction, **({"label_smoothing": smoothing} if fn == "cross_entropy" else {}))
        pair = _both(fn, x, target, weight, **kwargs)
        if reduction == "mean" and ignored and (target == -100).all():
            assert np.isnan(pair[0][0]) and np.isnan(pair[1][0])  # the mean of no rows
            continue
        _close(pair)


def test_unbatched_and_probability_targets_match_pytorch(backend):
    rng = np.random.default_rng(3)
    _close(_both("cross_entropy", rng.standard_normal(5), np.array(3)))
    probs = rng.dirichlet(np.ones(4), size=3)
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.2):
            _close(_both("cross_entropy", rng.standard_normal((3, 4)), probs, rng.uniform(0.5, 2, 4),
                         reduction=reduction, label_smoothing=smoothing))


def test_modules_take_pytorchs_arguments():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = np.array([0, 2, 1, -1, 2])
    w = np.array([1.0, 2.0, 0.5], np.float32)
    ours = nn.CrossEntropyLoss(weight=gn.tensor(w), ignore_index=-1, label_smoothing=0.1)(gn.tensor(x), gn.tensor(y))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=-1, label_smoothing=0.1)(
        torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)  # float32
    ours = nn.NLLLoss(reduction="sum", ignore_index=-1)(gn.tensor(x), gn.tensor(y))
    theirs = torch.nn.NLLLoss(reduction="sum", ignore_index=-1)(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
    assert "weight" in dict(nn.CrossEntropyLoss(weight=gn.tensor(w)).state_dict())


def test_bad_arguments_name_what_is_wrong():
    x = gn.zeros(2, 3)
    with pytest.raises(ValueError, match="labels must be in \\[0, 3\\)"):
        F.cross_entropy(x, gn.tensor([0, 3]))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(x, gn.tensor([0, 1]), weight=gn.ones(4))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(x, gn.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="target must have shape"):
        F.cross_entropy(x, gn.tensor([0, 1, 2]))
