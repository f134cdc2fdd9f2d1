"""Exactness rules of issue 14: thresholds and QKeras saturation swept over every input value against
Keras, decision-preserving sigmoid/softmax tables, table_size in both targets, exact arithmetic past
int64, and the verifier's limits (one line naming the layer)."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import re  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64  # noqa: E402

from codegen.numpy import kernels as K  # noqa: E402
from codegen.numpy.emit import load as numpy_load  # noqa: E402
from spx_ir import tables as T  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import FixedType, convert, quantize, threshold_raw, to_float  # noqa: E402
from spx_ir.text import SpxError, verify  # noqa: E402

U8, U16 = FixedType(8, 1, False, "RND_CONV", "SAT"), FixedType(16, 6, False, "RND_CONV", "SAT")  # model inputs
S8, S16 = FixedType(8, 3, True, "RND_CONV", "SAT"), FixedType(16, 7, True, "RND_CONV", "SAT")
THRESHOLDS = [0.0, 0.4, 0.5, 0.3, 410 / 1024, -0.3, 1 / 128 + 1e-9, 2.0, 1.9921875, -3.0, 1e9, -1e9, 63.99]


def all_values(t: FixedType) -> np.ndarray:
    return np.arange(t.min_raw, t.max_raw + 1)


# ------------------------------------------------------------------------------ thresholds


@pytest.mark.parametrize("t,floatx", [(U8, "float32"), (S8, "float32"), (U16, "float64"), (S16, "float64")])
def test_threshold_equals_keras_for_every_input_value(t, floatx):
    """input_reduce activity == Keras InputReduce (x > threshold in floatx) for every value of t."""
    import tensorflow as tf

    import frontends.keras as fk

    raw = all_values(t)
    side = int(np.ceil(np.sqrt(raw.size)))
    image = np.zeros(side * side, np.int64)
    image[: raw.size] = raw
    image = image.reshape(1, side, side, 1)
    values = to_float(image, t).astype(floatx)
    for thr in THRESHOLDS:
        keras_thr = float(np.asarray(thr, floatx))  # what the lowering writes into the IR (lower.py)
        _, hash_, _, _ = K.input_reduce(image, t, threshold_raw(keras_thr, t), side * side, t)
        active = np.zeros((side, side), bool)
        kept = hash_[0, hash_[0, :, 0] > 0]
        active[kept[:, 0] - 1, kept[:, 1] - 1] = True
        _, mask = fk.InputReduce(side * side, thr, dtype=floatx)(tf.constant(values))
        np.testing.assert_array_equal(active, mask.numpy()[0, :, :, 0] > 0, err_msg=f"{t} threshold {thr}")


def test_threshold_rule_out_of_range_and_off_grid():
    assert threshold_raw(2.0, U8) == U8.max_raw            # never active (no wrap to 0)
    assert threshold_raw(-3.0, U8) == -1                   # always active (no wrap to +1)
    assert threshold_raw(0.4, U16) == 409                  # 410/1024 > 0.4 is active, as in Keras
    assert threshold_raw(410 / 1024, U16) == 410           # on the grid: strictly greater


# ------------------------------------------------------------------------------ QKeras quantizers


@pytest.mark.parametrize("spec,src,floatx", [
    ("quantized_bits(8,2,alpha=1)", FixedType(8, 6), "float32"),
    ("quantized_relu(8,2)", FixedType(8, 6), "float32"),
    ("quantized_relu(8,1)", FixedType(8, 4, False), "float32"),
    ("quantized_bits(16,6,alpha=1)", FixedType(16, 12), "float64"),
    ("quantized_relu(16,6)", FixedType(16, 12), "float64"),
    ("quantized_bits(8,2,alpha=1)", FixedType(16, 12), "float32"),
])
def test_quantizer_saturation_equals_qkeras_for_every_input_value(spec, src, floatx):
    """Every value of an 8 / 16-bit source type, far beyond the quantizer's range on both sides:
    spx's conversion (RND_CONV, SAT) == what QKeras computes."""
    import qkeras
    import tensorflow as tf
    import tf_keras as keras

    from frontends.keras.lower import quantizer_type

    t, relu = quantizer_type(spec, "test")
    raw = all_values(src)
    x = to_float(raw, src)
    keras.backend.set_floatx(floatx)
    try:
        want = qkeras.get_quantizer(spec)(tf.constant(x, dtype=floatx)).numpy().astype(np.float64)
    finally:
        keras.backend.set_floatx("float32")
    got = to_float(convert(np.maximum(raw, 0) if relu else raw, src, t), t)
    np.testing.assert_array_equal(got, want)
    assert (got == to_float(t.max_raw, t)).sum() > 1 and (raw > 0).any()  # saturation was exercised


def test_qkeras_float_artefact_is_the_stated_exception():
    """QKeras returns x + (xq - x) in floating point (straight-through estimator). For |x| >= 2**(24 - F)
    (float32, F fraction bits of the result) that sum rounds: quantized_bits(8,2)(1e6) = 4.0, a value
    off the fixed<8,3> grid. spx gives the saturated value, what the hardware computes."""
    import qkeras
    import tensorflow as tf

    q = qkeras.get_quantizer("quantized_bits(8,2,alpha=1)")
    assert float(q(tf.constant([1e6]))[0]) == 4.0
    assert to_float(quantize(1e6, S8), S8) == 3.96875
    limit = 2.0 ** (24 - S8.frac_bits)
    below = np.array([limit - 2.0 ** -S8.frac_bits, 3000.0, -limit])
    np.testing.assert_array_equal(q(tf.constant(below, tf.float32)).numpy(), to_float(quantize(below, S8), S8))


# ------------------------------------------------------------------------------ tables


@pytest.mark.parametrize("in_t", [FixedType(16, 6), FixedType(12, 1), FixedType(20, 3), FixedType(90, 40)])
@pytest.mark.parametrize("out_t", [FixedType(16, 6), FixedType(8, 0, False, "RND", "SAT"), FixedType(10, 1)])
@pytest.mark.parametrize("size", [8, 1024])
def test_sigmoid_decisions_equal_the_sign_of_the_input(in_t, out_t, size):
    if in_t.width > 20:  # wide input: values around 0 and beyond the table's range
        raw = np.array([0, 1, -1, 2**40, -(2**40), 2**70, -(2**70), 12345], dtype=object)
    else:
        raw = all_values(in_t)
    table = T.sigmoid_table(in_t, out_t, size)
    y = to_float(K.activation(raw.reshape(1, -1), in_t, "sigmoid", out_t, table)[0][0], out_t)
    x = np.array([int(r) for r in raw])
    assert np.all(y[x > 0] > 0.5) and np.all(y[x < 0] < 0.5) and np.all(y[x == 0] == 0.5)


def test_softmax_argmax_equals_argmax_of_logits():
    rng = np.random.default_rng(0)
    in_t = FixedType(24, 10)
    for out_t, n in ((FixedType(16, 6), 10), (FixedType(8, 1, False, "RND", "SAT"), 5), (FixedType(16, 6), 2)):
        base = rng.integers(-3000, 3000, size=(3000, 1))
        x = base + rng.integers(-3, 4, size=(3000, n))          # near ties everywhere
        x[:50] = base[:50]                                       # exact ties: numpy picks the first
        x[50:100, -1] = x[50:100].max(axis=1) + 1                # the last one wins by one LSB
        y, _ = K.activation(x, in_t, "softmax", out_t)
        np.testing.assert_array_equal(y.argmax(axis=1), x.argmax(axis=1))
        # the rule only ever lowers a non-maximum by what is needed
        plain = T.softmax_tables(in_t, n)
        assert np.abs(to_float(y, out_t) - to_float(K.activation(x, in_t, "softmax", out_t, plain)[0], out_t)).max() \
            <= 2.0 ** -out_t.frac_bits


def table_model():
    """Sigmoid, tanh and softmax with table_size; a wide dense (exact sums past int64)."""
    b = ModelBuilder("table_ops", [6], FixedType(24, 8))
    outs = []
    for kind, size in (("sigmoid", 16), ("sigmoid", None), ("tanh", 64), ("softmax", 32), ("softmax", None)):
        y = b.activation(b.input, kind, FixedType(16, 6) if kind != "softmax" else FixedType(12, 1, False, "RND"))
        if size:
            y.owner.table_size = IntegerAttr(size, i64)
        outs.append(y)
    w_t, b_t = FixedType(40, 20), FixedType(60, 10)             # products of 64 bits, sums of 68
    rng = np.random.default_rng(3)
    w = b.const(rng.integers(w_t.min_raw, w_t.max_raw, (6, 3), endpoint=True), w_t)
    bias = b.const(rng.integers(b_t.min_raw, b_t.max_raw, (3,), endpoint=True), b_t)
    wide = b.dense(b.input, w, bias, FixedType(68, 34))          # exact: no rounding anywhere
    outs.append(b.activation(wide, "linear", FixedType(24, 20, True, "RND_CONV", "SAT")))
    return b.finish(outs), (w, bias)


def test_table_size_and_wide_dense_in_numpy():
    module, _ = table_model()
    x = np.random.default_rng(1).uniform(-20, 20, (200, 6))
    outs = numpy_load(module).predict_raw(x)
    in_t = FixedType(24, 8)
    xr = quantize(x, in_t)
    small = K.activation(xr, in_t, "sigmoid", FixedType(16, 6), T.sigmoid_table(in_t, FixedType(16, 6), 16))[0]
    np.testing.assert_array_equal(outs[0], small)
    assert not np.array_equal(outs[0], outs[1])                 # table_size=16 is not the default
    out_t = FixedType(12, 1, False, "RND")
    np.testing.assert_array_equal(outs[3], K.activation(xr, in_t, "softmax", out_t, T.softmax_tables(in_t, 6, table_size=32))[0])
    assert not np.array_equal(outs[3], outs[4])


def test_wide_dense_is_exact():
    module, (w, bias) = table_model()
    x = np.random.default_rng(2).uniform(-100, 100, (20, 6))
    trace = numpy_load(module).trace(x)
    wide = next(v for k, v in trace.items() if k.startswith("dense"))
    assert wide.dtype == np.float64
    xr = quantize(x, FixedType(24, 8))
    wr, br = w.owner.raw(), bias.owner.raw()
    exact = [[Fraction(int(br[o]), 2**50) + sum(Fraction(int(xr[e, i]) * int(wr[i, o]), 2**36) for i in range(6))
              for o in range(3)] for e in range(20)]
    raws = numpy_load(module).predict_raw(x)[-1]
    want = [[min(max(round(v * 2**4), -(2**23)), 2**23 - 1) for v in row] for row in exact]
    np.testing.assert_array_equal(raws, np.array(want))


# ------------------------------------------------------------------------------ verifier limits


def _reduce_model(shape=(8, 8, 1)):
    b = ModelBuilder("m", list(shape), FixedType(8, 1, False))
    feat, hash_ = b.input_reduce(b.input, 4, 0.0)
    return b, b.sparse_flatten(feat, hash_, shape[0], shape[1])


@pytest.mark.parametrize("size,message", [(1000, "table_size must be a power of two, got 1000"),
                                          (2**30, r"table_size must be in \[2, 65536\], got 1073741824")])
def test_verifier_rejects_bad_table_size(size, message):
    b, flat = _reduce_model()
    y = b.activation(flat, "sigmoid", FixedType(16, 6))
    y.owner.table_size = IntegerAttr(size, i64)
    y.owner.attributes["layer"] = StringAttr("out")
    with pytest.raises(SpxError, match=r"spx.activation \(layer 'out'\): " + message) as err:
        verify(b.finish([y]))
    assert "\n" not in str(err.value)


def test_verifier_rejects_table_size_on_an_activation_without_a_table():
    b, flat = _reduce_model()
    y = b.activation(flat, "relu", FixedType(16, 6))
    y.owner.table_size = IntegerAttr(64, i64)
    with pytest.raises(SpxError, match="table_size applies to .*sigmoid.* only, not relu"):
        verify(b.finish([y]))


def test_verifier_rejects_huge_image():
    b = ModelBuilder("m", [100000, 100000, 1], FixedType(8, 1, False))
    feat, hash_ = b.input_reduce(b.input, 4, 0.0)
    with pytest.raises(SpxError, match="image 100000x100000 exceeds the largest supported side 4096"):
        verify(b.finish([b.sparse_flatten(feat, hash_, 100000, 100000)]))


def test_verifier_names_the_layer_of_a_too_wide_sum():
    b = ModelBuilder("m", [300], FixedType(1000, 300))
    w = b.const(np.zeros((300, 2), np.int64), FixedType(40, 20))
    y = b.dense(b.input, w, b.const(np.zeros(2, np.int64), FixedType(8, 4)), FixedType(16, 6))
    y.owner.attributes["layer"] = StringAttr("dense1")
    with pytest.raises(SpxError, match=r"spx.dense \(layer 'dense1'\): .* beyond MAX_WIDTH=1024"):
        verify(b.finish([y]))


# ------------------------------------------------------------------------------ C simulation


def threshold_model():
    """One input_reduce per threshold of THRESHOLDS (out of range, off grid, negative, on grid)."""
    b = ModelBuilder("thresholds", [16, 16, 1], U8)
    outs = []
    for thr in THRESHOLDS:
        feat, hash_ = b.input_reduce(b.input, 256, float(np.float32(thr)))
        outs.append(b.sparse_flatten(feat, hash_, 16, 16))
    return b.finish(outs)


def wide_sparse_model():
    """A sparse conv whose products (80 bits) and sums are far past int64, then a max pool, a
    sigmoid of the wide values and a conversion back to a narrow type."""
    rng = np.random.default_rng(4)
    b = ModelBuilder("wide_ops", [10, 10, 1], U8)
    feat, hash_ = b.input_reduce(b.input, 12, 0.1, FixedType(40, 2, False))
    w_t, b_t = FixedType(40, 10), FixedType(50, 20)
    w = b.const(rng.integers(-(2**31), 2**31, (3, 3, 1, 2)), w_t)     # |w| <= 2, 30 fraction bits
    bias = b.const(rng.integers(-(2**30), 2**30, (2,)), b_t)
    y = b.sparse_conv2d(feat, hash_, w, bias, FixedType(90, 20))
    pooled, phash = b.sparse_pool2d(y, hash_, 2, "max", 10, 10, FixedType(90, 20))
    sig = b.sparse_activation(y, hash_, "sigmoid", FixedType(12, 1, False, "RND"))
    narrow = b.sparse_activation(pooled, phash, "linear", FixedType(32, 22, True, "RND_CONV", "SAT"))
    return b.finish([b.sparse_flatten(sig, hash_, 10, 10), b.sparse_flatten(narrow, phash, 5, 5)])


def test_csim_equals_numpy_on_thresholds_tables_and_wide_sums():
    from codegen.vitis.csim import load as csim_load

    every = to_float(all_values(U8), U8).reshape(1, 16, 16, 1)
    x_img = np.concatenate([every, every[:, ::-1]])
    x_vec = np.random.default_rng(5).uniform(-20, 20, (300, 6))
    x_vec[:3] = 0.0                                         # sigmoid(0): exactly 1/2
    x_wide = np.random.default_rng(6).uniform(-0.2, 2.2, (200, 10, 10, 1)) * (
        np.random.default_rng(7).random((200, 10, 10, 1)) < 0.2)
    for module, x in ((threshold_model(), x_img), (table_model()[0], x_vec), (wide_sparse_model(), x_wide)):
        want = numpy_load(module).predict_raw(x)
        got = csim_load(module).predict_raw(x)
        assert max(len(np.unique(w)) for w in want) > 20  # informative outputs
        for k, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}")
    # the numpy side equals `value > threshold` (tested against Keras above)
    flats = numpy_load(threshold_model()).predict(every)
    for thr, flat in zip(THRESHOLDS, flats):
        expected = np.where(every.reshape(-1) > np.float32(thr), every.reshape(-1), 0)
        np.testing.assert_array_equal(flat[0], expected)


def test_verifier_refuses_a_conversion_ap_fixed_cannot_compute():
    b = ModelBuilder("m", [4], FixedType(4, -10))
    y = b.activation(b.input, "linear", FixedType(8, 8, True, "RND"))
    y.owner.attributes["layer"] = StringAttr("act")
    with pytest.raises(SpxError, match=r"spx.activation \(layer 'act'\): cannot assign .* aborts ap_fixed C simulation"):
        verify(b.finish([y]))


# ------------------------------------------------------------------------------ wide average-pool outputs


def pooled_output_model(n_convs: int, pool: int):
    """A QKeras model whose OUTPUT is an unquantized average pool (flattened) of n_convs unquantized
    16-bit sparse convolutions: each conv widens the exact type by ~21 bits, the pool by 2*log2(P)."""
    import tf_keras as keras
    from qkeras import QActivation

    from frontends.keras.layers import AveragePooling2DSparse, InputReduce, QConv2DSparse

    inp = keras.Input((8, 8, 1), name="input")
    x, mask = InputReduce(6, 0.0, name="input_reduce")(QActivation("quantized_relu(16,6)", name="input_quant")(inp))
    for k in range(n_convs):
        q = "quantized_bits(16,6,alpha=1)"
        x = QConv2DSparse(2, 3, kernel_quantizer=q, bias_quantizer=q, name=f"conv{k + 1}")([x, mask])
    x, mask = AveragePooling2DSparse(pool, name="pool")([x, mask])
    model = keras.Model(inp, keras.layers.Flatten(name="flatten")(x), name=f"pooled_{n_convs}_{pool}")
    rng = np.random.default_rng(n_convs * 10 + pool)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(-4, 4, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("n_convs,pool,out_type", [(2, 2, "fixed<59, 29>"), (1, 3, "fixed<16, 6>")])
def test_an_unquantized_average_pool_output_is_exact_in_csim(n_convs, pool, out_type):
    """A wide power-of-two pool (exact type, 59 bits) and a non-power-of-two one (the layer precision)."""
    import spx

    cm = spx.compile(pooled_output_model(n_convs, pool))
    assert f"-> tensor<{(8 // pool) ** 2 * 2}x!spx.{out_type}>" in cm.ir
    rng = np.random.default_rng(pool)
    x = rng.uniform(0, 3, (100, 8, 8, 1)) * (rng.random((100, 8, 8, 1)) < 0.3)
    want, got = cm.predict_raw(x), cm.predict_raw(x, backend="csim")  # one output: one array
    assert want.shape == (100, (8 // pool) ** 2 * 2) and len(np.unique(want)) > 50
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_convs,pool,message", [
    (3, 2, r"the model output type fixed<80,41> is wider than 62 bits"),
    (2, 4, r"pool: average pooling of fixed<57,29> into fixed<61,29> needs 66-bit integer arithmetic")])
def test_an_average_pool_output_vitis_cannot_hold_is_refused_at_compile_time(tmp_path, capsys, n_convs, pool, message):
    """One line, exit 1, no project left; the NumPy target alone still compiles it and csim refuses in one line."""
    from spx.cli import spx as spx_cli

    path = tmp_path / "m.keras"
    pooled_output_model(n_convs, pool).save(path)
    assert spx_cli(["compile", str(path), "-o", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.search(f"error: vitis target: {message}", err), err
    assert not (tmp_path / "p").exists()
    assert spx_cli(["compile", str(path), "-o", str(tmp_path / "q"), "--targets", "numpy"]) == 0
    np.save(tmp_path / "x.npy", np.ones((2, 8, 8, 1)))
    assert spx_cli(["predict", str(tmp_path / "q"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                    "--backend", "csim"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.search(message, err), err
