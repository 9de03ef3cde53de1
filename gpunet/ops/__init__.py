"""One file per op family, named after its kernel family: each op's Function, its argument checks
and the function users call (re-exported by ``gpunet.functional``) sit together.

``conv``, ``pooling``, ``activation``, ``softmax_ce``, ``layer_norm``, ``batch_norm``,
``embedding`` and ``recurrent`` run over the backend primitives of the same family
(``numpy_kernels/<family>.py`` and ``cuda_kernels/<family>.py``); ``math``, ``shape``,
``indexing`` and ``loss`` are plain ``xp`` array code written once for every backend.

Example:
    >>> from gpunet import ops
    >>> ops.activation.ReLU.apply(gn.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""
from . import (activation, batch_norm, conv, embedding, indexing, layer_norm, loss, math,  # noqa: F401
               pooling, recurrent, shape, softmax_ce)
