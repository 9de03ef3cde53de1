"""Names gn.distributed shares with torch.distributed, and Tensor.register_post_accumulate_grad_hook,
behave as PyTorch's: the same calls on a one-process job (torch with its gloo backend, world
size 1) give the same values, the same in-place effects and the same return values."""
import numpy as np
import pytest

import gpunet as gn

torch = pytest.importorskip("torch")
dist = torch.distributed


@pytest.fixture(scope="module")
def torch_group(tmp_path_factory):
    if not dist.is_available():
        pytest.skip("torch.distributed is not built in this torch")
    store = tmp_path_factory.mktemp("gloo") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_collectives_match_torch_distributed_on_one_process(torch_group):
    gn.distributed.init()
    assert (gn.distributed.get_rank(), gn.distributed.get_world_size()) == (
        dist.get_rank(), dist.get_world_size())
    values = np.array([1.5, -2.0, 3.25])
    for ours_op, theirs_op in ((gn.distributed.ReduceOp.SUM, dist.ReduceOp.SUM),
                               (gn.distributed.ReduceOp.AVG, dist.ReduceOp.AVG)):
        g, t = gn.tensor(values.copy()), torch.tensor(values.copy())
        if theirs_op == dist.ReduceOp.AVG and dist.get_backend() == "gloo":
            theirs_op = dist.ReduceOp.SUM  # gloo has no AVG; on one process SUM == AVG
        assert gn.distributed.all_reduce(g, op=ours_op) is None
        assert dist.all_reduce(t, op=theirs_op) is None
        np.testing.assert_array_equal(g.numpy(), t.numpy())  # in place, same values
    g, t = gn.tensor(values.copy()), torch.tensor(values.copy())
    assert gn.distributed.broadcast(g, src=0) is None and dist.broadcast(t, src=0) is None
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    g_parts, t_parts = [gn.zeros(3, dtype=np.float64)], [torch.zeros(3, dtype=torch.float64)]
    assert gn.distributed.all_gather(g_parts, gn.tensor(values)) is None
    assert dist.all_gather(t_parts, torch.tensor(values)) is None
    np.testing.assert_array_equal(g_parts[0].numpy(), t_parts[0].numpy())


def test_post_accumulate_grad_hook_matches_torch():
    """Called once per backward with the leaf, after its .grad holds the accumulated sum."""
    w0 = np.array([1.0, 2.0, 3.0])
    seen = {"gn": [], "torch": []}
    g = gn.tensor(w0, requires_grad=True)
    t = torch.tensor(w0, requires_grad=True)
    hg = g.register_post_accumulate_grad_hook(lambda p: seen["gn"].append(p.grad.numpy().copy()))
    ht = t.register_post_accumulate_grad_hook(lambda p: seen["torch"].append(p.grad.numpy().copy()))
    for k in (1.0, 3.0):  # two backwards without zeroing: the second hook sees the sum
        ((g * g) * k).sum().backward()
        ((t * t) * k).sum().backward()
    hg.remove()
    ht.remove()
    ((g * g).sum()).backward()
    ((t * t).sum()).backward()
    assert len(seen["gn"]) == len(seen["torch"]) == 2
    for a, b in zip(seen["gn"], seen["torch"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())
