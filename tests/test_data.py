"""gpunet.data: batching, seeded shuffling, drop_last, random_split, batches on the requested backend."""
import numpy as np
import pytest

import gpunet as gn
from gpunet.data import DataLoader, Dataset, Subset, TensorDataset, random_split


def _dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(x, np.arange(n))


def _labels(loader):
    return [y.tolist() for _, y in loader]


def test_batching_in_order_with_last_partial_batch():
    loader = DataLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [x.shape for x, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[0]
    assert isinstance(x, gn.Tensor) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x.numpy(), np.arange(12, dtype=np.float32).reshape(4, 3))


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def test_shuffle_is_a_permutation_and_reproducible_with_a_seed():
    a = DataLoader(_dataset(50), batch_size=7, shuffle=True, seed=3)
    b = DataLoader(_dataset(50), batch_size=7, shuffle=True, seed=3)
    first, second = _labels(a), _labels(a)
    assert first == _labels(b) and second == _labels(b)
    assert first != second  # a new order each epoch
    assert sorted(sum(first, [])) == list(range(50))
    assert sum(first, []) != list(range(50))
    assert _labels(DataLoader(_dataset(50), batch_size=7, shuffle=True, seed=4)) != first


def test_shuffle_without_seed_follows_manual_seed():
    gn.manual_seed(11)
    a = _labels(DataLoader(_dataset(30), batch_size=30, shuffle=True))
    gn.manual_seed(11)
    b = _labels(DataLoader(_dataset(30), batch_size=30, shuffle=True))
    assert a == b


def test_state_dict_restores_the_shuffle_sequence():
    loader = DataLoader(_dataset(40), batch_size=8, shuffle=True, seed=0)
    _labels(loader)
    state = loader.state_dict()
    expected = [_labels(loader), _labels(loader)]
    fresh = DataLoader(_dataset(40), batch_size=8, shuffle=True, seed=99)
    fresh.load_state_dict(state)
    assert [_labels(fresh), _labels(fresh)] == expected
    assert fresh.epoch == loader.epoch == 3


def test_batches_on_the_requested_backend(backend):
    loader = DataLoader(_dataset(6), batch_size=4, backend=backend)
    x, y = next(iter(loader))
    assert x.backend.name == backend and y.backend.name == backend
    # tensors as dataset arrays are indexed on their own backend and moved if needed
    ds = TensorDataset(gn.tensor(np.ones((6, 2), np.float32), backend="numpy"), np.arange(6))
    x, y = next(iter(DataLoader(ds, batch_size=5, backend=backend)))
    assert x.backend.name == backend and x.shape == (5, 2) and y.tolist() == [0, 1, 2, 3, 4]


def test_default_backend_is_the_current_one(backend):
    x, _ = next(iter(DataLoader(_dataset(4), batch_size=2)))
    assert x.backend.name == backend


def test_tensor_dataset_vectorised_get_batch_and_items():
    ds = _dataset(10)
    x, y = ds.get_batch(np.array([9, 0, 4]))
    assert y.tolist() == [9, 0, 4] and x.shape == (3, 3)
    xi, yi = ds[2]
    assert xi.tolist() == [6.0, 7.0, 8.0] and int(yi) == 2


def test_generic_dataset_is_collated():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.float32([i, i]), np.int64(i * i)

    x, y = next(iter(DataLoader(Squares(), batch_size=5)))
    assert x.shape == (5, 2) and y.tolist() == [0, 1, 4, 9, 16]


def test_random_split_lengths_and_fractions():
    ds = _dataset(10)
    a, b, c = random_split(ds, [5, 3, 2], seed=0)
    assert (len(a), len(b), len(c)) == (5, 3, 2)
    ids = np.concatenate([s.indices for s in (a, b, c)])
    assert sorted(ids.tolist()) == list(range(10))
    tr, va = random_split(_dataset(101), [0.9, 0.1], seed=0)
    assert (len(tr), len(va)) == (91, 10)
    again, _ = random_split(_dataset(101), [0.9, 0.1], seed=0)
    assert tr.indices.tolist() == again.indices.tolist()
    assert isinstance(tr, Subset)
    x, y = next(iter(DataLoader(va, batch_size=10)))
    assert y.tolist() == va.indices.tolist()
    np.testing.assert_array_equal(x.numpy()[:, 0], 3 * va.indices.astype(np.float32))


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size should be a positive integer value, but got batch_size=0"),  # torch's text
    ({"batch_size": 2.5}, "batch_size"),
    ({"seed": -1}, "seed must be"),
])
def test_loader_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(_dataset(4), **kwargs)


def test_dataset_and_split_errors():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="sum to the dataset size 10"):
        random_split(_dataset(10), [5, 4])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(_dataset(10), [0.5, 0.4])
    with pytest.raises(ValueError, match="backend must be one of"):
        DataLoader(_dataset(4), backend="tpu")


def test_num_workers_prefetch_gives_the_same_batches_in_order():
    from gpunet.data import DataLoader, TensorDataset

    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.arange(50)
    plain = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=3)
    workers = DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=3, num_workers=2)
    for _ in range(2):  # two epochs: same permutations too
        got = [(bx.numpy(), by.numpy()) for bx, by in workers]
        want = [(bx.numpy(), by.numpy()) for bx, by in plain]
        assert len(got) == len(want) == 8
        for (gx, gy), (wx, wy) in zip(got, want):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(TensorDataset(x, y), num_workers=-1)


# --- PyTorch's DataLoader arguments ------------------------------------------------------------
torch = pytest.importorskip("torch")
tud = torch.utils.data


def _raised(make):
    try:
        make()
    except Exception as e:  # noqa: BLE001 - compared, not swallowed
        return type(e), str(e)
    return None


@pytest.mark.parametrize("kwargs", [
    {"batch_sampler": [[0, 1]], "batch_size": 2}, {"batch_sampler": [[0, 1]], "shuffle": True},
    {"batch_sampler": [[0, 1]], "sampler": [0, 1]}, {"batch_sampler": [[0, 1]], "drop_last": True},
    {"sampler": [0, 1], "shuffle": True}, {"batch_size": None, "drop_last": True},
    {"batch_size": 0}, {"batch_size": -2}, {"num_workers": -1}, {"timeout": -1},
    {"prefetch_factor": 2}, {"num_workers": 1, "prefetch_factor": -1}, {"persistent_workers": True},
    {"multiprocessing_context": "spawn"}, {"num_workers": 1, "multiprocessing_context": "nope"},
    {"num_workers": 1, "multiprocessing_context": 3},
])
def test_loader_errors_are_torchs(kwargs):
    x, y = np.zeros((4, 2), np.float32), np.arange(4)
    theirs = _raised(lambda: tud.DataLoader(tud.TensorDataset(torch.tensor(x), torch.tensor(y)), **kwargs))
    ours = _raised(lambda: DataLoader(TensorDataset(x, y), **kwargs))
    assert theirs is not None and ours == theirs


@pytest.mark.parametrize("kwargs", [
    {}, {"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None},
    {"batch_size": 4, "sampler": [9, 1, 3, 3, 0]}, {"batch_sampler": [[1, 2], [0], [5, 6, 7]]},
    {"batch_size": None, "sampler": [4, 2]}, {"batch_size": 20}, {"batch_size": 20, "drop_last": True},
])
def test_loader_lengths_and_index_order_are_torchs(kwargs):
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    theirs = tud.DataLoader(tud.TensorDataset(torch.tensor(x), torch.tensor(y)), **kwargs)
    ours = DataLoader(TensorDataset(x, y), **kwargs)
    assert len(ours) == len(theirs)
    assert [b[1].tolist() for b in ours] == [b[1].tolist() for b in theirs]
    for mine, ref in zip(ours, theirs):
        assert isinstance(mine, list) and len(mine) == len(ref) == 2  # tuples of items -> lists, as torch
        assert [tuple(t.shape) for t in mine] == [tuple(t.shape) for t in ref]


def _signature(obj):
    """Structure, shapes and dtypes of a collated batch, comparable between torch and gpunet."""
    if isinstance(obj, (torch.Tensor, gn.Tensor)):
        return ("tensor", tuple(obj.shape), str(obj.dtype).replace("torch.", "").replace("gpunet.", ""))
    if isinstance(obj, dict):
        return ("dict", {k: _signature(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_signature(v) for v in obj])
    return (type(obj).__name__, obj)


def test_default_collate_structure_is_torchs():
    from collections import namedtuple

    from gpunet.utils.data import default_collate, default_convert

    Point = namedtuple("Point", "a b")
    items = [{"img": np.full((2, 3), i, np.float32), "label": i, "w": float(i), "flag": i % 2 == 0,
              "name": f"s{i}", "np": np.float64(i), "pair": (np.int64(i), [np.float32(i), 1.0]),
              "pt": Point(np.zeros(2, np.float64), i)} for i in range(3)]
    ours, theirs = default_collate(items), tud.default_collate(items)
    assert _signature(ours) == _signature(theirs)
    assert ours["label"].tolist() == [0, 1, 2] and ours["flag"].tolist() == [True, False, True]
    assert isinstance(ours["pt"], Point) and ours["name"] == ["s0", "s1", "s2"]
    assert _signature(default_convert(items[1])) == _signature(tud.default_convert(items[1]))
    assert _signature(default_collate([1, 2])) == _signature(tud.default_collate([1, 2]))


@pytest.mark.parametrize("batch", [
    [np.array(["a"]), np.array(["b"])], [np.zeros(2), np.zeros(3)], [[1, 2], [3]], [object(), object()],
])
def test_default_collate_errors_are_torchs_types(batch):
    from gpunet.data import default_collate

    theirs = _raised(lambda: tud.default_collate(batch))
    ours = _raised(lambda: default_collate(batch))
    assert theirs is not None and ours is not None and ours[0] is theirs[0]


def test_collate_fn_gets_the_items_and_its_result_is_yielded_as_is():
    seen = []

    def collate(items):
        seen.append(items)
        return {"n": len(items)}

    loader = DataLoader(_dataset(5), batch_size=2, collate_fn=collate)
    assert list(loader) == [{"n": 2}, {"n": 2}, {"n": 1}]
    assert len(seen[0]) == 2 and isinstance(seen[0][0], tuple) and int(seen[0][1][1]) == 1
    single = list(DataLoader(_dataset(3), batch_size=None, collate_fn=lambda item: int(item[1])))
    assert single == [0, 1, 2]


def test_vectorised_path_equals_item_by_item_collate(monkeypatch):
    from gpunet.data import default_collate

    ds = _dataset(23)
    calls = []
    monkeypatch.setattr(TensorDataset, "__getitem__",
                        lambda self, i: calls.append(i) or tuple(a[i] for a in self.arrays))
    fast = [[t.numpy() for t in b] for b in DataLoader(ds, batch_size=5, shuffle=True, seed=2)]
    assert calls == []  # one fancy index per array and batch, no per-item reads
    slow = [[t.numpy() for t in b] for b in DataLoader(ds, batch_size=5, shuffle=True, seed=2,
                                                       collate_fn=lambda b: default_collate(b))]
    assert len(calls) == 23 and len(fast) == len(slow) == 5
    for f, s in zip(fast, slow):
        for a, b in zip(f, s):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_dict_items_getitems_and_batch_size_none():
    class Records(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i}

    batch = next(iter(DataLoader(Records(), batch_size=4)))
    assert batch["x"].shape == (4, 2) and batch["y"].tolist() == [0, 1, 2, 3]
    items = list(DataLoader(Records(), batch_size=None))
    assert len(items) == 6 and items[2]["x"].shape == (2,) and items[2]["y"] == 2  # default_convert: int stays

    class Batched(Records):
        def __getitems__(self, idx):
            return [{"x": np.zeros(2, np.float32), "y": -1} for _ in idx]

    assert next(iter(DataLoader(Batched(), batch_size=3)))["y"].tolist() == [-1, -1, -1]


def test_generator_pin_memory_and_worker_options():
    a = _labels(DataLoader(_dataset(30), batch_size=7, shuffle=True, generator=np.random.default_rng(4)))
    b = _labels(DataLoader(_dataset(30), batch_size=7, shuffle=True, generator=np.random.default_rng(4)))
    assert a == b and sorted(sum(a, [])) == list(range(30))
    with pytest.raises(ValueError, match="not both"):
        DataLoader(_dataset(4), shuffle=True, generator=np.random.default_rng(0), seed=1)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(_dataset(4), shuffle=True, generator=7)
    assert _labels(DataLoader(_dataset(10), batch_size=4, pin_memory=True, pin_memory_device="cuda")) == \
        _labels(DataLoader(_dataset(10), batch_size=4))
    started = []
    loader = DataLoader(_dataset(40), batch_size=3, num_workers=2, prefetch_factor=3, timeout=30,
                        persistent_workers=True, worker_init_fn=started.append, multiprocessing_context="spawn")
    assert _labels(loader) == _labels(DataLoader(_dataset(40), batch_size=3))
    assert 1 <= len(started) <= 2 and set(started) <= {0, 1}


def test_pin_memory_stages_through_the_backends_pinned_copy(monkeypatch):
    be = gn.get_backend()
    staged = []
    monkeypatch.setattr(type(be), "pinned_copy", lambda self, a: staged.append(a.shape) or a.copy(), raising=False)
    x, y = next(iter(DataLoader(_dataset(6), batch_size=4, pin_memory=True, backend=be)))
    assert staged == [(4, 3), (4,)] and y.tolist() == [0, 1, 2, 3]
    next(iter(DataLoader(_dataset(6), batch_size=4, backend=be)))
    assert len(staged) == 2  # only with pin_memory=True


def test_iter_of_a_loader_is_an_iterator_with_len_as_in_torch():
    torch = pytest.importorskip("torch")
    ours = iter(DataLoader(TensorDataset(gn.zeros(10, 2)), batch_size=4))
    theirs = iter(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(10, 2)), batch_size=4))
    assert len(ours) == len(theirs) == 3 and iter(ours) is ours
    assert [b[0].shape[0] for b in ours] == [b[0].shape[0] for b in theirs] == [4, 4, 2]
    with pytest.raises(StopIteration):
        next(ours)
