"""Every kernel compiles for a real GPU (sm_80 PTX) with the argument types its launcher passes
(the multi-tensor optimiser kernels with LeNet-5's ten parameters as a tuple).

The simulator runs kernels as Python, so it never type-checks them the way Numba's CUDA
compiler does; this test does, without a GPU, in a fresh interpreter without
``NUMBA_ENABLE_CUDASIM``.  It needs NVVM (``pip install "numba-cuda[cu12]"`` brings it) and is
skipped where NVVM is missing.  It also checks that float32 kernels do no float64 arithmetic.
"""
import textwrap

import pytest

from conftest import run_outside_simulator

SCRIPT = textwrap.dedent("""
    import sys, types
    try:
        import cupy  # noqa: F401
    except Exception:
        sys.modules["cupy"] = types.ModuleType("cupy")  # only PTX is made here
    import numba
    import numpy as np
    from numba import cuda, types as nt
    try:
        cuda.compile_ptx(lambda a: None, (nt.float32[:],), cc=(8, 0))
    except Exception as exc:
        print("NO_NVVM", type(exc).__name__, exc)
        sys.exit(0)
    from cuda_kernels import (_launch, activation, batch_norm, checks, conv, embedding, layer_norm, optim,
                              pooling, random, recurrent, softmax_ce)
    assert not _launch.SIMULATOR

    def A(dt, nd):
        return nt.Array(numba.from_dtype(np.dtype(dt)), nd, "C")

    for dt in (np.float32, np.float64):
        f, i, b = numba.from_dtype(np.dtype(dt)), nt.int64, nt.boolean
        fwd, bwd = softmax_ce.kernels(dt)
        uniform, normal = random.kernels(dt)
        ln_fwd, ln_bwd, ln_param = layer_norm.kernels(dt)
        lstm_fwd, lstm_bwd, gru_fwd, gru_bwd, rnn_fwd, rnn_bwd = recurrent.kernels(dt)
        bn = batch_norm.kernels(dt)
        tickets = A(np.int32, 1)
        for k, sig in [
            (bn.sums, (A(dt, 3), A(dt, 1), f, b, i, A(dt, 2), tickets, A(dt, 1))),
            (bn.normalise, (A(dt, 3), A(dt, 1), A(dt, 1), f, f, A(dt, 1), A(dt, 1), b, b, A(dt, 3))
             + (A(dt, 1),) * 3),
            (bn.grad_sums, (A(dt, 3), A(dt, 3), A(dt, 1), A(dt, 3), b, i, A(dt, 2), tickets, A(dt, 1))),
            (bn.input_grad, (A(dt, 3), A(dt, 3)) + (A(dt, 1),) * 3 + (f, A(dt, 1), b, A(dt, 3), b, A(dt, 3))),
            (bn.pool_normalise, (A(dt, 4), A(dt, 1), A(dt, 1), f, f, A(dt, 1), A(dt, 1), b, i, A(dt, 4),
                                 A(np.int32, 4), b) + (A(dt, 1),) * 3 + (f,)),
            (bn.pool_grad_sums, (A(dt, 3), A(np.int32, 3), A(dt, 3), A(dt, 1), i, A(dt, 2), tickets,
                                 A(dt, 1))),
            (bn.pool_input_grad, (A(dt, 4), A(np.int32, 4), i, A(dt, 4)) + (A(dt, 1),) * 3
             + (f, A(dt, 1), b, A(dt, 4))),
            (activation.relu_fwd_kernel, (A(dt, 1), A(dt, 1))),
            (activation.relu_bwd_kernel, (A(dt, 1), A(dt, 1), A(dt, 1), f)),
            (activation.leaky_relu_fwd_kernel, (A(dt, 1), A(dt, 1), f)),
            (activation.leaky_relu_bwd_kernel, (A(dt, 1), A(dt, 1), A(dt, 1), f)),
            (pooling.max_pool2d_fwd_kernel, (A(dt, 3), A(dt, 3), A(np.int32, 3)) + (i,) * 6 + (f,)),
            (pooling.max_pool2d_bwd_kernel, (A(dt, 3), A(np.int32, 3), A(dt, 3)) + (i,) * 6 + (f,)),
            (pooling.avg_pool2d_fwd_kernel, (A(dt, 3), A(dt, 3)) + (i,) * 6 + (f, f)),
            (pooling.avg_pool2d_bwd_kernel, (A(dt, 3), A(dt, 3)) + (i,) * 6 + (f, f)),
            (conv.im2col_fwd_kernel, (A(dt, 4), A(dt, 2)) + (i,) * 9),
            (conv.im2col_dilated_bwd_kernel, (A(dt, 2), A(dt, 4)) + (i,) * 9 + (f,)),
            (embedding.embedding_bwd_kernel, (A(dt, 2),) + (A(np.int64, 1),) * 3 + (A(dt, 2), f)),
            (ln_fwd, (A(dt, 2), A(dt, 1), A(dt, 1), nt.boolean, f, A(dt, 2), A(dt, 1), A(dt, 1))),
            (ln_bwd, (A(dt, 2), A(dt, 2), A(dt, 1), nt.boolean, A(dt, 1), A(dt, 1), A(dt, 2))),
            (ln_param, (A(dt, 2), A(dt, 2), A(dt, 1), A(dt, 1), i, A(dt, 2), A(dt, 2), A(np.int32, 1),
                        A(dt, 1), A(dt, 1))),
            (lstm_fwd, (A(dt, 2),) * 6),
            (lstm_bwd, (A(dt, 2),) * 6),
            (gru_fwd, (A(dt, 2),) * 5),
            (gru_bwd, (A(dt, 2),) * 7),
            (rnn_fwd, (A(dt, 2), A(dt, 2), b, A(dt, 2))),
            (rnn_bwd, (A(dt, 2), A(dt, 2), b, A(dt, 2))),
            (conv.im2col_bwd_kernel, (A(dt, 2), A(dt, 4)) + (i,) * 7 + (f,)),
            (conv.conv2d_epilogue_fwd_kernel, (A(dt, 3), A(dt, 1), A(dt, 3), b, b, f)),
            (conv.conv2d_epilogue_bwd_kernel(dt), (A(dt, 3), A(dt, 3), A(dt, 2), A(dt, 1), b, b, b, i,
                                                  A(dt, 2), A(np.int32, 1))),
            (pooling.conv2d_relu_max_pool_fwd_kernel, (A(dt, 3), A(dt, 1), b, A(dt, 4),
                                                       A(np.int32, 4), b, i, i, f, f)),
            (pooling.conv2d_relu_max_pool_bwd_kernel(dt), (A(dt, 4), A(np.int32, 4), A(dt, 2),
                                                           A(dt, 1), b, b, i, i, i, A(dt, 2),
                                                           A(np.int32, 1))),
            (activation.bias_relu_fwd_kernel, (A(dt, 2), A(dt, 1), b, b, f)),
            (activation.bias_relu_bwd_kernel(dt), (A(dt, 2),) * 3 + (A(dt, 1), b, b, i, A(dt, 2),
                                                                  A(np.int32, 1))),
            # logits, labels, weight, has_weight, ignore_index, smoothing, loss, row_w, probs,
            # bad_label, total, wsum, ticket, mode
            (fwd, (A(dt, 2), A(np.int64, 1), A(dt, 1), i, i, f, A(dt, 1), A(dt, 1), A(dt, 2),
                   A(np.int32, 1), A(dt, 1), A(dt, 1), A(np.int32, 1), i)),
            # probs, labels, weight, has_weight, ignore_index, smoothing, gloss, gstride, wsum, mode, gx
            (bwd, (A(dt, 2), A(np.int64, 1), A(dt, 1), i, i, f, A(dt, 1), i, A(dt, 1), i, A(dt, 2))),
            (uniform, (A(dt, 1),) + (i,) * 4 + (f,)),
            (normal, (A(dt, 1),) + (i,) * 4 + (f, f)),
            (checks.range_check_kernel, (A(dt, 1), f, f, A(np.int32, 1), i)),
            (optim.sgd_update_kernel, (nt.UniTuple(A(dt, 1), 10),) * 3 + (f,) * 4 + (b,) * 2),
            (optim.adam_update_kernel, (nt.UniTuple(A(dt, 1), 10),) * 4 + (f,) * 7 + (b,) + (f,) * 3),
            (optim.sgd_lr_kernel, (nt.UniTuple(A(dt, 1), 10),) * 3 + (A(dt, 1),) + (f,) * 3 + (b,) * 2),
            (optim.adam_hyper_kernel, (A(np.float64, 1),) * 2 + (nt.float64,) * 3 + (A(dt, 1),)),
            (optim.adam_device_kernel, (nt.UniTuple(A(dt, 1), 10),) * 4 + (f,) * 6 + (b, A(dt, 1))),
        ]:
            fastmath = bool(k.targetoptions.get("fastmath"))  # compile as the kernel would
            ptx, resty = cuda.compile_ptx(k.py_func, sig, cc=(8, 0), fastmath=fastmath)
            name = k.py_func.__name__
            assert resty == nt.none, (name, resty)
            # adam_hyper_kernel: one thread computes the bias corrections in float64, as the
            # host path does in Python before casting them to the parameters' dtype
            if dt is np.float32 and name != "adam_hyper_kernel":
                assert ".f64" not in ptx, f"{name}: float64 arithmetic in the float32 kernel"
            print("OK", dt.__name__, name)
""")


def test_kernels_compile_to_ptx():
    proc = run_outside_simulator(SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "NO_NVVM" in proc.stdout:
        pytest.skip(f"NVVM not installed: {proc.stdout.strip()}")
    assert proc.stdout.count("OK ") == 88, proc.stdout
