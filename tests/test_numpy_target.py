"""The numpy target: in-process runner, standalone file, diagnostics, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import test as xdsl_test

from codegen import get_target
from codegen.numpy.emit import load
from spx_ir.builder import ModelBuilder, model_function
from spx_ir.fixed import FixedType, quantize
from spx_ir.text import SpxError, parse_module
from tests.ir_samples import every_op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


def sparse_events(rng, n, shape, density):
    x = rng.uniform(-0.5, 2.0, size=(n, *shape))
    return x * (rng.random((n, *shape)) < density)


def test_standalone_file_matches_in_process_bit_for_bit(tmp_path):
    module = parse_module(EXAMPLE.read_text())
    ref = load(module)
    x = sparse_events(np.random.default_rng(1), 300, (63, 63, 1), 0.01)
    path = get_target("numpy").emit(module, tmp_path)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import json, sys, numpy as np, neutrino_sparse as m\n"
        "x = np.load('x.npy')\n"
        "np.save('y.npy', m.predict_raw(x))\n"
        "t = m.trace(x); np.savez('trace.npz', **{k.replace(':', '__'): v for k, v in t.items()})\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('spx_ir', 'codegen', 'passes', 'spx', 'xdsl'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []  # only numpy was imported
    assert path.name == "neutrino_sparse.py" and (tmp_path / "neutrino_sparse.npz").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), ref.predict_raw(x))
    trace = np.load(tmp_path / "trace.npz")
    expected = ref.trace(x)
    assert sorted(trace.files) == sorted(k.replace(":", "__") for k in expected)
    for k, v in expected.items():
        np.testing.assert_array_equal(trace[k.replace(":", "__")], v)


def test_trace_has_every_layer_and_predict_is_its_last_output():
    ref = load(every_op_model())
    x = sparse_events(np.random.default_rng(2), 50, (8, 8, 1), 0.3)
    t = ref.trace(x)
    assert [k for k in t if ":" not in k] == ref.LAYERS
    np.testing.assert_array_equal(t[ref.LAYERS[-1]], ref.predict(x))
    assert t["input_reduce_1:hash"].shape == (50, 4, 2)
    probs = ref.predict(x)
    assert probs.shape == (50, 5) and np.all(np.abs(probs.sum(axis=1) - 1) < 0.02)


def test_dropped_pixels_are_counted_per_event():
    ref = load(every_op_model(n_max=4))
    x = np.zeros((3, 8, 8, 1))
    x[0, 0, :7, 0] = 1.0  # 7 active -> 3 dropped
    x[1, 2, 2, 0] = 0.25  # not above threshold 0.25
    x[2, :, 0, 0] = 0.5  # 8 active -> 4 dropped
    np.testing.assert_array_equal(ref.diagnostics(x)["dropped"], [3, 0, 4])


def test_saturations_are_counted_per_layer_and_event():
    narrow = FixedType(4, 1, signed=False, overflow="SAT")
    b = ModelBuilder("sat", [4, 4, 1], FixedType(8, 3, signed=False))
    feat, hash = b.input_reduce(b.input, n_max=16)
    feat = b.sparse_activation(feat, hash, "relu", narrow)
    b.model = b.finish([b.sparse_flatten(feat, hash, 4, 4)])
    ref = load(b.model)
    x = np.zeros((2, 4, 4, 1))
    x[0, 0, :3, 0] = [0.5, 2.5, 7.0]  # 2.5 and 7.0 exceed ufixed<4,1> max 1.875
    x[1, 1, 1, 0] = 1.875
    sat = ref.diagnostics(x)["saturations"]
    np.testing.assert_array_equal(sat["sparse_activation_1"], [2, 0])
    np.testing.assert_array_equal(ref.predict(x)[0, :3], [0.5, 1.875, 1.875])


@pytest.mark.parametrize(
    "x,message",
    [
        (np.zeros((2, 8, 7, 1)), r"predict: expected input shape \(B, 8, 8, 1\) or \(8, 8, 1\), got \(2, 8, 7, 1\)"),
        (np.array([["a"]]), r"predict: input dtype <U1 is not numeric"),
        (np.where(np.arange(3)[:, None, None, None] == 2, np.nan, np.zeros((3, 8, 8, 1))), r"predict: event 2 contains NaN or Inf"),
    ],
)
def test_bad_inputs_raise_one_clear_value_error(x, message):
    ref = load(every_op_model())
    with pytest.raises(ValueError, match=message):
        ref.predict(x)


def test_single_event_without_batch_axis():
    ref = load(every_op_model())
    x = sparse_events(np.random.default_rng(3), 1, (8, 8, 1), 0.3)
    np.testing.assert_array_equal(ref.predict(x[0]), ref.predict(x))


def test_input_is_quantized_like_quantize():
    b = ModelBuilder("q", [2, 2, 1], FixedType(6, 2, quant="RND_CONV", overflow="SAT"))
    feat, hash = b.input_reduce(b.input, n_max=4, threshold=-100.0)
    ref = load(b.finish([b.sparse_flatten(feat, hash, 2, 2)]))
    x = np.array([[[0.1875], [-0.0625]], [[5.0], [-0.03]]])
    t = FixedType(6, 2, quant="RND_CONV", overflow="SAT")
    np.testing.assert_array_equal(ref.predict_raw(x[None])[0], quantize(x.reshape(-1), t))


def test_unsupported_op_is_named():
    module = every_op_model()
    fn = model_function(module)
    fn.body.block.insert_op_before(xdsl_test.TestOp.create(), fn.body.block.first_op)
    with pytest.raises(SpxError, match="the numpy target does not support op 'test.op'"):
        load(module)
