"""from_keras: the lowered module, through the NumPy reference, equals Keras at every layer."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tf_keras as keras  # noqa: E402

import frontends.keras as fk  # noqa: E402
from codegen.numpy.emit import load  # noqa: E402
from frontends.keras.config import config_from_keras_model  # noqa: E402
from frontends.keras.lower import from_keras, quantizer_type  # noqa: E402
from spx_ir.fixed import FixedType, quantize, to_float  # noqa: E402
from spx_ir.text import SpxError, parse_module, print_module  # noqa: E402

TABLE_LAYERS = ("output",)  # sigmoid/softmax: compared within the table resolution


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype) for w in ws])


def sparse_images(shape, n, seed=0, density=0.03, low=-0.3, high=1.5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (n, *shape)) * (rng.random((n, *shape)) < density)
    x[0] = 0  # an empty image
    x[1].reshape(-1)[: 3 * np.prod(shape) // 4 : 7] = 0.9  # far more than n_max active pixels
    return x.astype(np.float32)  # QKeras quantizes inputs in float32 even under floatx float64


def to_dense(feat, hash, height, width):
    """Scatter sparse features back into the masked dense image."""
    out = np.zeros((feat.shape[0], height, width, feat.shape[-1]))
    b, k = np.nonzero(hash[..., 0])
    out[b, hash[b, k, 0] - 1, hash[b, k, 1] - 1] = feat[b, k]
    return out


def keras_layer_outputs(model, names, x):
    outs = [model.get_layer(n).output for n in names]
    outs = [o[0] if isinstance(o, list) else o for o in outs]
    values = keras.Model(model.input, outs).predict(x, verbose=0, batch_size=256)
    return dict(zip(names, values if len(names) > 1 else [values]))


def compare_every_layer(model, x):
    """{layer: (max abs diff, mismatching values)} of spx trace vs Keras for every traced Keras layer."""
    module = from_keras(model)
    trace = load(module).trace(x)
    names = [k for k in trace if ":" not in k and k in {layer.name for layer in model.layers}]
    expected = keras_layer_outputs(model, names, x)
    report = {}
    for name in names:
        got, want = trace[name], np.asarray(expected[name], dtype=np.float64)
        if name + ":hash" in trace:
            got = to_dense(got, trace[name + ":hash"], *want.shape[1:3])
        diff = np.abs(got - want)
        report[name] = (float(diff.max()), int((diff > 0).sum()))
    return module, report


@pytest.fixture
def float64_keras():
    keras.backend.set_floatx("float64")
    yield
    keras.backend.set_floatx("float32")


@pytest.mark.parametrize("arch", ["neutrino", "jet", "mnist"])
@pytest.mark.parametrize("bits", [8, 16])
def test_quantized_models_equal_keras_at_every_layer(arch, bits, request):
    if bits == 16:  # 16-bit products and sums exceed float32's 24 significant bits
        request.getfixturevalue("float64_keras")
    model = getattr(fk, f"{arch}_model")(n_max=20, bits=bits)
    randomize(model, seed=bits)
    x = sparse_images(model.input_shape[1:], 300, seed=bits).astype(keras.backend.floatx())
    module, report = compare_every_layer(model, x)
    exact = {k: v for k, v in report.items() if k not in TABLE_LAYERS}
    assert len(exact) >= 9
    assert all(v == (0.0, 0) for v in exact.values()), exact
    assert report["output"][0] < 0.01  # table resolution (sigmoid 16/1024/4, softmax bound)


def test_lowered_module_round_trips_and_names_layers():
    model = fk.mnist_model(n_max=12, bits=8)
    module = from_keras(model)
    text = print_module(module)
    assert print_module(parse_module(text)) == text
    for name in ("input_reduce", "conv1", "relu1", "pool1", "conv2", "pool2", "flatten", "dense1", "dense2", "output"):
        assert f'layer = "{name}"' in text
    assert "tensor<48x48x1x!spx.fixed<8, 1, unsigned, RND_CONV, SAT>>" in text  # input quantizer
    assert "spx.const" in text and "tensor<7x7x1x1x!spx.fixed<8, 3, RND_CONV, SAT>>" in text


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("quantized_bits(8,2,alpha=1)", (FixedType(8, 3, True, "RND_CONV", "SAT"), False)),
        ("quantized_bits(16,6,alpha=1)", (FixedType(16, 7, True, "RND_CONV", "SAT"), False)),
        ("quantized_relu(8,2)", (FixedType(8, 2, False, "RND_CONV", "SAT"), True)),
        ("quantized_relu(16,6)", (FixedType(16, 6, False, "RND_CONV", "SAT"), True)),
    ],
)
def test_quantizer_mapping_matches_what_qkeras_computes(spec, expected):
    import qkeras
    import tensorflow as tf

    t, relu = quantizer_type(spec, "test")
    assert (t, relu) == expected
    f = t.frac_bits
    rng = np.random.default_rng(0)
    ties = (np.arange(-4000, 4000) + 0.5) * 2.0**-f  # exact rounding ties
    x = np.concatenate([ties, rng.uniform(-2 * 2**t.int_bits, 2 * 2**t.int_bits, 20000)])
    x = x.astype(np.float32).astype(np.float64)  # QKeras quantizes in float32 whatever the input dtype
    want = qkeras.get_quantizer(spec)(tf.constant(x, dtype=tf.float64)).numpy()
    got = to_float(quantize(np.maximum(x, 0) if relu else x, t), t)
    np.testing.assert_array_equal(got, want)


def test_float_model_lowers_with_config_and_reports_error():
    model = fk.mnist_model(n_max=16)
    randomize(model, seed=3, scale=0.3)
    cfg = config_from_keras_model(model, granularity="name", default_precision="fixed<18,8>")
    cfg["LayerName"]["input"]["Precision"] = "ufixed<12,2>"
    module = from_keras(model, cfg)
    x = sparse_images((48, 48, 1), 200, seed=4, low=0.0, high=1.0)
    got = load(module).predict(x)
    want = model.predict(x, verbose=0)
    err = np.abs(got - want).max()
    print(f"float mnist sparse model vs Keras: max abs error {err:.4g}")  # reported, not hidden
    assert 0 < err < 0.05
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9


def test_config_precision_and_reuse_factor_reach_the_ir():
    model = fk.jet_model(n_max=8)
    cfg = config_from_keras_model(model, granularity="name")
    cfg["LayerName"]["dense1"]["Precision"] = {"result": "fixed<12,4>", "accum": "fixed<30,12>", "weight": "fixed<10,3>"}
    cfg["LayerName"]["dense1"]["ReuseFactor"] = 4
    text = print_module(from_keras(model, cfg))
    dense1 = next(line for line in text.splitlines() if 'layer = "dense1"' in line)
    assert "accum_type = !spx.fixed<30, 12>" in dense1 and "reuse_factor = 4 : i64" in dense1
    assert "tensor<196x20x!spx.fixed<10, 3>>" in dense1 and dense1.endswith("-> tensor<20x!spx.fixed<12, 4>>")


def test_schedule_keys_and_config_typos_in_the_qkeras_lowering():
    """One config reader for every front end: hls4ml's parallel keys and ReuseFactor beyond Dense reach
    the IR; misspelt keys and layer names are errors (issue 13, finding 8)."""
    model = fk.jet_model(n_max=8)
    cfg = config_from_keras_model(model, granularity="name")
    cfg["LayerName"]["conv1"].update({"PixelParallelFactor": 4, "FiltParallelFactor": 1})
    cfg["LayerName"]["conv2"]["ReuseFactor"] = 1
    cfg["LayerName"]["pool1"].update({"ChanParallelFactor": 1})
    cfg["LayerName"]["flatten"]["ParallelFactor"] = 2
    cfg["LayerName"]["relu1"]["ReuseFactor"] = 8
    text = print_module(from_keras(model, cfg))
    line = lambda name: next(x for x in text.splitlines() if f'layer = "{name}"' in x)  # noqa: E731
    assert "pixel_parallel = 4 : i64" in line("conv1") and "filter_parallel = 1 : i64" in line("conv1")
    assert "channel_parallel = 1 : i64" in line("pool1")
    assert "pixel_parallel = 2 : i64" in line("flatten")
    assert "pixel_parallel = 1 : i64" in line("relu1")  # N=8 slots / reuse 8
    for bad, match in (({"Modle": {}}, "unknown key\\(s\\) 'Modle'"),
                       ({"LayerName": {"dense1": {"ReuseFactr": 2}}}, "unknown key\\(s\\) 'ReuseFactr'"),
                       ({"LayerName": {"dense_1": {}}}, "LayerName 'dense_1' is not a layer of the model"),
                       ("Model", "config must be a mapping"), ({"Model": None}, "Model is empty")):
        with pytest.raises(SpxError, match=match):
            from_keras(model, bad)


def test_unsupported_layer_is_named():
    model = fk.jet_model(bits=None, sparse=False)  # the standard CNN uses Conv2D
    with pytest.raises(SpxError, match=r"error: layer 'conv1' \(Conv2D\) is not supported; supported: InputLayer, "):
        from_keras(model)


def test_bad_config_is_one_line():
    model = fk.mnist_model(n_max=8)
    with pytest.raises(SpxError, match=r"config for layer 'dense1': .*cannot parse fixed-point type 'fixed16'"):
        from_keras(model, {"LayerName": {"dense1": {"Precision": "fixed16"}}})


def test_table_size_config_key_reaches_the_ir_and_changes_the_outputs():
    """hls4ml's TableSize (by layer name or type) sets table_size of the layer's sigmoid/softmax; values
    that are not a power of two in [2, 65536] are one-line config errors naming the layer."""
    model = fk.jet_model(n_max=8, bits=8)
    randomize(model, seed=3)
    x = sparse_images(model.input_shape[1:], 200, seed=3, density=0.05)

    def table_sizes(module):
        return [op.table_size and op.table_size.value.data for op in module.walk() if op.name == "spx.activation"]

    base = from_keras(model)
    assert table_sizes(base) == [None, None]  # relu3 and the softmax output
    for cfg in ({"LayerName": {"output": {"TableSize": 16}}}, {"LayerType": {"Activation": {"TableSize": 16}}}):
        small = from_keras(model, cfg)
        assert table_sizes(small) == [None, 16]
        assert print_module(small).count("table_size = 16 : i64") == 1
    outs = load(small).predict(x), load(base).predict(x)
    assert not np.array_equal(*outs)  # 16 bins instead of 1024: the key is honoured
    for value, match in ((1000, "TableSize must be a power of two, got 1000"), (2**17, r"TableSize must be in \[2, 65536\]"),
                         (0, "TableSize must be a positive integer, got 0")):
        with pytest.raises(SpxError, match=rf"config for layer 'output': {match}") as err:
            from_keras(model, {"LayerName": {"output": {"TableSize": value}}})
        assert "\n" not in str(err.value)
