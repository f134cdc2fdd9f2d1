"""The trainable SparsePixels layers against a slot-level NumPy transcription of DESIGN §3,
and the seed models (parameter counts, training, gradients, save/load, option errors)."""

import os
from collections import defaultdict

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import frontends.keras as fk  # noqa: E402

# ---------------------------------------------------------------------------------------------
# NumPy reference, written from DESIGN §3 on slots: feat [N, C], hash [N, 2] (1-based, 0 = empty)
# ---------------------------------------------------------------------------------------------


def ref_input_reduce(x, threshold, n_max):
    h_, w_, c_ = x.shape
    feat, hsh, k = np.zeros((n_max, c_)), np.zeros((n_max, 2), int), 0
    for h in range(h_):
        for w in range(w_):
            if k < n_max and (x[h, w] > threshold).any():
                feat[k], hsh[k], k = x[h, w], (h + 1, w + 1), k + 1
    return feat, hsh


def slots_of(x, mask):
    """Dense (x, mask) -> slots in raster order (for feeding layer inputs to the reference)."""
    hs, ws = np.nonzero(mask[..., 0])
    return x[hs, ws].astype(np.float64), np.stack([hs + 1, ws + 1], 1)


def ref_conv(feat, hsh, kernel, bias):
    kh, kw, _, co = kernel.shape
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    live = [i for i in range(len(hsh)) if hsh[i, 0] > 0]
    out = np.zeros((len(feat), co))
    for i in live:
        out[i] = bias
        for j in live:
            a, b = hsh[j, 0] - hsh[i, 0] + ph, hsh[j, 1] - hsh[i, 1] + pw
            if 0 <= a < kh and 0 <= b < kw:
                out[i] += feat[j] @ kernel[a, b]
    return out


def ref_pool(feat, hsh, p, mode, h_, w_):
    members = defaultdict(list)
    for i in range(len(hsh)):
        if hsh[i, 0] > 0:
            ph, pw = (hsh[i, 0] - 1) // p, (hsh[i, 1] - 1) // p
            if ph < h_ // p and pw < w_ // p:
                members[(ph, pw)].append(i)
    out, hout = np.zeros_like(feat), np.zeros_like(hsh)
    for (ph, pw), idx in members.items():
        first = min(idx)
        out[first] = feat[idx].sum(0) / p**2 if mode == "avg" else feat[idx].max(0)
        hout[first] = (ph + 1, pw + 1)
    return out, hout


def ref_activation(feat, hsh, fn):
    return np.where(hsh[:, :1] > 0, fn(feat), 0.0)


def ref_flatten(feat, hsh, h_, w_):
    return to_dense(feat, hsh, h_, w_)[0].reshape(-1)


def to_dense(feat, hsh, h_, w_):
    img, mask = np.zeros((h_, w_, feat.shape[1])), np.zeros((h_, w_, 1))
    for i in range(len(hsh)):
        if hsh[i, 0] > 0:
            img[hsh[i, 0] - 1, hsh[i, 1] - 1] = feat[i]
            mask[hsh[i, 0] - 1, hsh[i, 1] - 1] = 1
    return img, mask


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


# ---------------------------------------------------------------------------------------------
# Random sparse data
# ---------------------------------------------------------------------------------------------


def sparse_images(rng, b, h, w, c, density=0.15):
    """Images with signed values on a few pixels (some channels negative), incl. an empty one."""
    x = rng.normal(size=(b, h, w, c)) * (rng.random((b, h, w, 1)) < density)
    x[0] = 0.0                                              # empty event
    if b > 1:
        x[1] = rng.normal(size=(h, w, c)) * (rng.random((h, w, 1)) < 0.6)   # far more than n_max
    return x.astype(np.float32)


def random_pair(rng, b, h, w, c, density=0.3):
    """[x, mask] with signed x; x is NOT zero at inactive pixels: layers must ignore it there."""
    mask = (rng.random((b, h, w, 1)) < density).astype(np.float32)
    mask[0] = 0.0
    return rng.normal(size=(b, h, w, c)).astype(np.float32), mask


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


# ---------------------------------------------------------------------------------------------
# (1) layers vs the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_input_reduce_matches_reference(threshold):
    rng = np.random.default_rng(1)
    x = sparse_images(rng, 5, 9, 11, 2)
    x[2, 3, 4] = (threshold, -1.0)                   # == threshold: not active (strict)
    n_max = 12
    layer = fk.InputReduce(n_max, threshold)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out, mask = layer(xt)
        loss = tf.reduce_sum(out) + tf.reduce_sum(mask)
    grad = tape.gradient(loss, xt).numpy()
    for b in range(len(x)):
        ref_img, ref_mask = to_dense(*ref_input_reduce(x[b], threshold, n_max), 9, 11)
        np.testing.assert_array_equal(mask[b].numpy(), ref_mask)
        np.testing.assert_array_equal(out[b].numpy(), ref_img.astype(np.float32))
    assert mask[0].numpy().sum() == 0                          # empty image
    assert mask[1].numpy().sum() == n_max                      # overfull image: first n_max kept
    assert mask[2, 3, 4, 0] == 0
    # features are differentiated, the mask is not: d(loss)/dx = mask
    np.testing.assert_array_equal(grad, np.broadcast_to(mask.numpy(), x.shape))


def _conv_layer(kind, filters, ksize):
    if kind == "float":
        return fk.Conv2DSparse(filters, ksize)
    return fk.QConv2DSparse(filters, ksize, kernel_quantizer="quantized_bits(8,2,alpha=1)",
                            bias_quantizer="quantized_bits(8,2,alpha=1)")


@pytest.mark.parametrize("kind", ["float", "q8"])
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (4, 2)])
def test_conv_matches_reference(kind, ksize):
    rng = np.random.default_rng(2)
    x = sparse_images(rng, 4, 9, 10, 2)
    xr, mask = fk.InputReduce(15)(tf.constant(x))
    layer = _conv_layer(kind, 3, ksize)
    layer([xr, mask])
    layer.set_weights([rng.normal(size=(*ksize, 2, 3)), rng.normal(size=3)])
    y = layer([xr, mask]).numpy()
    kernel = layer.effective_kernel().numpy().astype(np.float64)
    bias = layer.effective_bias().numpy().astype(np.float64)
    if kind == "q8":                                 # fixed<8,3>: multiples of 2^-5 in [-4, 4)
        assert np.all(kernel * 32 == np.round(kernel * 32)) and np.abs(kernel).max() <= 4
    for b in range(len(x)):
        feat, hsh = ref_input_reduce(x[b], 0.0, 15)
        ref, _ = to_dense(ref_conv(feat, hsh, kernel, bias), hsh, 9, 10)
        np.testing.assert_allclose(y[b], ref, rtol=1e-5, atol=1e-5)
    assert not y[0].any()                            # empty image: no bias anywhere
    # the stated dense equivalent: Conv2D(padding='same') on the masked image, + bias, * mask
    conv = keras.layers.Conv2D(3, ksize, padding="same")
    conv(xr)
    conv.set_weights([kernel, bias])
    np.testing.assert_allclose(y, conv(xr).numpy() * mask.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("p", [2, 3])
def test_pool_matches_reference(mode, p):
    rng = np.random.default_rng(3)
    x, mask = random_pair(rng, 6, 7, 8, 2)
    layer = (fk.AveragePooling2DSparse if mode == "avg" else fk.MaxPooling2DSparse)(p)
    y, m = (t.numpy() for t in layer([tf.constant(x), tf.constant(mask)]))
    assert y.shape == (6, 7 // p, 8 // p, 2) and m.shape == (6, 7 // p, 8 // p, 1)
    saw_negative_max = saw_empty_window = False
    for b in range(len(x)):
        feat, hsh = slots_of(x[b], mask[b])
        ref, ref_mask = to_dense(*ref_pool(feat, hsh, p, mode, 7, 8), 7 // p, 8 // p)
        np.testing.assert_allclose(y[b], ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(m[b], ref_mask)
        saw_negative_max |= bool((ref_mask[..., 0] * (ref < 0).all(-1)).any())
        saw_empty_window |= bool((ref_mask == 0).any())
    assert saw_empty_window and (mode == "avg" or saw_negative_max)
    if mode == "avg":                                # = Keras AveragePooling2D on the masked image
        keras_avg = keras.layers.AveragePooling2D(p)(tf.constant(x * mask)).numpy()
        np.testing.assert_allclose(y, keras_avg, rtol=1e-6, atol=1e-6)


def test_max_pool_window_cases():
    x = np.zeros((1, 2, 4, 1), np.float32)
    mask = np.zeros((1, 2, 4, 1), np.float32)
    x[0, 0, 0], mask[0, 0, 0] = -3.0, 1      # window 0: active pixels all negative -> -1
    x[0, 1, 1], mask[0, 1, 1] = -1.0, 1
    # window 1 (columns 2-3): no active pixel -> 0, inactive
    y, m = fk.MaxPooling2DSparse(2)([tf.constant(x), tf.constant(mask)])
    np.testing.assert_array_equal(y.numpy()[0, 0, :, 0], [-1.0, 0.0])
    np.testing.assert_array_equal(m.numpy()[0, 0, :, 0], [1.0, 0.0])


@pytest.mark.parametrize("activation", ["sigmoid", "quantized_relu(8,2)"])
def test_sparse_activation(activation):
    rng = np.random.default_rng(4)
    x, mask = random_pair(rng, 3, 5, 6, 2)
    x[1, 0, 0], mask[1, 0, 0] = 0.0, 1              # an active pixel whose value is 0
    y = fk.SparseActivation(activation)([tf.constant(x), tf.constant(mask)]).numpy()
    if activation == "sigmoid":
        fn = sigmoid
    else:                                          # ufixed<8,2>: round to 2^-6, clip to [0, 4)
        fn = lambda v: np.clip(np.round(v * 64), 0, 255) / 64  # noqa: E731
    for b in range(len(x)):
        feat, hsh = slots_of(x[b], mask[b])
        ref, _ = to_dense(ref_activation(feat, hsh, fn), hsh, 5, 6)
        np.testing.assert_allclose(y[b], ref, rtol=1e-6, atol=1e-6)
    assert not (y * (1 - mask)).any()              # inactive pixels stay 0 (sigmoid(0) = 0.5)
    if activation == "sigmoid":
        assert y[1, 0, 0, 0] == 0.5


def test_sparse_mnist_model_matches_reference_pipeline():
    """Composition: the float sparse MNIST model == the §3 slot pipeline with its weights."""
    rng = np.random.default_rng(5)
    x = np.abs(sparse_images(rng, 3, 48, 48, 1, density=0.03))
    n_max = 40
    model = fk.mnist_model(n_max=n_max)
    w = {l.name: [v.astype(np.float64) for v in l.get_weights()] for l in model.layers}
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    y = model(x).numpy()
    for b in range(len(x)):
        f, h = ref_input_reduce(x[b], 0.0, n_max)
        f = ref_activation(ref_conv(f, h, *w["conv1"]), h, relu)
        f, h = ref_pool(f, h, 4, "avg", 48, 48)
        f = ref_activation(ref_conv(f, h, *w["conv2"]), h, relu)
        f, h = ref_pool(f, h, 2, "avg", 12, 12)
        z = relu(ref_flatten(f, h, 6, 6) @ w["dense1"][0] + w["dense1"][1])
        z = z @ w["dense2"][0] + w["dense2"][1]
        ref = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        np.testing.assert_allclose(y[b], ref, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# (2)-(4) seed models
# ---------------------------------------------------------------------------------------------

BUILDERS = {"neutrino": (fk.neutrino_model, 4121), "jet": (fk.jet_model, 4535),
            "mnist": (fk.mnist_model, 4422)}
VARIANTS = [(sparse, bits) for sparse in (True, False) for bits in (None, 8, 16)]


def build(name, sparse, bits, n_max=32):
    return BUILDERS[name][0](n_max=n_max, bits=bits, sparse=sparse)


def model_inputs(model, n=6, seed=6):
    """Non-negative events made of a few small clusters of hits (like tracks), one empty."""
    rng = np.random.default_rng(seed)
    h, w, c = model.input_shape[1:]
    x = np.zeros((n, h, w, c), np.float32)
    for event in x[1:]:
        for _ in range(3):
            r, q = rng.integers(0, h - 4), rng.integers(0, w - 4)
            hits = rng.random((4, 4, 1)) < 0.7
            event[r:r + 4, q:q + 4] = rng.uniform(0.5, 1.9, (4, 4, c)) * hits
    return x


@pytest.mark.parametrize("name", BUILDERS)
def test_parameter_counts_and_layer_names(name):
    for sparse, bits in VARIANTS:
        model = build(name, sparse, bits)
        assert model.count_params() == BUILDERS[name][1], (model.name, model.count_params())
        names = {l.name for l in model.layers}
        assert {"input", "conv1", "relu1", "conv2", "relu2", "pool1", "flatten", "dense1",
                "dense2", "output"} <= names, model.name
        assert ("input_reduce" in names) == sparse
        assert ("input_quant" in names) == (bits is not None)
    # quantized models put the InputReduce threshold on the input grid (ufixed<8,1>: 2^-7)
    t = fk.jet_model(n_max=8, bits=8, threshold=0.302).get_layer("input_reduce").threshold
    assert t * 128 == round(t * 128) and abs(t - 0.302) <= 2**-8
    # the quantized neutrino model re-quantizes its 7x7 average unless told not to
    assert "pool1_quant" in {l.name for l in fk.neutrino_model(n_max=8, bits=8).layers}
    assert "pool1_quant" not in {l.name for l in fk.neutrino_model(n_max=8, bits=8,
                                                                  quantize_pool=False).layers}


@pytest.mark.parametrize("name", BUILDERS)
def test_models_train_and_sparse_gradients_reach_kernels(name):
    for sparse, bits in VARIANTS:
        model = build(name, sparse, bits)
        x = model_inputs(model)
        units = model.output_shape[-1]
        y = (np.arange(len(x)) % 2).reshape(-1, 1) if units == 1 else \
            keras.utils.to_categorical(np.arange(len(x)) % units, units)
        loss = "binary_crossentropy" if units == 1 else "categorical_crossentropy"
        if sparse:
            with tf.GradientTape() as tape:
                value = keras.losses.get(loss)(y, model(x, training=True))
            kernels = [model.get_layer(n).kernel for n in ("conv1", "conv2")]
            for k, g in zip(kernels, tape.gradient(value, kernels)):
                assert g is not None and np.isfinite(g.numpy()).all(), (model.name, k.name)
                assert np.abs(g.numpy()).sum() > 0, (model.name, k.name)
        # eager: tracing a graph per model costs more than one epoch on 6 samples
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=True)
        history = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0]), model.name
        assert all(np.isfinite(w).all() for w in model.get_weights()), model.name


SAVE_CASES = [(n, True, b) for n in BUILDERS for b in (None, 8, 16)] + \
             [(n, False, 8) for n in BUILDERS]


@pytest.mark.parametrize("name,sparse,bits", SAVE_CASES)
def test_save_load_roundtrip(tmp_path, name, sparse, bits):
    model = build(name, sparse, bits)
    x = model_inputs(model, n=4)
    expected = model(x).numpy()
    for ext in ("keras", "h5"):
        path = tmp_path / f"{model.name}.{ext}"
        model.save(path)
        loaded = keras.models.load_model(path)      # no custom_objects: registered on import
        np.testing.assert_array_equal(loaded(x).numpy(), expected, err_msg=ext)
        for layer in loaded.layers:
            original = model.get_layer(layer.name)
            assert type(layer) is type(original)
            if isinstance(layer, fk.QConv2DSparse):
                assert [q.get_config() for q in layer.get_quantizers()] == \
                       [q.get_config() for q in original.get_quantizers()]


def test_sparse_activation_and_max_pool_roundtrip(tmp_path):
    from qkeras import quantized_relu
    xi, mi = keras.Input((6, 6, 2)), keras.Input((6, 6, 1))
    a = fk.SparseActivation("sigmoid")([xi, mi])
    b = fk.SparseActivation(quantized_relu(8, 2))([a, mi])
    c, m = fk.MaxPooling2DSparse(2)([b, mi])
    model = keras.Model([xi, mi], [c, m])
    x, mask = random_pair(np.random.default_rng(7), 2, 6, 6, 2)
    expected = model([x, mask])
    for ext in ("keras", "h5"):
        model.save(tmp_path / f"m.{ext}")
        got = keras.models.load_model(tmp_path / f"m.{ext}")([x, mask])
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(g.numpy(), e.numpy(), err_msg=ext)


# ---------------------------------------------------------------------------------------------
# (5) option errors
# ---------------------------------------------------------------------------------------------

CONV_OPTIONS = [("strides", 2), ("padding", "valid"), ("dilation_rate", 2),
                ("data_format", "channels_first")]


@pytest.mark.parametrize("cls", [fk.Conv2DSparse, fk.QConv2DSparse])
@pytest.mark.parametrize("option,value", CONV_OPTIONS)
def test_conv_option_errors(cls, option, value):
    with pytest.raises(ValueError) as err:
        cls(4, 3, name="bad_conv", **{option: value})
    message = str(err.value)
    assert cls.__name__ in message and "bad_conv" in message and option in message


@pytest.mark.parametrize("cls", [fk.AveragePooling2DSparse, fk.MaxPooling2DSparse])
@pytest.mark.parametrize("option,value", [("strides", 1), ("padding", "same"),
                                          ("data_format", "channels_first")])
def test_pool_option_errors(cls, option, value):
    with pytest.raises(ValueError, match=f"{cls.__name__} 'bad_pool'.*{option}"):
        cls(2, name="bad_pool", **{option: value})


def test_other_argument_errors():
    with pytest.raises(ValueError, match="InputReduce.*n_max"):
        fk.InputReduce(0)
    with pytest.raises(ValueError, match="n_max"):
        fk.jet_model(bits=8)
    with pytest.raises(ValueError, match="bits=4"):
        fk.jet_model(n_max=8, bits=4)
    with pytest.raises(ValueError, match="expects the pair"):
        fk.Conv2DSparse(2, 3)(tf.zeros((1, 4, 4, 1)))
