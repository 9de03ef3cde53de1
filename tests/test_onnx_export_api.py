"""gpunet.onnx.export's refusals and calling conventions: an unsupported layer or op named with
what is supported, in-place changes refused, tensors made in forward exported as constants, file
objects, parameters as inputs, keyword arguments, and gpunet without onnx installed.  The
round-trip helpers are tests/test_onnx_export.py's."""
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import gpunet as gn
from gpunet import function as _function
from gpunet import nn

from test_onnx_export import needs_onnx, roundtrip, runners

ROOT = Path(__file__).resolve().parents[1]


@needs_onnx
def test_unsupported_layer_names_the_layer_and_what_is_supported(tmp_path):
    class WithCell(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.cell = nn.LSTMCell(4, 4)

        def forward(self, x):
            return self.cell(self.fc(x))[0]

    model = WithCell()
    with pytest.raises(gn.onnx.UnsupportedOperatorError) as err:
        gn.onnx.export(model, gn.randn(2, 4), tmp_path / "m.onnx")
    message = str(err.value)
    assert "'cell' (LSTMCell)" in message and "supported layers:" in message and "LSTM" in message
    assert _function._tracer is None and "forward" not in model.cell.__dict__
    assert not (tmp_path / "m.onnx").exists()


@needs_onnx
def test_unsupported_op_names_the_op_and_the_module():
    class Sorts(nn.Module):
        def forward(self, x):
            return x.max(dim=1).values

    with pytest.raises(gn.onnx.UnsupportedOperatorError, match=r"op 'TakeAlongDim' in module "
                       r"'<model>' \(Sorts\).*supported ops: .*Conv2d"):
        gn.onnx.export(Sorts(), gn.randn(2, 3))
    assert _function._tracer is None


@needs_onnx
def test_inplace_change_is_refused():
    class InPlace(nn.Module):
        def forward(self, x):
            y = x * 2
            y += 1
            return y * 3

    with pytest.raises(gn.onnx.UnsupportedOperatorError, match="in place"):
        gn.onnx.export(InPlace(), gn.randn(2, 3))


@needs_onnx
def test_tensor_made_in_forward_is_a_constant_with_a_warning():
    class MakesOnes(nn.Module):
        def forward(self, x):
            return x + gn.ones(3)

    with pytest.warns(UserWarning, match="exported as a constant"):
        proto = gn.onnx.export(MakesOnes(), gn.randn(2, 3))
    (got,) = runners(proto)[0](None, {"input": np.zeros((2, 3), np.float32)})
    np.testing.assert_array_equal(got, np.ones((2, 3)))


@needs_onnx
def test_file_object_params_as_inputs_and_arguments(tmp_path):
    import onnx

    model = nn.Sequential(nn.Linear(3, 2))
    buffer = io.BytesIO()
    proto = gn.onnx.export(model, (gn.randn(1, 3),), buffer, keep_initializers_as_inputs=True,
                           opset_version=18)
    assert onnx.load_from_string(buffer.getvalue()) == proto
    assert [i.name for i in proto.graph.input] == ["input", "0.weight", "0.bias"]
    assert proto.opset_import[0].version == 18
    bare = gn.onnx.export(model, gn.randn(1, 3), str(tmp_path / "bare.onnx"), export_params=False)
    assert not bare.graph.initializer and len(bare.graph.input) == 3
    with pytest.raises(ValueError, match="opset_version"):
        gn.onnx.export(model, gn.randn(1, 3), opset_version=11)
    with pytest.raises(ValueError, match="dynamic_axes"):
        gn.onnx.export(model, gn.randn(1, 3), dynamic_axes={"nope": [0]})
    with pytest.raises(TypeError, match="nn.Module"):
        gn.onnx.export(lambda x: x, gn.randn(1, 3))


@needs_onnx
def test_keyword_arguments_and_passthrough_outputs(tmp_path):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x, y=None):
            z = self.fc(x) + y
            return z, z, x

    x, y = gn.randn(2, 3), gn.randn(2, 3)
    proto = roundtrip(Two(), (x, y), tmp_path)
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1", "output_2"]
    kw = gn.onnx.export(Two(), (x, {"y": y}), None)
    assert [i.name for i in kw.graph.input] == ["input_0", "input_1"]


def test_export_without_onnx_raises_one_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError) as err:
        gn.onnx.export(nn.Linear(2, 2), gn.randn(1, 2), None)
    message = str(err.value)
    assert "\n" not in message and "pip install onnx" in message and "gpunet[onnx]" in message


def test_gpunet_imports_without_onnx():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import gpunet, gpunet.onnx\n"
            "try:\n    gpunet.onnx.export(gpunet.nn.Linear(2, 2), gpunet.randn(1, 2))\n"
            "except ImportError as e:\n    print('ImportError:', e)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ImportError: gpunet.onnx.export needs the onnx package" in done.stdout


def test_the_hook_is_off_outside_an_export():
    assert _function._tracer is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (gn.randn(2, 2) @ gn.randn(2, 2)).relu()
