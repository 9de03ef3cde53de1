"""What a CUDA-graph capture (issue 24) refuses, in one line, instead of replaying a wrong
answer: values read to the host, replaced inputs, data-dependent shapes, host-generator draws,
optimisers that update on the host, a number lr changed after capture; and what it keeps
right: constants remade at each replay, another thread's work left out, a rebound tensor."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import nn, optim


@pytest.mark.parametrize("read", [lambda t: t.item(), float, lambda t: t.numpy(), repr, bool],
                         ids=["item", "float", "numpy", "repr", "bool"])
def test_a_value_read_inside_the_capture_is_refused(read):
    w = gn.ones(3, requires_grad=True)
    with pytest.raises(gn.cuda.CaptureError, match="reads a value back to the host"):
        with gn.cuda.graph(gn.cuda.CUDAGraph()):
            read((w * 2).sum())
    assert not gn.cuda.is_current_stream_capturing()
    assert type(w._data) is np.ndarray  # the capture's views are gone


def test_an_input_replaced_after_capture_is_refused_naming_its_shape():
    x, g = gn.zeros(4, 3), gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        y = x * 2
    x.data = gn.zeros(5, 3)
    with pytest.raises(ValueError, match=r"captured as \(4, 3\) float32\) now holds a different "
                                         r"array \(\(5, 3\) float32\).*copy_"):
        g.replay()
    assert y.shape == (4, 3)


def test_steps_a_graph_cannot_replay_are_refused():
    model = nn.Linear(3, 2)
    x, y = gn.randn(4, 3), gn.randn(4, 2)
    for opt, match in [(optim.Adam(model.parameters()), "capturable is False"),
                       (optim.SGD(model.parameters(), lr=0.1, momentum=0.9), "warm-up")]:
        with pytest.raises(RuntimeError, match=match):
            with gn.cuda.graph(gn.cuda.CUDAGraph()):
                F.mse_loss(model(x), y).backward()
                opt.step()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    with gn.cuda.graph(gn.cuda.CUDAGraph()):
        F.mse_loss(model(x), y).backward()
        opt.step()
    with pytest.raises(RuntimeError, match=r"lr=0.1, a number frozen into the graph.*gn.tensor"):
        sched.step()


def test_another_threads_work_during_a_capture_is_not_recorded():
    """A data-loading thread making tensors while the main thread captures: its work runs
    plainly, the capture records only the capturing thread's operations."""
    import threading

    x, alone, g, done = gn.ones(3), gn.cuda.CUDAGraph(), gn.cuda.CUDAGraph(), []
    with gn.cuda.graph(alone):
        x * 2
    with gn.cuda.graph(g):
        y = x * 2
        worker = threading.Thread(target=lambda: done.append((gn.ones(2) * 3).tolist()))
        worker.start()
        worker.join()
    assert done == [[3.0, 3.0]]  # the worker's tolist() was no host-read error
    assert len(g) == len(alone) == 2  # the constant 2 put on the device, and the product
    x.fill_(4.0)
    g.replay()
    assert y.tolist() == [8.0, 8.0, 8.0]


def _replays(region, n=2):
    """``region()``'s result after capture and after each of ``n`` replays, as lists."""
    g = gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        out = region()
    seen = [out.tolist()]
    for _ in range(n):
        g.replay()
        seen.append(out.tolist())
    return seen


def test_a_constant_made_inside_the_region_is_made_again_at_each_replay():
    x = gn.ones(3)

    def region():
        acc = gn.zeros(3)
        acc.add_(x)
        return acc

    assert _replays(region) == [[1.0, 1.0, 1.0]] * 3


def test_what_a_replay_cannot_reproduce_is_refused():
    x = gn.tensor([1.0, -2.0, 3.0])
    g = gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        total = x[x > 0].sum()
    x.copy_(gn.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(gn.cuda.CaptureError, match="depends on the values"):
        g.replay()
    assert total.item() == 4.0
    with pytest.raises(gn.cuda.CaptureError, match="host generator"):
        with gn.cuda.graph(gn.cuda.CUDAGraph()):
            gn.randint(0, 5, (3,))
    model = nn.Linear(2, 1)
    opt = optim.RMSprop(model.parameters(), lr=0.01)
    model(gn.ones(1, 2)).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="RMSprop.step\\(\\) cannot be captured"):
        with gn.cuda.graph(gn.cuda.CUDAGraph()):
            model(gn.ones(1, 2)).sum().backward()
            opt.step()
    sgd = optim.SGD(model.parameters(), lr=0.1)
    g = gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        model(gn.ones(1, 2)).sum().backward()
        sgd.step()
    sgd.param_groups[0]["lr"] = 0.5
    with pytest.raises(RuntimeError, match="captured step\\(\\) with lr=0.1, a number frozen"):
        g.replay()


def test_a_tensor_given_another_array_inside_the_region_keeps_it():
    w = gn.ones(2)
    g = gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        w.data = w.data * 2
    assert w.tolist() == [2.0, 2.0]


def test_fit_with_capture_refuses_an_optimizer_it_cannot_capture_before_changing_it():
    from gpunet.data import DataLoader, TensorDataset

    model = nn.Linear(2, 2)
    opt = optim.RMSprop(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(np.ones((4, 2), np.float32), np.zeros(4, np.int64)), batch_size=2)
    with pytest.raises(ValueError, match="RMSprop's step runs partly on the host"):
        gn.train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False, capture=True)
    assert opt.param_groups[0]["lr"] == 0.01


def test_a_gradient_captured_from_the_backward_seed_is_writable():
    """``w.sum().backward()``'s gradient is a broadcast view of the seed: .grad gets a copy."""
    w = gn.ones(3, requires_grad=True)
    g = gn.cuda.CUDAGraph()
    with gn.cuda.graph(g):
        w.sum().backward()
    g.replay()
    assert w.grad.zero_().tolist() == [0.0, 0.0, 0.0]
