"""Drawing indices from probabilities: ``torch.multinomial``'s meaning on every backend.

Example:
    >>> gn.manual_seed(0)
    >>> gn.multinomial(gn.tensor([0.0, 1.0, 0.0]), 2, replacement=True).tolist()
    [1, 1]
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """``num_samples`` category indices per row of ``input`` (1-D or 2-D non-negative weights,
    not necessarily summing to one), drawn from gpunet's seeded host generator.

    Example:
        >>> probs = gn.softmax(gn.tensor([[0.0, 5.0, 0.0]]), dim=-1)
        >>> gn.multinomial(probs, 1).shape
        gpunet.Size([1, 1])
    """
    from ..random import host_rng

    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a gpunet Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(f"multinomial(): argument 'num_samples' must be int, not {type(num_samples).__name__}")
    n = int(num_samples)
    if n <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (got {num_samples})")
    rows = input.numpy().astype(np.float64).reshape(input.shape[0] if input.ndim == 2 else 1, input.shape[-1])
    if not replacement and n > rows.shape[1]:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement ({n} > {rows.shape[1]})")
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    sums = rows.sum(axis=1)
    if (sums <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    rng = generator if isinstance(generator, np.random.Generator) else host_rng()
    out = np.empty((rows.shape[0], n), np.int64)
    for r, (p, total) in enumerate(zip(rows, sums)):
        if not replacement and n > np.count_nonzero(p):
            raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, "
                               "not enough non-negative category to sample)")
        out[r] = rng.choice(len(p), size=n, replace=bool(replacement), p=p / total)
    out = out.reshape(n) if input.ndim == 1 else out
    return Tensor._wrap(input.backend.asarray(out), input.backend)
