"""PyTorch names gpunet lacks: reaching one says what to do instead (issue 22, item 5), and
``hasattr`` still answers False, so scripts that test for a feature take their other branch."""
from __future__ import annotations

import pytest

import gpunet as gn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name, advice", [
    ("compile", "make_graphed_callables"), ("jit", "gn.onnx.export"), ("fx", "gn.onnx.export"),
    ("export", "gn.onnx.export"), ("amp", "loss.backward()"), ("fft", "numpy.fft"),
    ("linalg", "numpy.linalg"), ("sparse", "dense tensors")])
def test_a_missing_pytorch_module_names_what_to_do_instead(name, advice):
    assert hasattr(torch, name)  # a name PyTorch has, so a port can reach it
    assert not hasattr(gn, name)
    with pytest.raises(AttributeError, match=rf"module 'gpunet' has no attribute '{name}': .*"):
        getattr(gn, name)
    with pytest.raises(AttributeError) as info:
        getattr(gn, name)
    assert advice in str(info.value)


def test_a_name_neither_has_gets_python_s_usual_error():
    with pytest.raises(AttributeError, match=r"^module 'gpunet' has no attribute 'no_such_thing'$"):
        gn.no_such_thing  # noqa: B018


def test_a_script_that_compiles_when_it_can_takes_its_eager_branch():
    model = gn.nn.Linear(3, 2)
    compiled = gn.compile(model) if hasattr(gn, "compile") else model
    assert compiled is model and compiled(gn.zeros(1, 3)).shape == (1, 2)
