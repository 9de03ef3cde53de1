"""Vectorised NumPy kernels, one module per family, mirroring ``cuda_kernels/`` name for name.

Which functions each family holds, and what each does, is declared once, in
``gpunet/backends/primitives.py`` (``python -m gpunet.backends.primitives`` prints it); the NumPy
backend binds them from here.  Besides the primitives, ``conv`` holds ``im2col`` / ``col2im``
(columns laid out (N, C*kh*kw, Ho*Wo)), ``random`` the counter-based generator and ``checks`` the
range check.  ``_parallel`` holds the thread pool (``set_num_threads``) and the per-thread
scratch buffers.  Nothing here imports ``gpunet``.
"""
