"""Hand-written Numba CUDA kernels for gpunet's ``cuda`` backend, one module per family.

The families and their functions are declared once, in ``gpunet/backends/primitives.py``
(``python -m gpunet.backends.primitives`` prints the table); each module here mirrors
``numpy_kernels/<family>.py`` name for name, and the cuda backend binds them when it is made.
Each kernel is named ``<op>_fwd_kernel`` / ``<op>_bwd_kernel`` (``<op>_update_kernel`` for
optimisers) and has a launcher beside it that allocates outputs, computes the grid and launches
on CuPy's current stream (``_launch.launch``).  ``checks`` holds the device-side error flags and
the loss's reduction ticket; ``simulator`` the one rule for "is the simulator on".

On a real GPU the arrays are CuPy arrays; under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels
run in Numba's CUDA simulator on NumPy arrays.  Import the kernel modules only
through ``gpunet.backends.cuda_backend``: they import numba (and, on a GPU, cupy).

Example:
    >>> from cuda_kernels import activation          # doctest: +SKIP
    >>> activation.relu_fwd(x)                       # doctest: +SKIP
"""
