"""The seed's three architectures as users build them: every size compiles with default settings, and
on events from spx.datasets Keras == NumPy at every layer before the last activation, decisions after
it are identical, and the C simulation == NumPy bit for bit (issue 14).

Keras computes in float32 for the 8-bit models and float64 for the 16-bit ones (DESIGN.md section 5).
Weights are seeded random (the published trained weights are not in the repository)."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tf_keras as keras  # noqa: E402

import frontends.keras as fk  # noqa: E402
import spx  # noqa: E402
from codegen.vitis.csim import load as csim_load  # noqa: E402
from spx.datasets import sparsified_mnist, toy_lartpc  # noqa: E402
from tests.test_keras_lowering import keras_layer_outputs, randomize, to_dense  # noqa: E402

SIZES = {"t": 8, "s": 12, "m": 16, "l": 20}
BUILDERS = {"neutrino": fk.neutrino_model, "jet": fk.jet_model, "mnist": fk.mnist_model}


def events(arch: str, n: int = 200) -> np.ndarray:
    """Test events: toy LArTPC images (63x63 for the neutrino model, 56x56 for the jet model; the
    Pythia jet set is an optional extra) and the sparsified real MNIST digits."""
    if arch == "mnist":
        x = sparsified_mnist()[2]
    else:
        x = toy_lartpc(n_events=max(n, 50) * 5, size=63 if arch == "neutrino" else 56)[2]
    return x[:n]


def build(arch: str, bits: int, n_max: int = 20, **kw):
    keras.backend.set_floatx("float64" if bits == 16 else "float32")
    try:
        model = BUILDERS[arch](n_max=n_max, bits=bits, **kw)
    finally:
        keras.backend.set_floatx("float32")
    randomize(model, seed=bits + len(arch), scale=0.4)
    return model


def decisions(y: np.ndarray) -> np.ndarray:
    return (y[:, 0] > 0.5).astype(int) if y.shape[1] == 1 else y.argmax(axis=1)


@pytest.mark.parametrize("arch", list(BUILDERS))
@pytest.mark.parametrize("bits", [8, 16])
def test_every_size_compiles_with_default_settings(arch, bits):
    for n_max in SIZES.values():
        cm = spx.compile(build(arch, bits, n_max))
        assert "spx.sparse_conv2d" in cm.ir
    if arch == "neutrino":  # the 7x7 average pool without a quantizer (the published 16-bit models)
        text = spx.compile(build(arch, bits, quantize_pool=False)).ir
        pool = next(line for line in text.splitlines() if "spx.sparse_pool2d" in line)
        assert pool.rstrip().endswith("!spx.fixed<16, 6>>, tensor<20x2xui4>)")  # hls4ml's default precision


@pytest.fixture(scope="module")
def seeded_models():
    """(arch, bits) -> (Keras model, compiled model, events, C simulation), built in parallel."""
    cases = {(arch, bits): build(arch, bits) for arch in BUILDERS for bits in (8, 16)}
    compiled = {key: spx.compile(model) for key, model in cases.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        sims = dict(zip(compiled, pool.map(lambda cm: csim_load(cm.module), compiled.values())))
    return {key: (cases[key], compiled[key], events(key[0]), sims[key]) for key in cases}


@pytest.mark.parametrize("arch", list(BUILDERS))
@pytest.mark.parametrize("bits", [8, 16])
def test_keras_numpy_csim_on_dataset_events(seeded_models, arch, bits):
    model, cm, x, sim = seeded_models[(arch, bits)]
    floatx = "float64" if bits == 16 else "float32"
    x = x.astype(floatx)
    trace = cm.trace(x)
    names = [k for k in trace if ":" not in k and k in {layer.name for layer in model.layers}]
    keras.backend.set_floatx(floatx)
    try:
        expected = keras_layer_outputs(model, names, x)
    finally:
        keras.backend.set_floatx("float32")
    for name in names:
        if name == "output":
            continue
        got, want = trace[name], np.asarray(expected[name], dtype=np.float64)
        if name + ":hash" in trace:
            got = to_dense(got, trace[name + ":hash"], *want.shape[1:3])
        np.testing.assert_array_equal(got, want, err_msg=f"{arch} {bits} bit, layer {name}")
    assert len(names) >= 9 and np.abs(trace["dense2"]).max() > 0  # informative logits
    # after the last activation: identical decisions (Keras, NumPy, and the logits themselves)
    y = cm.predict(x)
    logits = trace["dense2"]
    assert np.array_equal(decisions(y), decisions(np.asarray(expected["output"], np.float64)))
    want = (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(axis=1)
    np.testing.assert_array_equal(decisions(y), want)
    # the C simulation == NumPy on every output bit
    np.testing.assert_array_equal(sim.predict_raw(x), cm.predict_raw(x))


def test_float64_saved_model_loads_and_compiles(tmp_path):
    model = build("mnist", 16, n_max=8)                      # layers in float64 (DESIGN.md section 5)
    model.save(tmp_path / "m.keras")
    assert spx.compile(str(tmp_path / "m.keras")).ir == spx.compile(model).ir


def test_unloadable_model_is_one_line_with_layer_and_cause(tmp_path):
    from spx.api import _load_error
    from spx_ir.text import SpxError

    err = TypeError('Exception encountered when calling layer "conv1" (type QConv2DSparse).\n\n'
                    "Input 'filter' of 'Conv2D' Op has type float32 that does not match type float64.\n\n"
                    'Call arguments received by layer "conv1" (type QConv2DSparse):\n  • inputs=[...]')
    assert _load_error(err) == ("layer 'conv1' (QConv2DSparse): Input 'filter' of 'Conv2D' Op has type "
                                "float32 that does not match type float64.")
    (tmp_path / "bad.keras").write_bytes(b"not a keras file")
    with pytest.raises(SpxError, match="bad.keras: error: ") as info:
        spx.compile(str(tmp_path / "bad.keras"))
    assert "\n" not in str(info.value)
