"""Trainable SparsePixels layers for tf_keras / QKeras (semantics: DESIGN.md §3).

A sparse tensor travels through a Keras model as a dense pair ``[x, mask]``: ``x`` is the image
[B, H, W, C] with every inactive pixel 0 and ``mask`` is [B, H, W, 1] float 0/1. Computing
densely on masked images gives exactly what the sparse hardware computes on slots, so these
layers are the training-time form of the ops the compiler lowers:

    InputReduce(n_max, threshold)        x             -> [x * mask, mask]    (input_reduce)
    Conv2DSparse / QConv2DSparse         [x, mask]     -> conv_same(x*mask) + bias, times mask
    AveragePooling2DSparse(P)            [x, mask]     -> [avgpool(x*mask), maxpool(mask)]
    MaxPooling2DSparse(P)                [x, mask]     -> [max over active members, maxpool(mask)]
    SparseActivation(activation)         [x, mask]     -> activation(x) * mask

Plain ``Activation('relu')`` / ``QActivation(quantized_relu)`` may be applied to ``x`` directly:
they map 0 to 0, so inactive pixels stay 0. Activations that do not keep 0 at 0 (sigmoid, tanh
with an offset, ...) need ``SparseActivation``; it is correct for every activation.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from qkeras.qlayers import get_auto_range_constraint_initializer  # noqa: E402
from qkeras.quantizers import get_quantizer  # noqa: E402

_serializable = keras.utils.register_keras_serializable(package="spx")


def _pair(value, option, layer):
    """An int or a pair of ints -> a tuple of two ints (ValueError naming layer and option)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{_where(layer)}: {option}={value!r} must be a positive int "
                         "or a pair of them")
    return pair


def _where(layer):
    return f"{type(layer).__name__} '{layer.name}'"


def _require(layer, option, value, allowed):
    """Reject an option value the sparse op cannot reproduce."""
    if value != allowed:
        raise ValueError(f"{_where(layer)}: {option}={value!r} is not supported "
                         f"(SparsePixels layers need {option}={allowed!r})")


def _channels_last(layer, data_format):
    data_format = data_format or keras.backend.image_data_format()
    _require(layer, "data_format", data_format, "channels_last")
    return data_format


def _split(inputs, layer):
    """[x, mask] (tensors or shapes) -> (x, mask); ValueError for anything else."""
    if (not isinstance(inputs, (list, tuple)) or len(inputs) != 2
            or not all(hasattr(t, "shape") or hasattr(t, "__len__") for t in inputs)):
        raise ValueError(f"{_where(layer)}: expects the pair [x, mask], got {inputs!r}")
    return inputs


def _split_cast(inputs, layer):
    x, mask = _split(inputs, layer)
    return x, tf.cast(mask, x.dtype)


# --------------------------------------------------------------------------------------------
# Input reduction
# --------------------------------------------------------------------------------------------

@_serializable
class InputReduce(keras.layers.Layer):
    """Keep the first ``n_max`` active pixels in raster order; return ``[x * mask, mask]``.

    A pixel is active iff any channel is > ``threshold`` (strict). The mask is a constant for
    the optimiser (stop_gradient); gradients flow to the kept features.
    """

    def __init__(self, n_max, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n_max, int) or n_max < 1:
            raise ValueError(f"{_where(self)}: n_max={n_max!r} must be a positive int")
        self.n_max = n_max
        self.threshold = float(threshold)

    def call(self, x):
        active = tf.reduce_any(x > tf.cast(self.threshold, x.dtype), axis=-1)   # [B, H, W]
        flat = tf.reshape(tf.cast(active, tf.int32), [tf.shape(x)[0], -1])
        rank = tf.cumsum(flat, axis=1)                # 1-based rank of each active pixel
        keep = tf.logical_and(flat > 0, rank <= self.n_max)
        mask = tf.reshape(tf.cast(keep, x.dtype), tf.concat([tf.shape(x)[:-1], [1]], 0))
        mask = tf.stop_gradient(mask)
        return [x * mask, mask]

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        return [shape, shape[:-1].concatenate([1])]

    def get_config(self):
        return {**super().get_config(), "n_max": self.n_max, "threshold": self.threshold}


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------

@_serializable
class Conv2DSparse(keras.layers.Layer):
    """Sparsity-preserving convolution: ``(conv2d_same(x * mask) + bias) * mask``, stride 1.

    ``strides``, ``padding``, ``dilation_rate`` and ``data_format`` are accepted only at the
    values the sparse op implements (1, 'same', 1, channels_last) so that Conv2D-style code
    fails loudly instead of training a different network.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="same",
                 dilation_rate=(1, 1), data_format=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size", self)
        self.strides = _pair(strides, "strides", self)
        _require(self, "strides", self.strides, (1, 1))
        self.padding = padding.lower() if isinstance(padding, str) else padding
        _require(self, "padding", self.padding, "same")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate", self)
        _require(self, "dilation_rate", self.dilation_rate, (1, 1))
        self.data_format = _channels_last(self, data_format)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def build(self, input_shape):
        channels = int(_split(input_shape, self)[0][-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint, trainable=True)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                trainable=True)
        super().build(input_shape)

    # The quantized subclass overrides these two.
    def effective_kernel(self):
        return self.kernel

    def effective_bias(self):
        return self.bias

    def call(self, inputs):
        x, mask = _split_cast(inputs, self)
        # QKeras quantizers return float32 whatever the input dtype; their values lie on a grid of
        # at most 24 significant bits, so casting them to x's dtype (float64 models) is exact.
        y = tf.nn.conv2d(x * mask, tf.cast(self.effective_kernel(), x.dtype), strides=1, padding="SAME")
        if self.use_bias:
            y = y + tf.cast(self.effective_bias(), x.dtype)
        return y * mask

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])[:-1].concatenate([self.filters])

    def get_config(self):
        init, reg, con = keras.initializers, keras.regularizers, keras.constraints
        return {
            **super().get_config(),
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "dilation_rate": self.dilation_rate,
            "data_format": self.data_format, "use_bias": self.use_bias,
            "kernel_initializer": init.serialize(self.kernel_initializer),
            "bias_initializer": init.serialize(self.bias_initializer),
            "kernel_regularizer": reg.serialize(self.kernel_regularizer),
            "bias_regularizer": reg.serialize(self.bias_regularizer),
            "kernel_constraint": con.serialize(self.kernel_constraint),
            "bias_constraint": con.serialize(self.bias_constraint),
        }


@_serializable
class QConv2DSparse(Conv2DSparse):
    """Conv2DSparse whose kernel and bias pass through QKeras quantizers (as in QConv2D).

    Quantizers may be given as objects (``quantized_bits(8, 2, alpha=1)``), strings or config
    dicts. Like QConv2D, a quantizer also bounds the initializer and adds a clipping constraint,
    and a kernel ``quantized_bits`` without ``alpha`` is switched to ``alpha="auto_po2"``; give
    ``alpha=1`` for plain fixed point (as the seed models do).
    """

    def __init__(self, filters, kernel_size, kernel_quantizer=None, bias_quantizer=None,
                 kernel_initializer="he_normal", use_bias=True, bias_initializer="zeros",
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        self.kernel_quantizer_internal = get_quantizer(kernel_quantizer)
        self.bias_quantizer_internal = get_quantizer(bias_quantizer)
        if hasattr(self.kernel_quantizer_internal, "_set_trainable_parameter"):
            # as QConv2D: quantized_bits without alpha becomes alpha="auto_po2"
            self.kernel_quantizer_internal._set_trainable_parameter()
        self.quantizers = [self.kernel_quantizer_internal, self.bias_quantizer_internal]
        kernel_constraint, kernel_initializer = get_auto_range_constraint_initializer(
            self.kernel_quantizer_internal, kernel_constraint, kernel_initializer)
        if use_bias:
            bias_constraint, bias_initializer = get_auto_range_constraint_initializer(
                self.bias_quantizer_internal, bias_constraint, bias_initializer)
        super().__init__(filters, kernel_size, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)

    def effective_kernel(self):
        q = self.kernel_quantizer_internal
        return q(self.kernel) if q is not None else self.kernel

    def effective_bias(self):
        q = self.bias_quantizer_internal
        return q(self.bias) if q is not None else self.bias

    def get_quantizers(self):
        return self.quantizers

    def get_config(self):
        return {**super().get_config(),
                "kernel_quantizer": _serialize_quantizer(self.kernel_quantizer_internal),
                "bias_quantizer": _serialize_quantizer(self.bias_quantizer_internal)}


def _serialize_quantizer(q):
    """A QKeras quantizer as ``{"class_name", "config"}`` (what QKeras' get_quantizer reads)."""
    if q is None or isinstance(q, str):
        return q
    if hasattr(q, "get_config"):
        return {"class_name": type(q).__name__, "config": q.get_config()}
    return getattr(q, "__name__", str(q))


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------

class _SparsePool(keras.layers.Layer):
    """Shared plumbing: square pool of size P, stride P, 'valid', channels_last."""

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size", self)
        self.strides = _pair(strides, "strides", self) if strides is not None else self.pool_size
        _require(self, "strides", self.strides, self.pool_size)
        self.padding = padding.lower() if isinstance(padding, str) else padding
        _require(self, "padding", self.padding, "valid")
        self.data_format = _channels_last(self, data_format)

    def _maxpool(self, t):
        return tf.nn.max_pool2d(t, self.pool_size, self.pool_size, "VALID")

    def compute_output_shape(self, input_shape):
        x_shape, m_shape = (tf.TensorShape(s) for s in input_shape)
        def pooled(s):
            hw = [None if d is None else d // p for d, p in zip(s[1:3], self.pool_size)]
            return tf.TensorShape([s[0], *hw, s[3]])
        return [pooled(x_shape), pooled(m_shape)]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


@_serializable
class AveragePooling2DSparse(_SparsePool):
    """``[avgpool(x * mask), maxpool(mask)]``: inactive members count as 0, divisor is P*P."""

    def call(self, inputs):
        x, mask = _split_cast(inputs, self)
        pooled = tf.nn.avg_pool2d(x * mask, self.pool_size, self.pool_size, "VALID")
        return [pooled, self._maxpool(mask)]


@_serializable
class MaxPooling2DSparse(_SparsePool):
    """``[max over ACTIVE members, maxpool(mask)]``; a window without active pixels gives 0."""

    def call(self, inputs):
        x, mask = _split_cast(inputs, self)
        lowest = tf.fill(tf.shape(x), tf.constant(x.dtype.min, x.dtype))
        pooled = self._maxpool(tf.where(mask > 0, x, lowest))
        mask_pooled = self._maxpool(mask)
        return [tf.where(mask_pooled > 0, pooled, tf.zeros_like(pooled)), mask_pooled]


# --------------------------------------------------------------------------------------------
# Activation
# --------------------------------------------------------------------------------------------

@_serializable
class SparseActivation(keras.layers.Layer):
    """``activation(x) * mask``: inactive pixels stay 0 whatever ``activation(0)`` is.

    ``activation`` is a Keras activation (name or function) or, as for QActivation, a QKeras
    quantizer (object, e.g. ``quantized_relu(8, 2)``, or string ``"quantized_relu(8,2)"``).
    relu / quantized_relu keep 0 at 0 and so need no wrapper; the wrapper is always correct.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _get_activation(activation)

    def call(self, inputs):
        x, mask = _split_cast(inputs, self)
        return self.activation(x) * mask

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self):
        act = self.activation
        if hasattr(act, "get_config"):                   # QKeras quantizer object
            act = _serialize_quantizer(act)
        else:
            act = keras.activations.serialize(act)
        return {**super().get_config(), "activation": act}


def _get_activation(identifier):
    if isinstance(identifier, str):
        try:
            return keras.activations.get(identifier)
        except ValueError:
            pass                                         # e.g. "quantized_relu(8,2)"
    if isinstance(identifier, dict) and "module" in identifier:  # a keras-serialized function
        return keras.activations.deserialize(identifier)
    q = get_quantizer(identifier)
    if not callable(q):
        raise ValueError(f"SparseActivation: cannot interpret activation {identifier!r}")
    return q


SPARSE_LAYERS = (InputReduce, Conv2DSparse, QConv2DSparse, AveragePooling2DSparse,
                 MaxPooling2DSparse, SparseActivation)
