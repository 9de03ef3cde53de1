"""Bad arguments to the PyTorch-named tensor ops raise the exception type torch raises, with a
message naming the argument, on both backends (and gather's out-of-range index)."""
from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn

torch = pytest.importorskip("torch")


# --- bad arguments: torch's exception type, a message naming the argument ----------------
def _cases():
    x = np.arange(12.0).reshape(3, 4)
    p = np.array([0.2, 0.3, 0.5])
    i = np.array([[1]])
    # (id, call taking the library and a tensor maker, pattern of gpunet's message)
    return [
        ("expand-fewer-sizes", lambda L, T: T(x).expand(4), r"number of sizes"),
        ("expand-non-singleton", lambda L, T: T(x).expand(3, 5), r"expanded size .*\(5\).* existing size \(4\)"),
        ("expand-minus-one-leading", lambda L, T: T(x).expand(-1, 3, 4), r"-1 .*leading"),
        ("repeat-fewer-dims", lambda L, T: T(x).repeat(2), r"repeat dims"),
        ("repeat-negative", lambda L, T: T(x).repeat(-1, 2), r"negative dimension"),
        ("narrow-dim", lambda L, T: T(x).narrow(2, 0, 1), r"Dimension out of range"),
        ("narrow-start-range", lambda L, T: T(x).narrow(1, -5, 1), r"start out of range"),
        ("narrow-start+length", lambda L, T: T(x).narrow(1, 3, 2), r"start \(3\) \+ length \(2\) exceeds"),
        ("narrow-length-negative", lambda L, T: T(x).narrow(1, 0, -1), r"length must be non-negative"),
        ("split-size-zero", lambda L, T: T(x).split(0, 1), r"split_size"),
        ("split-sizes-sum", lambda L, T: T(x).split([1, 1], 1), r"split_sizes"),
        ("split-sizes-negative", lambda L, T: T(x).split([5, -1], 1), r"split_sizes"),
        ("split-dim", lambda L, T: T(x).split(2, 2), r"Dimension out of range"),
        ("chunk-zero", lambda L, T: T(x).chunk(0), r"chunks"),
        ("chunk-negative", lambda L, T: T(x).chunk(-2), r"chunks"),
        ("chunk-dim", lambda L, T: T(x).chunk(2, -3), r"Dimension out of range"),
        ("roll-misaligned", lambda L, T: T(x).roll((1, 2), (1,)), r"shifts and dimensions must align"),
        ("roll-tuple-no-dims", lambda L, T: T(x).roll((1, 2)), r"shifts and dimensions must align"),
        ("roll-empty-shifts", lambda L, T: T(x).roll((), ()), r"shifts"),
        ("roll-dim", lambda L, T: T(x).roll(1, 2), r"Dimension out of range"),
        ("tril-1d", lambda L, T: T(p).tril(), r"at least 2 dimensions"),
        ("triu-0d", lambda L, T: L.triu(T(1.0)), r"at least 2 dimensions"),
        ("gather-float-index", lambda L, T: T(x).gather(1, T(np.array([[1.0]]))), r"index"),
        ("gather-index-ndim", lambda L, T: T(x).gather(1, T(np.array([1]))), r"[Ii]ndex .*same number of dimensions"),
        ("gather-index-larger", lambda L, T: T(x).gather(1, T(np.ones((4, 1), np.int64))), r"index"),
        ("gather-dim", lambda L, T: T(x).gather(2, T(i)), r"Dimension out of range"),
        ("masked_fill-int-mask", lambda L, T: T(x).masked_fill(T(np.ones(4, np.int64)), 0.0), r"mask"),
        ("masked_fill-value-1d", lambda L, T: T(x).masked_fill(T(x > 2), T(np.array([1.0]))), r"value"),
        ("masked_fill-mask-shape", lambda L, T: T(x).masked_fill(T(np.ones(3, bool)), 0.0), r"mask"),
        ("masked_fill-overflow-int", lambda L, T: T(np.arange(3)).masked_fill(T(np.ones(3, bool)), float("inf")), r"value cannot be converted"),
        ("masked_fill-overflow-float32", lambda L, T: T(np.ones(3, np.float32)).masked_fill(T(np.ones(3, bool)), 1e40), r"value cannot be converted"),
        ("sort-dim", lambda L, T: T(x).sort(2), r"Dimension out of range"),
        ("sort-0d-dim", lambda L, T: T(1.0).sort(1), r"Dimension out of range"),
        ("topk-k-large", lambda L, T: T(x).topk(5), r"k"),
        ("topk-k-negative", lambda L, T: T(x).topk(-1), r"k"),
        ("topk-k-float", lambda L, T: T(x).topk(1.5), r"'k'"),
        ("topk-dim", lambda L, T: T(x).topk(1, 2), r"Dimension out of range"),
        ("bmm-2d", lambda L, T: T(x).bmm(T(x.T)), r"batch1 and batch2 must be 3D"),
        ("bmm-batch", lambda L, T: T(np.ones((2, 2, 3))).bmm(T(np.ones((3, 3, 2)))), r"batch1.*batch2"),
        ("bmm-inner", lambda L, T: T(np.ones((2, 2, 3))).bmm(T(np.ones((2, 4, 2)))), r"batch1.*batch2"),
        ("multinomial-too-many", lambda L, T: T(p).multinomial(4), r"n_sample"),
        ("multinomial-zero", lambda L, T: T(p).multinomial(0), r"n_sample"),
        ("multinomial-negative", lambda L, T: T(p).multinomial(-1), r"n_sample"),
        ("multinomial-float-n", lambda L, T: T(p).multinomial(1.5), r"num_samples"),
        ("multinomial-3d", lambda L, T: T(p.reshape(1, 1, 3)).multinomial(1), r"prob_dist must be 1 or 2 dim"),
        ("multinomial-0d", lambda L, T: T(0.5).multinomial(1), r"prob_dist must be 1 or 2 dim"),
        ("multinomial-negative-p", lambda L, T: T(np.array([0.5, -0.1, 0.6])).multinomial(1), r"element < 0"),
        ("multinomial-inf", lambda L, T: T(np.array([0.5, np.inf])).multinomial(1), r"inf"),
        ("multinomial-nan", lambda L, T: T(np.array([0.5, np.nan])).multinomial(1, True), r"nan"),
        ("multinomial-zero-sum", lambda L, T: T(np.zeros(3)).multinomial(1, True), r"sum of probabilities"),
        ("multinomial-int", lambda L, T: T(np.array([1, 2])).multinomial(1), r"floating-point"),
        ("multinomial-no-categories", lambda L, T: T(np.zeros((2, 0))).multinomial(1), r"n_sample"),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_bad_arguments_raise_pytorchs_exception(backend, case):
    _, call, pattern = case
    with pytest.raises(Exception) as theirs:
        call(torch, lambda a: torch.tensor(a))
    with pytest.raises(Exception) as ours:
        call(gn, lambda a: gn.tensor(a))
    assert isinstance(ours.value, type(theirs.value)), \
        f"gpunet raised {type(ours.value).__name__}: {ours.value}; PyTorch {type(theirs.value).__name__}: {theirs.value}"
    assert ours.match(pattern)


@pytest.mark.parametrize("index", [[[5]], [[-1]], [[4]]], ids=["far", "negative", "at-size"])
def test_gather_index_out_of_range(backend, index):
    """torch raises RuntimeError (on CUDA asynchronously); gpunet does on numpy, and the cuda
    backend flags it on the device and raises at the first value read (IndexError where the
    simulator's NumPy takes the index first)."""
    x = np.arange(12.0).reshape(3, 4)
    with pytest.raises(RuntimeError):
        torch.tensor(x).gather(1, torch.tensor(index))
    if backend == "numpy":
        with pytest.raises(RuntimeError, match="index out of range for dimension 1"):
            gn.tensor(x).gather(1, gn.tensor(index))
    else:
        errors = []
        for read in (lambda: gn.tensor(x).gather(1, gn.tensor(index)).numpy(),
                     lambda: gn.zeros(1).numpy()):  # the device flag, read (and cleared) here
            try:
                read()
            except (ValueError, IndexError) as exc:
                errors.append(exc)
        assert errors and all("out of" in str(e) for e in errors), errors
