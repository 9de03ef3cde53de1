"""gn.save / gn.load in PyTorch's own format (.pt), no torch needed: round trips that keep types,
values and shared storage, file objects, whole modules only from trusted classes, malicious
pickles refused, damaged files, big-endian data and map_location."""

import collections
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import gpunet as gn
from gpunet.serialization import load, save
from gpunet.torch_format import UnsupportedGlobalError

from test_serialization import FakeTensor, _model_state, assert_same


def test_pt_round_trip_keeps_types_values_and_shared_storage(tmp_path):
    base = gn.arange(12, dtype=gn.float64).reshape(3, 4)
    be = base.backend
    obj = {"sd": collections.OrderedDict(w=base, row=gn.Tensor._wrap(base._data[1], be),
                                         col=gn.Tensor._wrap(base._data[:, 2], be)),
           "param": gn.nn.Parameter(np.ones(2, np.float32)), "ints": gn.tensor([1, 2], dtype=gn.int8),
           "mask": gn.tensor([True, False]), "np": np.arange(3, dtype=np.int16), "np_scalar": np.float32(0.5),
           "nums": (3, 2**70, 0.25, float("inf"), 1 + 2j), "text": ["a", b"raw", None, True], "set": {1, 2},
           "dtype": gn.int64, "shape": gn.Size([2, 3]), "where": gn.device("cpu"), 7: "int key"}
    save(obj, tmp_path / "ckpt.pt")
    out = load(tmp_path / "ckpt.pt")
    assert type(out["sd"]) is collections.OrderedDict and list(out) == list(obj)
    for k, v in obj["sd"].items():
        assert type(out["sd"][k]) is gn.Tensor and out["sd"][k].backend.name == "numpy"
        np.testing.assert_array_equal(out["sd"][k].numpy(), v.numpy())
    out["sd"]["w"]._data[1, 0] = -5.0  # the row shares the storage; the strided column is a copy
    assert out["sd"]["row"].numpy()[0] == -5.0 and out["sd"]["col"].numpy().tolist() == [2.0, 6.0, 10.0]
    assert type(out["param"]).__name__ == "Parameter" and out["param"].requires_grad
    assert out["ints"].dtype == gn.int8 and out["mask"].tolist() == [True, False]
    assert_same(out["np"], obj["np"])
    assert_same(out["np_scalar"], obj["np_scalar"])
    for key in ("nums", "text", "set", "dtype", "shape", "where", 7):
        assert out[key] == obj[key] and type(out[key]) is type(obj[key]), key


def test_pt_file_objects_and_unseekable_readers():
    buf = io.BytesIO()
    save({"w": gn.ones(2, 3)}, buf)
    assert zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()[0] == "archive/data.pkl"
    buf.seek(0)
    assert load(buf)["w"].shape == (2, 3)

    class Pipe(io.BytesIO):  # readable, not seekable
        seekable = staticmethod(lambda: False)

    assert load(Pipe(buf.getvalue()))["w"].tolist() == [[1.0] * 3] * 2


def test_whole_module_refused_by_npz_in_one_line(tmp_path):
    model = gn.nn.Sequential(gn.nn.Linear(2, 3))
    message = ("gn.save: obj is a whole Sequential module, which only a .pt file can hold; save "
               "model.state_dict() instead and load it with model.load_state_dict(gn.load(path))")
    with pytest.raises(TypeError) as info:
        save(model, tmp_path / "m.npz")
    assert str(info.value) == message and "\n" not in message
    with pytest.raises(TypeError, match=r"is a SGD object; save its .state_dict\(\) instead"):
        save({"opt": gn.optim.SGD(model.parameters(), lr=0.1)}, tmp_path / "m.pt")
    assert os.listdir(tmp_path) == []


def test_whole_module_loads_only_from_trusted_classes(tmp_path):
    """As torch 2.6+: torch.save(model) pickles it; torch.load refuses its classes unless allow-listed."""
    gn.manual_seed(0)
    model = gn.nn.Sequential(gn.nn.Linear(2, 3), gn.nn.ReLU(), gn.nn.Linear(3, 1))
    save(model, tmp_path / "m.pt")
    with pytest.raises(ValueError) as info:
        load(tmp_path / "m.pt")
    assert "GLOBAL gpunet.nn.containers.Sequential was not an allowed global" in str(info.value)
    assert "gn.serialization.safe_globals([Sequential])" in str(info.value) and "\n" not in str(info.value)
    trusted = [gn.nn.modules.container.Sequential, gn.nn.modules.linear.Linear, gn.nn.modules.activation.ReLU]
    with gn.serialization.safe_globals(trusted):
        back = load(tmp_path / "m.pt")
    assert gn.serialization.get_safe_globals() == []
    x = gn.randn(4, 2)
    assert back(x).tolist() == model(x).tolist()
    assert [type(p).__name__ for p in back.parameters()] == ["Parameter"] * 4
    gn.serialization.add_safe_globals(trusted)
    try:
        assert type(load(tmp_path / "m.pt")[0]) is gn.nn.Linear
    finally:
        gn.serialization.clear_safe_globals()


def test_pt_save_rejects_other_objects_naming_the_type(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['f'\] is of type builtins.function; gn.save stores tensors"):
        save({"f": lambda: 0}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match=r"obj\[0\]\[1\] is of type .*FakeTensor"):
        save([[1, FakeTensor([1.0])]], tmp_path / "x.pt")
    with pytest.raises(TypeError, match="has dtype uint16"):
        save(gn.Tensor._wrap(np.zeros(2, np.uint16), gn.backends.backend("numpy")), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="compress=True needs an .npz file"):
        save({"a": np.ones(1)}, tmp_path / "x.pt", compress=True)
    assert os.listdir(tmp_path) == []


def _zip(records, archive="archive"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in records.items():
            z.writestr(f"{archive}/{name}", data)
    return buf.getvalue()


def test_malicious_pickle_is_refused_naming_the_global(tmp_path):
    target = tmp_path / "pwned"
    command = f"touch {target}".encode()
    evil = b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    (tmp_path / "evil.pt").write_bytes(_zip({"data.pkl": evil, "byteorder": b"little", "version": b"3\n"}))
    with pytest.raises(UnsupportedGlobalError, match=r"evil.pt: Unsupported global: GLOBAL os\.system was not an allowed global"):
        load(tmp_path / "evil.pt", weights_only=False)
    assert not target.exists()
    assert issubclass(UnsupportedGlobalError, (ValueError, pickle.UnpicklingError))
    sneaky = pickle.dumps({"x": collections.Counter()}, protocol=2)  # harmless, but not on the list
    with pytest.raises(UnsupportedGlobalError, match="GLOBAL collections.Counter"):
        load(io.BytesIO(_zip({"data.pkl": sneaky})))


def test_legacy_npz_is_told_by_content_and_damaged_pt_files_raise(tmp_path):
    state = {"model": _model_state(), "epoch": 3}
    save(state, tmp_path / "old.pt", format="npz")  # what gn.save wrote before, under any name
    assert_same(load(tmp_path / "old.pt"), state)
    save({"w": gn.arange(1000, dtype=gn.float32)}, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt is not a readable"):
        load(tmp_path / "cut.pt")
    flipped = bytearray(data)
    flipped[data.index(np.float32(500).tobytes())] ^= 0xFF  # inside the storage: the CRC catches it
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="flip.pt is a damaged torch.save file"):
        load(tmp_path / "flip.pt")


def test_big_endian_files_and_map_location(tmp_path):
    save({"w": gn.tensor([1.5, -2.0])}, tmp_path / "le.pt")
    z = zipfile.ZipFile(tmp_path / "le.pt")
    records = {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
    records["byteorder"] = b"big"
    records["data/0"] = np.frombuffer(records["data/0"], "<f4").astype(">f4").tobytes()
    assert load(io.BytesIO(_zip(records)))["w"].tolist() == [1.5, -2.0]
    assert load(io.BytesIO(_zip(records)), map_location="cuda")["w"].backend.name == "cuda"
    with pytest.raises(TypeError, match="map_location must be"):
        load(io.BytesIO(_zip(records)), map_location=3)
