"""``gpunet.utils.data.distributed.DistributedSampler``, PyTorch's path to
:class:`gpunet.distributed.DistributedSampler`.

Example:
    >>> from gpunet.utils.data.distributed import DistributedSampler
    >>> len(DistributedSampler(train_set, num_replicas=1, rank=0))
    64
"""
from ...distributed.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
