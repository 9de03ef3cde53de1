"""Where the kernels run, and how wide: Numba's simulator (NumPy arrays, small blocks, a capped
grid) or a GPU (CuPy arrays), with the block and grid sizes of every launch for each."""
from __future__ import annotations

import numpy as np
from numba import cuda  # noqa: F401  (loaded first, so simulator_on() reads its config)

from .simulator import simulator_on


SIMULATOR: bool = simulator_on()  # numba is loaded now, so this is its config's answer

if SIMULATOR:
    from . import _simulator_patch

    _simulator_patch.apply()  # the simulator's shared arrays, allocated once per block
    xp = np
    # The simulator runs one Python thread per CUDA thread: small blocks and a capped grid
    # keep tests quick and make every grid-stride loop take more than one trip.
    TPB = 32
    MAX_BLOCKS = 4
    REDUCE_TPB = 32
    MIN_REDUCE_TPB = 4  # every simulated thread costs; 4 still exercises the tree reduction
else:
    import cupy

    xp = cupy
    TPB = 256
    MAX_BLOCKS = 65535
    REDUCE_TPB = 256
    MIN_REDUCE_TPB = 32  # a full warp

# Shared-memory size of every block reduction; launch block sizes are powers of two <= this.
SHARED_SIZE = 256


def blocks_for(n: int, tpb: int = TPB) -> int:
    """Blocks for a grid-stride loop over ``n`` items: one item per thread up to MAX_BLOCKS."""
    return max(1, min(MAX_BLOCKS, (n + tpb - 1) // tpb))


# Rows (images, batch rows) per block of a split reduction: its partial sums are added by the
# last block to finish, in a fixed order.  Small in the simulator so tests take several splits.
SPLIT_ROWS = 2 if SIMULATOR else 16


def splits_for(n: int, per: int = SPLIT_ROWS) -> tuple[int, int]:
    """``(splits, rows per split)`` for a reduction over ``n`` rows: about ``per`` rows each,
    at most 65535 splits (a grid's y extent).

    Example:
        >>> splits_for(64, 16), splits_for(5, 2), splits_for(0, 16)
        ((4, 16), (3, 2), (1, 16))
    """
    splits = max(1, min(65535, -(-n // per)))
    return splits, max(per, -(-n // splits))


def reduce_threads(n: int) -> int:
    """Power-of-two block size (MIN_REDUCE_TPB .. REDUCE_TPB) for a block that reduces ``n`` items."""
    t = MIN_REDUCE_TPB
    while t < REDUCE_TPB and t < n:
        t *= 2
    return t
