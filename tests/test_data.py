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
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
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
    with pytest.raises(ValueError, match="num_workers must be an int >= 0, got -1"):
        DataLoader(TensorDataset(x, y), num_workers=-1)
