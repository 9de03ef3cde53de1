"""One NaN in the data stops training with an error naming the epoch and batch (as Keras'
TerminateOnNaN), never silently; the last good checkpoint stays as it was."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import nn, optim
from gpunet.data import DataLoader, TensorDataset
from gpunet.train import NonFiniteLossError, fit


def _data(n=96, nan_at=None):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = (rng.standard_normal((n, 6)) + 3.0 * np.eye(3, 6)[y]).astype(np.float32)
    if nan_at is not None:
        x[nan_at, 2] = np.nan
    return x, y


def test_nan_in_the_data_stops_fit_naming_epoch_and_batch(backend, tmp_path):
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    ckpt = tmp_path / "checkpoint.npz"
    fit(model, nn.CrossEntropyLoss(), opt, DataLoader(TensorDataset(*_data()), batch_size=16),
        1, checkpoint=ckpt, progress=False)
    saved = ckpt.read_bytes()
    bad = DataLoader(TensorDataset(*_data(nan_at=16 * 3 + 5)), batch_size=16)  # in batch 4
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1, batch 4;.*unchanged"):
        fit(model, nn.CrossEntropyLoss(), opt, bad, 2, checkpoint=ckpt, progress=False)
    assert ckpt.read_bytes() == saved
    if gn.get_backend().reads_are_free:  # checked before the update: the weights stay finite
        assert all(np.isfinite(p.numpy()).all() for p in model.parameters())


def test_detect_anomaly_names_the_op_and_the_line(backend):
    x = gn.tensor(np.array([1.0, -1.0], np.float32), requires_grad=True)
    with np.errstate(invalid="ignore"), gn.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Log returned nan values in its forward output "
                                               r"\(shape \(2,\)\).*test_nonfinite.py.*x.log\(\)"):
            x.log()
    with np.errstate(invalid="ignore"):
        x.log()  # outside the block: no check (NaN flows, as in PyTorch)
    z = gn.tensor(np.array([0.0, 4.0], np.float32), requires_grad=True)
    with np.errstate(divide="ignore"), gn.autograd.detect_anomaly():
        y = z.sqrt().sum()
        with pytest.raises(RuntimeError, match=r"Sqrt returned inf values in its backward"):
            y.backward()


def test_a_bad_label_on_cuda_is_reported_by_fit_not_hidden_as_nan():
    """The device flags the label; fit's first read of a value raises it (issue 12)."""
    with gn.use_backend("cuda"):
        gn.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 3))
        x, y = _data(n=32)
        y[5] = 7  # three classes
        loader = DataLoader(TensorDataset(x, y), batch_size=16)
        with pytest.raises(ValueError, match="label was outside"):
            fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader, 1,
                progress=False)
        with pytest.raises(ValueError, match="label was outside"):  # evaluate reads it back too
            gn.train.evaluate(model, nn.CrossEntropyLoss(), loader)
