"""Interop with PyTorch: DLPack both ways (zero-copy) and weights in safetensors files."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import models

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")


def test_dlpack_both_ways_share_memory():
    t = torch.arange(6.0).reshape(2, 3)
    g = gn.from_dlpack(t)
    assert g.backend.name == "numpy" and g.shape == (2, 3) and g.dtype == np.float32
    t[0, 0] = 42.0
    assert g.numpy()[0, 0] == 42.0  # zero-copy
    back = torch.from_dlpack(g)
    g.data[1, 2] = -1.0
    assert back[1, 2].item() == -1.0
    assert np.from_dlpack(g)[0, 0] == 42.0
    with pytest.raises(TypeError, match="from_dlpack: expected an array with __dlpack__"):
        gn.from_dlpack([1, 2])


def test_a_pytorch_safetensors_lenet_gives_the_same_logits(tmp_path, rng):
    from safetensors.torch import save_file

    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    ours = models.lenet5()
    names = list(ours.state_dict())
    path = tmp_path / "lenet.safetensors"
    save_file({n: v for n, v in zip(names, tnet.state_dict().values())}, str(path))
    ours.load_state_dict(gn.load(path))
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        want = tnet(torch.tensor(x)).numpy()
    with gn.no_grad():
        got = ours.eval()(gn.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_save_and_load_safetensors_round_trip_atomically(tmp_path):
    model = models.lenet5()
    path = tmp_path / "m.safetensors"
    gn.save(model.state_dict(), path)
    loaded = gn.load(path)
    assert sorted(loaded) == sorted(model.state_dict())  # safetensors stores keys sorted
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded[k], v.numpy())
    assert not list(tmp_path.glob(".*tmp"))  # written to a temporary name, then renamed
    with pytest.raises(ValueError, match="holds a flat dict of arrays"):
        gn.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00garbage")
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        gn.load(tmp_path / "bad.safetensors")
