"""Tests for gpunet.serialization: npz round trips, nested state, atomic writes, mismatch messages
(PyTorch's .pt format: test_serialization_pt.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpunet import serialization
from gpunet.serialization import META_KEY, StateDictMismatchError, check_state_dict, load, save


class FakeTensor:
    """Stands in for a gpunet Tensor: anything with .numpy() is saved from host memory."""

    def __init__(self, data):
        self._data = np.asarray(data)

    def numpy(self):
        return self._data.copy()


def _model_state():
    rng = np.random.default_rng(0)
    return {
        "conv1.weight": rng.standard_normal((6, 1, 5, 5)).astype(np.float32),
        "conv1.bias": np.zeros(6, np.float32),
        "fc.weight": rng.standard_normal((10, 84)),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "mask": np.array([True, False]),
    }


def assert_same(a, b):
    """Deep equality that also checks types, dtypes and shapes."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_plain_state_dict_round_trip_and_plain_np_load(tmp_path):
    state = _model_state()
    path = tmp_path / "model.npz"
    save(state, path)
    assert_same(load(path), state)
    with np.load(path) as z:  # readable without gpunet, and nothing but the tensors
        assert z.files == list(state)
        np.testing.assert_array_equal(z["conv1.weight"], state["conv1.weight"])


def test_tensors_saved_from_host_as_arrays(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save({"layer.weight": FakeTensor(w)}, tmp_path / "t.npz")
    out = load(tmp_path / "t.npz")
    assert isinstance(out["layer.weight"], np.ndarray)
    np.testing.assert_array_equal(out["layer.weight"], w)


def test_nested_optimizer_state_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    state = {
        "model": _model_state(),
        "optimizer": {
            "state": {
                0: {"step": 12, "exp_avg": rng.standard_normal(3), "exp_avg_sq": rng.random(3)},
                1: {"step": 12, "momentum_buffer": None},
            },
            "param_groups": [
                {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                 "nesterov": False, "params": [0, 1], "name": "default"},
            ],
        },
        "epoch": 3,
        "best_loss": float("inf"),
        "nan": float("nan"),
        "np_scalar": np.float32(0.5),
        "seed": 2**70,  # beyond int64: kept exactly in the JSON metadata
        "empty": {},
        "history": {"loss": [2.3, 1.1, 0.7], "acc": []},
    }
    path = tmp_path / "ckpt.npz"
    save(state, path)
    out = load(path)
    assert_same(out, state)
    with np.load(path) as z:  # numbers are plain 0-d arrays under dotted names
        assert z["optimizer.state.0.step"] == 12
        assert z["optimizer.param_groups.0.lr"] == 1e-3
        np.testing.assert_array_equal(z["model.conv1.bias"], np.zeros(6))
        assert META_KEY in z.files


def test_python_scalars_in_flat_dict_come_back_as_python_types(tmp_path):
    state = {"w": np.ones(2), "steps": 5, "lr": 0.1, "done": True}
    save(state, tmp_path / "s.npz")
    assert_same(load(tmp_path / "s.npz"), state)


def test_empty_dict_and_compress(tmp_path):
    save({}, tmp_path / "e.npz")
    assert load(tmp_path / "e.npz") == {}
    state = {"zeros": np.zeros((100, 100))}
    save(state, tmp_path / "c.npz", compress=True)
    assert os.path.getsize(tmp_path / "c.npz") < 10_000
    assert_same(load(tmp_path / "c.npz"), state)


def test_overwrite_and_no_temp_files_left(tmp_path):
    path = tmp_path / "w.npz"
    save({"a": np.ones(3)}, path)
    save({"b": np.zeros(2)}, path)
    assert list(load(path)) == ["b"]
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]


def test_crash_mid_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    old = _model_state()
    save(old, path)
    before = path.read_bytes()

    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(fh, arr, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two arrays already written to the temporary file
            fh.write(b"partial garbage")
            raise OSError("disk full (simulated)")
        return real_write_array(fh, arr, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    new = {k: v + 1 for k, v in old.items() if v.dtype != bool}
    with pytest.raises(OSError, match="disk full"):
        save(new, path)
    monkeypatch.undo()
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert_same(load(path), old)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


@pytest.mark.parametrize("name", ["ckpt.npz", "ckpt.pt"])
def test_crash_at_rename_keeps_old_file(tmp_path, monkeypatch, name):
    path = tmp_path / name
    save({"a": np.arange(3)}, path)

    def boom(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C exactly between write and rename

    monkeypatch.setattr(serialization.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save({"a": np.arange(5)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["a"], np.arange(3))
    assert sorted(os.listdir(tmp_path)) == [name]


def test_process_killed_mid_write_keeps_old_file(tmp_path):
    """A hard kill (no cleanup at all) mid-save: the old file is still complete and loadable."""
    path = tmp_path / "ckpt.npz"
    save({"w": np.ones(1000)}, path)
    script = textwrap.dedent(
        f"""
        import os, numpy as np
        from gpunet import serialization
        real = np.lib.format.write_array
        def dying(fh, arr, *a, **k):
            real(fh, arr, *a, **k)
            fh.write(b"half")
            os._exit(9)   # like SIGKILL: no except/finally runs
        np.lib.format.write_array = dying
        serialization.save({{"w": np.zeros(1000), "v": np.zeros(5)}}, {str(path)!r})
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    np.testing.assert_array_equal(load(path)["w"], np.ones(1000))
    leftovers = [n for n in os.listdir(tmp_path) if n != "ckpt.npz"]
    assert all(n.startswith(".ckpt.npz.") and n.endswith(".tmp") for n in leftovers)


def test_save_rejects_bad_values(tmp_path):
    with pytest.raises(TypeError, match="state_dict must be a dict; got list"):
        save([np.ones(2)], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="'layer.weight' is a set"):
        save({"layer": {"weight": {1, 2}}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="object array"):
        save({"o": np.array([None, 1], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="flatten to the same name 'a.b'"):
        save({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        save({(1, 2): np.ones(1)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz is not a readable .npz state dict"):
        load(junk)
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load(tmp_path / "single.npy")
    good = tmp_path / "good.npz"
    save({"a": {"b": np.ones(3)}}, good)
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz is not a readable"):
        load(tmp_path / "cut.npz")
    save({"a": np.arange(1000.0)}, good, compress=True)
    for offset in (60, 200, 500):  # a flipped bit in the header or the data
        data = bytearray(good.read_bytes())
        data[offset] ^= 0xFF
        (tmp_path / "flip.npz").write_bytes(bytes(data))
        with pytest.raises(ValueError, match="flip.npz is not a readable"):
            load(tmp_path / "flip.npz")


# ---------------------------------------------------------------- check_state_dict
def test_check_state_dict_ok_and_non_strict():
    expected = {"fc.weight": (10, 84), "fc.bias": np.zeros(10)}
    assert check_state_dict(expected, {"fc.weight": np.ones((10, 84)), "fc.bias": FakeTensor(np.ones(10))._data}) == ([], [])
    missing, unexpected = check_state_dict(expected, {"fc.weight": np.ones((10, 84)), "x": 1}, strict=False)
    assert missing == ["fc.bias"] and unexpected == ["x"]


def test_check_state_dict_lists_every_problem():
    expected = {"conv.weight": (6, 1, 5, 5), "fc.weight": (10, 84), "fc.bias": (10,)}
    got = {"conv.weight": np.zeros((6, 3, 5, 5)), "fc.weight": np.zeros((10, 84)), "head.bias": np.zeros(4)}
    with pytest.raises(StateDictMismatchError) as info:
        check_state_dict(expected, got, name="LeNet")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    assert str(err) == (
        "error(s) loading state dict into LeNet:\n"
        "  missing (1):\n    fc.bias (expected shape (10,))\n"
        "  unexpected (1):\n    head.bias (shape (4,))\n"
        "  wrong shape (1):\n    conv.weight: expected (6, 1, 5, 5), got (6, 3, 5, 5)"
    )
    assert err.missing == ["fc.bias"] and err.unexpected == ["head.bias"]
    assert err.mismatched == [("conv.weight", (6, 1, 5, 5), (6, 3, 5, 5))]


def test_check_state_dict_shape_mismatch_raises_even_when_not_strict():
    with pytest.raises(StateDictMismatchError, match=r"w: expected \(2,\), got a dict"):
        check_state_dict({"w": (2,)}, {"w": {"nested": 1}}, strict=False)


def test_check_state_dict_truncates_long_lists():
    expected = {f"layer{i}.weight": (1,) for i in range(30)}
    with pytest.raises(StateDictMismatchError, match=r"missing \(30\):[\s\S]*\.\.\. and 10 more"):
        check_state_dict(expected, {})
