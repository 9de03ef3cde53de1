"""Bad input gets a clear error that names the argument, what it got and what it needs."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F


def T(*shape, dtype=np.float32, grad=False):
    return gn.tensor(np.zeros(shape, dtype), requires_grad=grad)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: F.conv2d(T(3, 8, 8), T(2, 3, 3, 3)), ValueError, r"x must have 4 dimensions, got shape \(3, 8, 8\)"),
    (lambda: F.conv2d(T(1, 2, 8, 8), T(4, 3, 3, 3)), ValueError, "x has 2 channels .* with groups=1 expects 3"),
    (lambda: F.conv2d(T(1, 1, 2, 2), T(1, 1, 5, 5), padding=1), ValueError, "kernel height 5 \\(dilation 1\\) spans 5, more than the padded input height 4"),
    (lambda: F.conv2d(T(1, 1, 4, 4), T(1, 1, 3, 3), stride=0), ValueError, "stride must be an int >= 1"),
    (lambda: F.conv2d(T(1, 1, 4, 4), T(2, 1, 3, 3), T(3)), ValueError, r"bias has shape \(3,\), needs \(2,\)"),
    (lambda: F.max_pool2d(T(1, 1, 4, 4), 2, padding=2), ValueError, "padding .* at most half of kernel_size"),
    (lambda: F.linear(T(2, 5), T(3, 4)), ValueError, "x has 5 features"),
    (lambda: F.softmax_cross_entropy(T(2, 3), gn.tensor([0.0, 1.0])), ValueError, r"float32 target is read as class probabilities, which must have the input's shape \(2, 3\), got \(2,\); class ids need an integer dtype"),
    (lambda: F.softmax_cross_entropy(T(2, 3), gn.tensor([0, 3])), ValueError, r"labels must be in \[0, 3\) .* got values in \[0, 3\]"),
    (lambda: F.softmax_cross_entropy(T(2, 3), gn.tensor([0, 1, 2])), ValueError, r"target must have shape \(2,\) to match input \(2, 3\), got \(3,\)"),
    (lambda: F.mse_loss(T(2, 3), T(3, 2)), ValueError, r"mse_loss: input has shape \(2, 3\) but target has shape \(3, 2\)"),
    (lambda: F.binary_cross_entropy(gn.tensor([1.5]), gn.tensor([1.0])), ValueError, "probabilities in \\[0, 1\\]"),
    (lambda: F.softmax_cross_entropy(T(2, 3), gn.tensor([0, 1]), reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: gn.tensor([1, 2], requires_grad=True), TypeError, "requires_grad=True needs a floating-point tensor, got dtype int64"),
    (lambda: F.relu(np.zeros(3)), TypeError, "x must be a gpunet Tensor, got ndarray"),
    (lambda: gn.set_backend("tpu"), ValueError, "backend must be one of"),
])
def test_bad_input_is_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_out_of_range_labels_are_reported_on_every_backend(backend):
    # numpy checks at the call; cuda flags it in the kernel (no per-step sync) and raises at
    # the next value read, like a device-side assert.
    logits = gn.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"label.* outside \[0|labels must be in \[0, 3\)"):
        F.softmax_cross_entropy(logits, gn.tensor([0, 3])).item()
    ok = F.softmax_cross_entropy(logits, gn.tensor([0, 2])).item()  # the flag was cleared
    assert ok == pytest.approx(np.log(3))


def test_probabilities_outside_0_1_are_reported_on_every_backend(backend):
    # numpy checks at the call; cuda flags it in a kernel (no per-step sync) and raises at the
    # next value read.  NaN is outside [0, 1] too, as in PyTorch.
    target = gn.tensor([1.0, 0.0])
    for bad in ([0.5, 1.5], [-0.1, 0.5], [np.nan, 0.5]):
        with pytest.raises(ValueError, match=r"binary_cross_entropy: input must be probabilities in \[0, 1\]"):
            F.binary_cross_entropy(gn.tensor(bad), target).item()
    ok = F.binary_cross_entropy(gn.tensor([1.0, 0.0]), target).item()  # the flag was cleared
    assert ok == pytest.approx(0.0, abs=1e-6)


def test_device_checks_report_every_flagged_error_once(backend):
    logits = gn.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="label") as err:  # numpy raises at the first call
        loss = F.softmax_cross_entropy(logits, gn.tensor([0, 5])) + \
            F.binary_cross_entropy(gn.tensor([2.0]), gn.tensor([1.0]))
        loss.item()
    if backend == "cuda":  # both flags, one error, then both cleared
        assert "binary_cross_entropy" in str(err.value)
    assert F.softmax_cross_entropy(logits, gn.tensor([0, 2])).item() == pytest.approx(np.log(3))
    assert F.binary_cross_entropy(gn.tensor([1.0]), gn.tensor([1.0])).item() == pytest.approx(0.0, abs=1e-6)


# Issue 19: these once surfaced NumPy's own words ("attempt to get argmax of an empty
# sequence", a `%` TypeError, AxisError, a temporary file's name) or passed silently.
@pytest.mark.parametrize("call, error, pattern", [
    (lambda: T(3, 0).max(dim=1), IndexError, r"max\(\): Expected reduction dim 1 to have non-zero size"),
    (lambda: T(3, 0).min(dim=1), IndexError, r"min\(\): Expected reduction dim 1 to have non-zero size"),
    (lambda: T(3, 0).argmax(dim=1), IndexError, r"argmax\(\): Expected reduction dim 1 to have non-zero size"),
    (lambda: T(0).max(), RuntimeError, r"max\(\): Expected reduction dim to be specified for an empty tensor"),
    (lambda: T(0).argmin(), RuntimeError, r"argmin\(\): Expected reduction dim to be specified"),
    (lambda: T(3).max(keepdim=True), TypeError, r"max\(\): keepdim=True needs a dim"),
    (lambda: T(2, 3).max(dim=(0, 1)), TypeError, r"max\(\): dim must be one int, got \(0, 1\); amax\(\) takes a tuple"),
    (lambda: T(2, 3).min(dim=2), IndexError, r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (lambda: T(2, 3).argmax(dim=-3), IndexError, r"range of \[-2, 1\], but got -3"),
    (lambda: T(2, 3).sum(dim=5), IndexError, r"range of \[-2, 1\], but got 5"),
    (lambda: T(2, 3).amax(dim=(0, 0)), RuntimeError, r"dim 0 appears multiple times"),
    (lambda: F.softmax(T(2, 3), dim=2), IndexError, r"range of \[-2, 1\], but got 2"),
    (lambda: F.log_softmax(T(2, 3), dim=(0, 1)), TypeError, r"log_softmax\(\): argument 'dim' must be int, not tuple"),
    (lambda: gn.save({"w": T(2)}, "/no/such/folder/model.npz"), FileNotFoundError,
     r"save: cannot write /no/such/folder/model.npz: its folder /no/such/folder does not exist"),
])
def test_reductions_and_save_name_the_argument_not_numpy(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_the_same_calls_fail_in_pytorch_with_the_same_exception_type():
    torch = pytest.importorskip("torch")
    z = torch.zeros
    for call, error in [(lambda: z(3, 0).max(dim=1), IndexError), (lambda: z(3).max(keepdim=True), TypeError),
                        (lambda: z(2, 3).max(dim=(0, 1)), TypeError), (lambda: z(2, 3).min(dim=2), IndexError),
                        (lambda: torch.softmax(z(2, 3), dim=2), IndexError),
                        (lambda: z(2, 3).amax(dim=(0, 0)), RuntimeError), (lambda: z(0).max(), RuntimeError)]:
        with pytest.raises(error):
            call()


def test_amax_amin_and_flat_argmax_keepdim_match_pytorch(backend):
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 5.0, 5.0], [3.0, 2.0, -1.0]])
    for dim, keep in [((), False), (0, True), ((0, 1), False), (-1, False), ((1,), True)]:
        g, t = gn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        for name in ("amax", "amin"):
            g.grad, t.grad = None, None
            gv, tv = getattr(g, name)(dim, keepdim=keep), getattr(t, name)(dim, keepdim=keep)
            np.testing.assert_array_equal(gv.numpy(), tv.detach().numpy())
            gv.sum().backward()
            tv.sum().backward()
            np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())  # ties share evenly
    assert gn.tensor(a).argmax(keepdim=True).shape == tuple(torch.tensor(a).argmax(keepdim=True).shape)
    assert gn.tensor(a).argmax(keepdim=True).item() == 1


def test_zero_dim_tensors_numpy_int_dims_and_empty_dim_lists_reduce_as_in_pytorch(backend):
    torch = pytest.importorskip("torch")
    s, ts = gn.tensor(5.0), torch.tensor(5.0)
    for reduce in (lambda t: t.sum(dim=-1), lambda t: t.mean(dim=0), lambda t: t.amax(0),
                   lambda t: t.max(dim=0)[0], lambda t: t.min(dim=-1)[1], lambda t: t.argmax(dim=0)):
        got, want = reduce(s), reduce(ts)
        assert got.shape == tuple(want.shape) and got.item() == want.item()
    a = np.array([[1.0, 5.0], [3.0, 2.0]])
    g, t = gn.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(g.amax(np.int64(1)).numpy(), t.amax(1).numpy())
    np.testing.assert_array_equal(g.sum(dim=np.int64(0)).numpy(), t.sum(dim=0).numpy())
    assert g.amin([]).item() == t.amin([]).item() == 1.0
    with pytest.raises(TypeError, match="dim must be an int or a tuple of ints, got True"):
        g.sum(dim=True)
