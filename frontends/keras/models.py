"""The seed's three SparsePixels models (arXiv:2512.06208), sparse or standard, float or QKeras.

Every builder takes ``n_max`` (pixel budget of InputReduce; needed only when ``sparse``),
``bits`` (None = float, 8 or 16 = fully quantized QKeras variant, precisions in ``PRECISION``),
``sparse`` (False = the standard dense CNN of the same architecture and parameter count) and
``threshold`` (InputReduce activity threshold, strict '>'; in quantized variants it is first
quantized by the input quantizer, so it lies on the input grid).

Layer names are the same in all four variants of a model: input, [input_quant], [input_reduce],
conv1, relu1, ..., pool1, [pool1_quant], flatten, dense1, relu<k>, dense2, output. A quantized
model quantizes its input with a QActivation right after the Input, so every tensor up to the
output activation is exactly a fixed-point value.
"""

import tensorflow as tf
import tf_keras as keras
from qkeras import QActivation, QConv2D, QDense

from .layers import AveragePooling2DSparse, Conv2DSparse, InputReduce, QConv2DSparse

# QKeras spellings of the published precisions. quantized_bits(b, i, alpha=1) is fixed<b, i+1>
# (signed), quantized_relu(b, i) is ufixed<b, i> (DESIGN §4). The 16-bit input type is not
# stated in the paper; ufixed<16,6> (same as the activations) is our choice.
PRECISION = {
    8: {"input": "quantized_relu(8,1)", "weight": "quantized_bits(8,2,alpha=1)",
        "act": "quantized_relu(8,2)"},
    16: {"input": "quantized_relu(16,6)", "weight": "quantized_bits(16,6,alpha=1)",
         "act": "quantized_relu(16,6)"},
}


class _Net:
    """Applies layers to a running (x, mask) pair; mask is None in the standard CNN."""

    def __init__(self, shape, n_max, bits, sparse, threshold):
        if bits is not None and bits not in PRECISION:
            raise ValueError(f"bits={bits!r} is not supported (choose None, "
                             f"{', '.join(map(str, PRECISION))})")
        if sparse and n_max is None:
            raise ValueError("a sparse model needs n_max (the InputReduce pixel budget)")
        self.q = PRECISION.get(bits)
        self.sparse = sparse
        self.input = keras.Input(shape=shape, name="input")
        self.x, self.mask = self.input, None
        if self.q:
            quantize_input = QActivation(self.q["input"], name="input_quant")
            self.x = quantize_input(self.x)
            # put the threshold on the input grid, where "x > t" means the same whatever
            # rounding a back end uses to quantize t (DESIGN §3 input_reduce)
            threshold = float(quantize_input.quantizer(tf.constant(threshold, tf.float32)))
        if sparse:
            self.x, self.mask = InputReduce(n_max, threshold, name="input_reduce")(self.x)

    def conv(self, name, filters, k):
        if self.sparse:
            layer = (QConv2DSparse(filters, k, kernel_quantizer=self.q["weight"],
                                   bias_quantizer=self.q["weight"], name=name) if self.q
                     else Conv2DSparse(filters, k, name=name))
            self.x = layer([self.x, self.mask])
        else:
            layer = (QConv2D(filters, k, padding="same", kernel_quantizer=self.q["weight"],
                             bias_quantizer=self.q["weight"], name=name) if self.q
                     else keras.layers.Conv2D(filters, k, padding="same", name=name))
            self.x = layer(self.x)

    def relu(self, name):
        layer = (QActivation(self.q["act"], name=name) if self.q
                 else keras.layers.Activation("relu", name=name))
        self.x = layer(self.x)          # relu keeps 0 at 0: masked pixels stay inactive

    def avg_pool(self, name, size, quantize=False):
        if self.sparse:
            self.x, self.mask = AveragePooling2DSparse(size, name=name)([self.x, self.mask])
        else:
            self.x = keras.layers.AveragePooling2D(size, name=name)(self.x)
        if quantize and self.q:
            spec = quantize if isinstance(quantize, str) else self.q["act"]
            self.x = QActivation(spec, name=f"{name}_quant")(self.x)

    def dense(self, name, units):
        layer = (QDense(units, kernel_quantizer=self.q["weight"], bias_quantizer=self.q["weight"],
                        name=name) if self.q else keras.layers.Dense(units, name=name))
        if len(self.x.shape) > 2:
            self.x = keras.layers.Flatten(name="flatten")(self.x)
        self.x = layer(self.x)

    def model(self, name, bits, output_activation):
        out = keras.layers.Activation(output_activation, name="output")(self.x)
        kind = "sparse" if self.sparse else "standard"
        precision = "float" if bits is None else f"q{bits}"
        return keras.Model(self.input, out, name=f"{name}_{kind}_{precision}")


def neutrino_model(n_max=None, bits=None, sparse=True, threshold=0.0, quantize_pool=True):
    """LArTPC neutrino ID, 63x63x1 -> 1 (sigmoid), 4,121 parameters.

    ``quantize_pool`` (quantized variants only): the 7x7 average divides by 49, which no
    fixed-point type holds exactly, so a QActivation re-quantizes the pooled features, by
    default to the activation type (True); a QKeras spec string (e.g. "quantized_relu(8,0)")
    picks another type, False leaves the pool output unquantized.
    """
    net = _Net((63, 63, 1), n_max, bits, sparse, threshold)
    net.conv("conv1", 1, 7)
    net.relu("relu1")
    net.conv("conv2", 3, 7)
    net.relu("relu2")
    net.avg_pool("pool1", 7, quantize=quantize_pool)
    net.dense("dense1", 16)
    net.relu("relu3")
    net.dense("dense2", 1)
    return net.model("neutrino", bits, "sigmoid")


def jet_model(n_max=None, bits=None, sparse=True, threshold=0.0):
    """Jet images, 56x56x1 -> 5 classes (softmax), 4,535 parameters."""
    net = _Net((56, 56, 1), n_max, bits, sparse, threshold)
    net.conv("conv1", 3, 9)
    net.relu("relu1")
    net.conv("conv2", 1, 9)
    net.relu("relu2")
    net.avg_pool("pool1", 4)
    net.dense("dense1", 20)
    net.relu("relu3")
    net.dense("dense2", 5)
    return net.model("jet", bits, "softmax")


def mnist_model(n_max=None, bits=None, sparse=True, threshold=0.0):
    """MNIST upscaled to 48x48x1 -> 10 classes (softmax), 4,422 parameters."""
    net = _Net((48, 48, 1), n_max, bits, sparse, threshold)
    net.conv("conv1", 1, 7)
    net.relu("relu1")
    net.avg_pool("pool1", 4)
    net.conv("conv2", 3, 5)
    net.relu("relu2")
    net.avg_pool("pool2", 2)
    net.dense("dense1", 36)
    net.relu("relu3")
    net.dense("dense2", 10)
    return net.model("mnist", bits, "softmax")
