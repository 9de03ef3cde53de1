"""Hand-written Numba CUDA kernels for gpunet's ``cuda`` backend, one module per family.

Modules: ``conv`` (im2col / col2im, bias add and bias-gradient reduction), ``activation``
(relu), ``pooling`` (max and average pooling), ``softmax_ce`` (fused softmax
cross-entropy), ``optim`` (fused in-place SGD and Adam), ``random`` (counter-based uniform
and normal numbers), ``checks`` (input range checks flagged on the device), ``embedding``
(a deterministic scatter-add), ``layer_norm`` (fused row normalisation) and ``recurrent`` (the
pointwise part of one LSTM or GRU step, fused).  Each kernel is named
``<op>_fwd_kernel`` / ``<op>_bwd_kernel`` (``<op>_update_kernel`` for optimisers) and has a
launcher beside it that allocates outputs, computes the grid and launches on CuPy's current
stream (``_launch.launch``).

On a real GPU the arrays are CuPy arrays; under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels
run in Numba's CUDA simulator on NumPy arrays.  Import this package only through
``gpunet.backends.cuda_backend``: it imports numba (and, on a GPU, cupy).

Example:
    >>> from cuda_kernels import activation          # doctest: +SKIP
    >>> activation.relu_fwd(x)                       # doctest: +SKIP
"""
