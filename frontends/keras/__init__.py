"""Keras/QKeras front end: the trainable SparsePixels layers and the seed models.

Importing this package (which forces Keras 2 via TF_USE_LEGACY_KERAS=1 before TensorFlow loads)
registers the spx layers and the QKeras layers, quantizers, initializers and constraints as
tf_keras custom objects, so saved models load back with a plain ``tf_keras.models.load_model``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import qkeras  # noqa: E402
import tf_keras  # noqa: E402

from .layers import (  # noqa: E402
    SPARSE_LAYERS,
    AveragePooling2DSparse,
    Conv2DSparse,
    InputReduce,
    MaxPooling2DSparse,
    QConv2DSparse,
    SparseActivation,
)
from .models import jet_model, mnist_model, neutrino_model  # noqa: E402

# QKeras does not register its classes with Keras; it expects a custom_objects dict at load time.
# Put them in the global registry under their plain class names (what QKeras configs refer to).
QKERAS_OBJECTS = {
    name: getattr(qkeras, name)
    for name in (
        "QDense", "QConv1D", "QConv2D", "QConv2DTranspose", "QDepthwiseConv2D",
        "QSeparableConv1D", "QSeparableConv2D", "QActivation", "QAdaptiveActivation",
        "QBatchNormalization", "QAveragePooling2D", "QGlobalAveragePooling2D",
        "QInitializer", "Clip",
        "quantized_bits", "quantized_relu", "quantized_tanh", "quantized_sigmoid",
        "quantized_ulaw", "quantized_po2", "quantized_relu_po2",
        "binary", "stochastic_binary", "ternary", "stochastic_ternary", "bernoulli",
    )
}
tf_keras.utils.get_custom_objects().update(QKERAS_OBJECTS)

__all__ = [
    "InputReduce", "Conv2DSparse", "QConv2DSparse", "AveragePooling2DSparse",
    "MaxPooling2DSparse", "SparseActivation", "SPARSE_LAYERS", "QKERAS_OBJECTS",
    "neutrino_model", "jet_model", "mnist_model",
]
