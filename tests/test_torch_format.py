"""gn.save / gn.load speak torch.save's zip format: read by torch.load(weights_only=True), reading
torch.save's files (views, shared storages, real state_dicts), with no torch needed."""
import collections
import io
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import gpunet as gn
from gpunet import torch_format

torch = pytest.importorskip("torch")

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _values(rng, dtype, shape=(3, 4)):
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _same(t, g):
    """A torch tensor ``t`` equals a gpunet tensor ``g``: values, dtype and shape."""
    assert isinstance(g, gn.Tensor) and g.backend.name == "numpy"
    assert str(t.dtype) == f"torch.{g.dtype}" and tuple(t.shape) == g.shape
    np.testing.assert_array_equal(t.numpy(), g.numpy())


def _torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_reads_in_torch_weights_only(tmp_path, rng, dtype):
    arr = _values(rng, dtype)
    g = gn.Tensor._wrap(arr, gn.backends.backend("numpy"))
    gn.save({"x": g, "scalar": g[0, 0], "empty": g[:0]}, tmp_path / "t.pt")
    out = torch.load(tmp_path / "t.pt", weights_only=True)
    for key in ("x", "scalar", "empty"):
        _same(out[key], {"x": g, "scalar": g[0, 0], "empty": g[:0]}[key])
    back = gn.load(tmp_path / "t.pt")
    _same(out["x"], back["x"])


def test_nested_containers_read_in_torch_and_match_its_own_layout(tmp_path, rng):
    model = gn.nn.Sequential(gn.nn.Conv2d(1, 2, 3), gn.nn.BatchNorm2d(2))
    obj = {"model": model.state_dict(), "epoch": 3, "lr": 1e-3, "name": "run", "none": None,
           "flags": [True, False], "pair": (gn.ones(2), gn.zeros(3, dtype=gn.int64)),
           "nested": {0: {"step": 7, "buf": [gn.randn(2, 2)]}}, "big": 2**70, "dtype": gn.float16,
           "shape": gn.Size([2, 3])}
    gn.save(obj, tmp_path / "ckpt.pt")
    out = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert isinstance(out["model"], collections.OrderedDict) and list(out["model"]) == list(obj["model"])
    for k, v in obj["model"].items():
        _same(out["model"][k], v)
    assert (out["epoch"], out["lr"], out["name"], out["none"], out["flags"], out["big"]) == (3, 1e-3, "run", None,
                                                                                             [True, False], 2**70)
    assert isinstance(out["pair"], tuple) and out["dtype"] is torch.float16 and out["shape"] == torch.Size([2, 3])
    _same(out["pair"][1], obj["pair"][1])
    _same(out["nested"][0]["buf"][0], obj["nested"][0]["buf"][0])
    assert out["nested"][0]["step"] == 7
    # the same records, in the same order, as torch.save writes for the same structure
    torch.save(out, tmp_path / "ckpt_torch.pt")
    ours, theirs = (zipfile.ZipFile(tmp_path / n) for n in ("ckpt.pt", "ckpt_torch.pt"))
    assert [n.replace("ckpt/", "ckpt_torch/", 1) for n in ours.namelist()] == theirs.namelist()
    assert ours.namelist()[0] == "ckpt/data.pkl" and ours.read("ckpt/byteorder") == b"little"
    assert ours.read("ckpt/version") == theirs.read("ckpt_torch/version") == b"3\n"
    data = (tmp_path / "ckpt.pt").read_bytes()
    for info in ours.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename


def test_views_and_shared_storage_are_saved_as_torch_saves_them(tmp_path):
    base = gn.arange(24, dtype=gn.float32).reshape(4, 6)
    be = base.backend
    views = {"base": base, "rows": gn.Tensor._wrap(base._data[1:3], be),
             "step": gn.Tensor._wrap(base._data[:, 1::2], be), "t": gn.Tensor._wrap(base._data.T, be),
             "param": gn.nn.Parameter(base)}
    gn.save(views, tmp_path / "v.pt")
    out = torch.load(tmp_path / "v.pt", weights_only=True)
    for k, v in views.items():
        _same(out[k].detach(), v)
    assert out["step"].stride() == (6, 2) and out["step"].storage_offset() == 1
    assert out["t"].stride() == (1, 6) and out["rows"].storage_offset() == 6
    assert len({out[k].untyped_storage().data_ptr() for k in views}) == 1  # one storage, as in torch
    assert isinstance(out["param"], torch.nn.Parameter) and out["param"].requires_grad


def test_torch_views_offsets_strides_and_shared_storage_load(rng):
    base = torch.arange(60, dtype=torch.float64).reshape(5, 12)
    obj = {"base": base, "slice": base[1:4, 2:9:3], "t": base.t(), "expand": torch.ones(3, 1).expand(3, 4),
           "narrow": base.view(-1)[7:19], "other": torch.tensor([1, 2], dtype=torch.int8)}
    out = gn.load(io.BytesIO(_torch_bytes(obj)))
    for k, v in obj.items():
        _same(v.contiguous(), out[k])
    out["base"]._data[0, 7] = -1.0  # contiguous views of one storage share memory, as in torch
    assert out["narrow"].numpy()[0] == -1.0 and out["t"].numpy()[7, 0] == 7.0  # strided ones are copies


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_torch_dtype_loads(rng, dtype):
    t = torch.from_numpy(_values(rng, dtype, (2, 5)))
    out = gn.load(io.BytesIO(_torch_bytes([t, t[:, 1:], torch.nn.Parameter(t.float())])))
    _same(t, out[0])
    _same(t[:, 1:].contiguous(), out[1])
    assert type(out[2]).__name__ == "Parameter" and out[2].requires_grad


def test_real_torch_state_dicts_load_into_gpunet_modules(rng, tmp_path):
    torch.manual_seed(0)
    lstm, conv = torch.nn.LSTM(3, 5, num_layers=2), torch.nn.Conv2d(2, 4, 3, padding=1)
    torch.save(lstm.state_dict(), tmp_path / "lstm.pt")
    torch.save({"conv": conv.state_dict(), "optim": torch.optim.Adam(conv.parameters()).state_dict()},
               tmp_path / "conv.pth")
    ours = gn.nn.LSTM(3, 5, num_layers=2)
    ours.load_state_dict(gn.load(tmp_path / "lstm.pt"))
    for k, v in lstm.state_dict().items():
        _same(v, ours.state_dict()[k])
    ck = gn.load(tmp_path / "conv.pth", map_location="cpu", weights_only=True)
    gconv = gn.nn.Conv2d(2, 4, 3, padding=1)
    gconv.load_state_dict(ck["conv"])
    assert ck["optim"]["param_groups"][0]["lr"] == 1e-3
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    with torch.no_grad():
        want = conv(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gconv(gn.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_numpy_arrays_both_ways(tmp_path):
    arrays = {"f": np.arange(6.0).reshape(2, 3), "b": np.array([True, False]), "s": np.float32(1.5),
              "fortran": np.asfortranarray(np.ones((2, 3), np.int16))}
    out = gn.load(io.BytesIO(_torch_bytes(arrays)))  # torch.save pickles them with NumPy's reduce
    gn.save(arrays, tmp_path / "np.pt")
    back = torch.load(tmp_path / "np.pt", weights_only=False)
    for got in (out, back, gn.load(tmp_path / "np.pt")):
        for k, v in arrays.items():
            assert type(got[k]) is type(v) and got[k].dtype == v.dtype
            np.testing.assert_array_equal(got[k], v)


def test_file_objects_both_ways(tmp_path):
    with open(tmp_path / "a.pt", "wb") as f:
        gn.save({"w": gn.ones(2, 3)}, f)
    with open(tmp_path / "a.pt", "rb") as f:
        _same(torch.load(f, weights_only=True)["w"], gn.ones(2, 3))
    with open(tmp_path / "b.pt", "wb") as f:
        torch.save({"w": torch.full((2,), 7.0)}, f)
    with open(tmp_path / "b.pt", "rb") as f:
        assert gn.load(f)["w"].tolist() == [7.0, 7.0]


def test_map_location_dict_and_cuda_backend(tmp_path):
    data = _torch_bytes({"w": torch.arange(3.0)})
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # pretend it was saved from a GPU
        records = {n: z.read(n) for n in z.namelist()}
    pkl = "archive/data.pkl"
    records[pkl] = records[pkl].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in records.items():
            z.writestr(n, b)
    assert gn.load(io.BytesIO(buf.getvalue()), map_location={"cuda:0": "cpu"})["w"].backend.name == "numpy"
    on_gpu = gn.load(io.BytesIO(buf.getvalue()), map_location=gn.device("cuda"))["w"]
    assert on_gpu.backend.name == "cuda" and on_gpu.tolist() == [0.0, 1.0, 2.0]
    gn.save({"g": on_gpu}, tmp_path / "g.pt")  # saved from device memory, as a cpu tensor
    assert torch.load(tmp_path / "g.pt", weights_only=True)["g"].tolist() == [0.0, 1.0, 2.0]


def test_gn_load_and_save_need_no_torch(tmp_path):
    """In a process where ``import torch`` fails, gn.load reads torch.save files and gn.save
    writes files that torch.load reads."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"w": base.t(), "part": base[1:, 1:3], "n": 5, "np": np.arange(3)}, tmp_path / "in.pt")
    torch.save(torch.nn.LSTM(2, 3).state_dict(), tmp_path / "lstm.pt")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text("raise ImportError('torch is not installed here')\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(fake)!r})
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("torch imported")
        import numpy as np
        import gpunet as gn
        ck = gn.load({str(tmp_path / "in.pt")!r})
        assert ck["w"].numpy().tolist() == np.arange(12.0).reshape(3, 4).T.tolist()
        assert ck["part"].numpy().tolist() == [[5.0, 6.0], [9.0, 10.0]] and ck["n"] == 5
        assert ck["np"].tolist() == [0, 1, 2]
        lstm = gn.nn.LSTM(2, 3)
        lstm.load_state_dict(gn.load({str(tmp_path / "lstm.pt")!r}))
        gn.save({{"lstm": lstm.state_dict(), "w": ck["w"]}}, {str(tmp_path / "out.pt")!r})
        print("torch" in sys.modules and getattr(sys.modules["torch"], "__file__", ""))
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    for k, v in torch.load(tmp_path / "lstm.pt").items():
        assert torch.equal(out["lstm"][k], v)
    assert torch.equal(out["w"], base.t())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated
def test_torch_files_globals_are_refused_and_torchscript_named(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil.pt").write_bytes(_torch_bytes({"w": torch.ones(1), "x": Evil()}))
    with pytest.raises(torch_format.UnsupportedGlobalError, match=r"Unsupported global: GLOBAL posix\.system"):
        gn.load(tmp_path / "evil.pt", weights_only=False)
    assert not (tmp_path / "pwned").exists()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "ts.pt")
    with pytest.raises(ValueError, match="TorchScript archive"):
        gn.load(tmp_path / "ts.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="legacy format"):
        gn.load(tmp_path / "old.pt")
