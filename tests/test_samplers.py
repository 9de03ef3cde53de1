"""gpunet.data samplers against torch.utils.data's: same orders where deterministic, same lengths and
argument errors, the same distributions where random (tolerances from the sample size), lazy draws."""
import itertools
import math
import time
import tracemalloc

import numpy as np
import pytest

import gpunet as gn
from gpunet.data import (BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                         TensorDataset, WeightedRandomSampler)

torch = pytest.importorskip("torch")
tud = torch.utils.data


def _freq_within(counts, probs, draws, z=5.0):
    """Every observed frequency within ``z`` binomial standard errors of its probability."""
    probs = np.asarray(probs, dtype=np.float64)
    se = np.sqrt(probs * (1 - probs) / draws)
    got = np.asarray(counts, dtype=np.float64) / draws
    assert np.all(np.abs(got - probs) <= z * se + 1e-12), (got, probs, se)


# --- deterministic: the same as torch ----------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 32])
def test_sequential_sampler_is_torchs(n):
    assert list(SequentialSampler(range(n))) == list(tud.SequentialSampler(range(n)))
    assert len(SequentialSampler(range(n))) == len(tud.SequentialSampler(range(n))) == n


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                                      (2, 5, True), (0, 4, False), (64, 1, True)])
def test_batch_sampler_over_sequential_is_torchs(n, batch_size, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert [b.tolist() for b in ours._arrays()] == list(theirs)  # the loader's array path: the same batches
    assert list(BatchSampler(list(range(n)), batch_size, drop_last)) == list(theirs)  # any iterable


def test_lengths_are_torchs():
    ds = range(10)
    for kw in ({}, {"replacement": True}, {"replacement": True, "num_samples": 25}, {"num_samples": 23}):
        assert len(RandomSampler(ds, **kw)) == len(tud.RandomSampler(ds, **kw))
    assert len(SubsetRandomSampler([4, 2, 9])) == len(tud.SubsetRandomSampler([4, 2, 9])) == 3
    assert len(WeightedRandomSampler([1, 2], 7)) == len(tud.WeightedRandomSampler([1, 2], 7)) == 7
    big = RandomSampler(ds, replacement=True, num_samples=int(1e10))
    assert len(BatchSampler(big, 4, False)) == 2_500_000_000


def _raised(make):
    try:
        make()
    except Exception as e:  # noqa: BLE001 - compared, not swallowed
        return type(e), str(e)
    return None


@pytest.mark.parametrize("build", [
    lambda m: m.RandomSampler(range(5), replacement=1),
    lambda m: m.RandomSampler(range(5), replacement="yes"),
    lambda m: m.RandomSampler(range(5), num_samples=0),
    lambda m: m.RandomSampler(range(5), num_samples=-3),
    lambda m: m.RandomSampler(range(5), num_samples=2.5),
    lambda m: m.RandomSampler(range(0)),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 0),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], True),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 1.5),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 2, replacement=1),
    lambda m: m.WeightedRandomSampler([[1.0, 2.0]], 2),
    lambda m: m.BatchSampler(range(5), 0, False),
    lambda m: m.BatchSampler(range(5), True, False),
    lambda m: m.BatchSampler(range(5), 2.0, False),
    lambda m: m.BatchSampler(range(5), 2, 1),
])
def test_argument_errors_are_torchs(build):
    ours, theirs = _raised(lambda: build(gn.data)), _raised(lambda: build(tud))
    assert theirs is not None and ours == theirs


@pytest.mark.parametrize("weights, n, replacement", [
    ([1.0, -1.0, 2.0], 2, True), ([1.0, float("nan")], 1, True), ([1.0, float("inf")], 1, False),
    ([0.0, 0.0], 1, True), ([1.0, 2.0], 3, False),
])
def test_bad_weights_raise_when_iterating_as_torch(weights, n, replacement):
    ours = WeightedRandomSampler(weights, n, replacement)  # built fine, as torch's
    theirs = tud.WeightedRandomSampler(weights, n, replacement)
    with pytest.raises(RuntimeError):
        list(theirs)
    with pytest.raises(RuntimeError):
        list(ours)


def test_sampler_base_and_generator_type():
    assert Sampler[int] is not None and issubclass(SequentialSampler, Sampler)
    with pytest.raises(NotImplementedError):
        iter(Sampler())
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        RandomSampler(range(3), generator=0)


# --- random: permutations, repeatability, distributions ----------------------------------------
def test_random_sampler_without_replacement_permutes_each_epoch():
    s = RandomSampler(range(20), generator=np.random.default_rng(1))
    a, b = list(s), list(s)
    assert sorted(a) == sorted(b) == list(range(20)) and a != b
    chained = list(RandomSampler(range(6), num_samples=15))  # more than the dataset: permutations chained
    assert len(chained) == 15 and sorted(chained[:6]) == sorted(chained[6:12]) == list(range(6))
    assert len(set(chained[12:])) == 3
    short = list(RandomSampler(range(100), num_samples=10))
    assert len(set(short)) == 10 and all(isinstance(i, int) for i in short)


def test_random_draws_follow_manual_seed_and_the_generator():
    for build in (lambda **kw: RandomSampler(range(50), **kw),
                  lambda **kw: RandomSampler(range(50), replacement=True, num_samples=70, **kw),
                  lambda **kw: SubsetRandomSampler(list(range(0, 100, 2)), **kw),
                  lambda **kw: WeightedRandomSampler(np.arange(1.0, 51.0), 40, **kw),
                  lambda **kw: WeightedRandomSampler(np.arange(1.0, 51.0), 40, replacement=False, **kw)):
        gn.manual_seed(5)
        first = list(build())
        gn.manual_seed(5)
        assert list(build()) == first
        assert list(build(generator=np.random.default_rng(3))) == list(build(generator=np.random.default_rng(3)))


def test_random_sampler_with_replacement_is_uniform():
    n, draws = 10, 20_000
    gn.manual_seed(0)
    got = np.fromiter(RandomSampler(range(n), replacement=True, num_samples=draws), dtype=np.int64)
    assert got.size == draws and got.min() >= 0 and got.max() < n
    _freq_within(np.bincount(got, minlength=n), np.full(n, 1 / n), draws)
    pairs = got[:-1] * n + got[1:]  # consecutive draws independent: pair frequencies uniform too
    _freq_within(np.bincount(pairs, minlength=n * n), np.full(n * n, 1 / n**2), pairs.size)


def test_weighted_sampler_frequencies_match_the_weights():
    w = np.array([0.1, 0.9, 0.0, 0.4, 0.7, 3.0, 0.6])
    draws = 40_000
    got = np.fromiter(WeightedRandomSampler(w, draws, generator=np.random.default_rng(7)), dtype=np.int64)
    assert 2 not in got  # weight zero: never drawn
    _freq_within(np.bincount(got, minlength=w.size), w / w.sum(), draws)
    theirs = np.array(list(tud.WeightedRandomSampler(w, draws, generator=torch.Generator().manual_seed(7))))
    _freq_within(np.bincount(theirs, minlength=w.size), w / w.sum(), draws)  # torch's agrees the same way


def test_weighted_sampler_without_replacement_is_successive_weighted_draws():
    w = np.array([0.9, 0.4, 0.05, 0.2])
    rng, trials = np.random.default_rng(11), 6000
    firsts = np.zeros((w.size, w.size))
    for _ in range(trials):
        order = list(WeightedRandomSampler(w, 3, replacement=False, generator=rng))
        assert len(set(order)) == 3
        firsts[order[0], order[1]] += 1
    # P(i first, then j) = w_i / W * w_j / (W - w_i)
    W = w.sum()
    exact = np.array([[0.0 if i == j else w[i] / W * w[j] / (W - w[i]) for j in range(w.size)] for i in range(w.size)])
    _freq_within(firsts.ravel(), exact.ravel(), trials)
    assert sorted(WeightedRandomSampler([0.0, 2.0, 0.0, 1.0], 2, replacement=False)) == [1, 3]
    # the non-zero weights used up: zero-weight indices follow, as torch's CPU multinomial
    theirs = list(tud.WeightedRandomSampler([1.0, 0.0, 0.0], 2, replacement=False))
    ours = list(WeightedRandomSampler([1.0, 0.0, 0.0], 2, replacement=False))
    assert ours[0] == theirs[0] == 0 and len(set(ours)) == 2


def test_subset_random_sampler_permutes_the_given_indices():
    idx = [10, 20, 30, 40]
    s = SubsetRandomSampler(idx, generator=np.random.default_rng(0))
    trials, first = 8000, np.zeros(4)
    for _ in range(trials):
        order = list(s)
        assert sorted(order) == idx
        first[idx.index(order[0])] += 1
    _freq_within(first, np.full(4, 0.25), trials)
    assert list(SubsetRandomSampler(np.array([5]))) == [5]


# --- laziness ----------------------------------------------------------------------------------
def _peak_bytes(run):
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("sampler", [
    lambda: RandomSampler(range(1000), replacement=True, num_samples=int(1e10)),
    lambda: WeightedRandomSampler(np.ones(1000), int(1e10)),
    lambda: BatchSampler(RandomSampler(range(1000), replacement=True, num_samples=int(1e10)), 16, True),
])
def test_huge_num_samples_is_drawn_lazily(sampler):
    s = sampler()
    start = time.perf_counter()
    peak = _peak_bytes(lambda: sum(1 for _ in itertools.islice(s, 10_000)))
    assert peak < 200_000, peak  # 10^10 int64 indices would be 80 GB; a chunk of 32 is 256 bytes
    assert time.perf_counter() - start < 10


def test_makemore_style_infinite_sampler_into_the_loader():
    x = np.arange(2000 * 8, dtype=np.float32).reshape(2000, 8)
    ds = TensorDataset(x, np.arange(2000))
    s = RandomSampler(ds, replacement=True, num_samples=int(1e10))
    loader = DataLoader(ds, sampler=s, batch_size=4, pin_memory=True, num_workers=0)
    assert len(loader) == math.ceil(1e10 / 4)
    start = time.perf_counter()
    peak = _peak_bytes(lambda: next(iter(loader)))
    assert time.perf_counter() - start < 2 and peak < 500_000, peak
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 8) and yb.shape == (4,) and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
    threaded = DataLoader(ds, sampler=s, batch_size=4, num_workers=2)  # prefetch reads a few batches only
    xb, yb = next(iter(threaded))
    assert xb.shape == (4, 8)
    counted = list(itertools.islice(iter(loader), 500))
    assert len(counted) == 500 and math.isclose(np.mean([b[1].numpy().mean() for b in counted]), 999.5, rel_tol=0.1)
