"""Lowering of a sparsepixels 0.3 (Keras 3 + HGQ2 0.2) model into spx IR, reproducing its semantics.

Upstream behaviour (sparsepixels/layers.py 0.3.2) and how it is expressed:
  InputReduce        keeps the first round_even(n * n_frac) pixels (in float32, as its call computes)
                     whose CHANNEL 0 is > threshold          -> input_reduce {activity = "channel0"}
  QConv2DSparse      masks, quantizes the input per element (its QConv2D's input quantizer, one
                     (k,i,f) per pixel and channel)          -> sparse_quantize (table by hash position)
                     convolves, adds its own quantized bias only where the sum is non-zero
                                                             -> sparse_conv2d {bias_mode = "nonzero"}
                     then relu/linear                        -> sparse_activation
  AveragePooling2DSparse  Keras average pooling of the masked image -> sparse_pool2d avg (exact)
  MaxPooling2DSparse      Keras max pooling of the masked image, inactive pixels are 0
                                                             -> sparse_pool2d {inactive = "zero"}
  QDense             input quantizer, kernel, bias           -> quantize, dense
  Flatten, ReLU, Activation (relu, linear, sigmoid, softmax) as usual; Dropout is the identity.
Weights and biases are HGQ2's quantized values as exact integers of the smallest covering type;
every sum is exact (HGQ2 computes them in float, which is exact while they fit its mantissa).

The model input type: the first convolution's input quantizer decides what reaches the network,
so the input is ufixed/fixed with that quantizer's integer bits and one fraction bit more than its
finest element (TRN, SAT); override it with the config (`LayerName: {<input>: {Precision: ...}}`).
HGQ2 compares the unquantized input with the float threshold; on every value of the input type the
comparison spx emits (threshold floored onto the input grid) is the same, so the two agree on every
input the hardware can receive (the input type is widened to hold the threshold).
"""

from __future__ import annotations

import math
import re

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr

from frontends.config import ConfigError, ModelConfig, apply_schedule
from frontends.sparsepixels.archive import SUPPORTED, Archive, Layer
from frontends.sparsepixels.hgq import Quantizer, read_quantizer, to_raw
from frontends.values import Mask, Sparse
from spx_ir import dialect as spx
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedType
from spx_ir.text import SpxError

SUPPORTED_LAYERS = ("InputLayer", "InputReduce", "QConv2DSparse", "AveragePooling2DSparse", "MaxPooling2DSparse",
                    "Flatten", "QDense", "ReLU", "Activation", "Dropout")
DENSE_ACTIVATIONS = ("relu", "linear", "sigmoid", "softmax")


def _activation(value, where: str, allowed=DENSE_ACTIVATIONS) -> str:
    name = value.get("config", {}).get("name") if isinstance(value, dict) else value
    name = "linear" if name is None else name
    if name not in allowed:
        raise SpxError(f"error: {where}: activation {str(name)[:30]!r} is not supported; supported: {', '.join(allowed)}")
    return name


class _Lowering:
    def __init__(self, archive: Archive, config):
        self.archive = archive
        self.config = ModelConfig(config)
        self.config.check_layer_names(layer.name for layer in archive.layers)
        self.by_name = {layer.name: layer for layer in archive.layers}
        self.values: dict[tuple[str, int], object] = {}
        self.builder: ModelBuilder | None = None

    # ------------------------------------------------------------------ helpers
    def cfg(self, layer: Layer):
        return self.config.layer(layer.name, layer.class_name)

    def tag(self, value, layer: Layer, suffix: str = "") -> None:
        op = value.owner
        op.attributes["layer"] = StringAttr(layer.name + suffix)
        apply_schedule(op, self.cfg(layer))

    def inputs(self, layer: Layer) -> list:
        try:
            return [self.values[ref] for ref in layer.inputs]
        except KeyError as err:
            raise SpxError(f"error: {layer.where}: its input {err.args[0][0]!r} is not computed before it") from None

    def sparse_pair(self, layer: Layer) -> tuple[Sparse, Mask]:
        ins = self.inputs(layer)
        if len(ins) != 2 or not isinstance(ins[0], Sparse) or not isinstance(ins[1], Mask):
            raise SpxError(f"error: {layer.where}: expects [features, keep_mask] from the sparse layers before it")
        x, mask = ins
        if x.hash is not mask.hash:
            raise SpxError(f"error: {layer.where}: its features and keep mask come from different sparse layers")
        return x, mask

    def quantizer(self, layer: Layer, path: tuple[str, ...], conf, shape, what: str) -> Quantizer:
        if len(path) == 1:  # a sub-object saved under its attribute name, with or without '_'
            path = (layer.sub(path[0], "_" + path[0]) or path[0],)
        return read_quantizer(layer, path, conf, tuple(shape), what)

    def constant(self, layer: Layer, values: np.ndarray, q: Quantizer | None, what: str):
        if q is None:
            raise SpxError(f"error: {layer.where}: {what} without a quantizer is not supported")
        raw, t = to_raw(q.apply_float32(values), q, f"{layer.where} {what}")
        return self.builder.const(raw, t), t

    def quantize(self, x, q: Quantizer, layer: Layer):
        """The input quantizer applied to a dense vector or sparse features."""
        table, out_t = q.kif_table(), q.covering_type()
        if isinstance(x, Sparse):
            op = spx.SparseQuantizeOp(x.feat, x.hash, table, q.round_mode, q.overflow_mode, out_t)
            self.builder._add(op)
            self.tag(op.result, layer, "_iq")
            return Sparse(op.result, x.hash, x.height, x.width)
        op = spx.QuantizeOp(x, table, q.round_mode, q.overflow_mode, out_t)
        self.builder._add(op)
        self.tag(op.result, layer, "_iq")
        return op.result

    # ------------------------------------------------------------------ the model
    def input_type(self, input_layer: Layer) -> FixedType:
        """The config's precision for the input layer, else derived from the first conv's input quantizer."""
        explicit = self.cfg(input_layer).explicit_result()
        if explicit is not None:
            return explicit
        reduce = next((lay for lay in self.archive.layers if (input_layer.name, 0) in lay.inputs
                       and lay.class_name == "InputReduce"), None)
        conv = reduce and next((lay for lay in self.archive.layers if (reduce.name, 0) in lay.inputs
                                and lay.class_name == "QConv2DSparse"), None)
        if conv is None or not conv.config.get("conv_config", {}).get("enable_iq", False):
            raise SpxError(f"error: {input_layer.where}: cannot derive the input type (no QConv2DSparse with an input "
                           "quantizer after InputReduce); set it in the config: LayerName: {"
                           f"{input_layer.name}: {{Precision: 'ufixed<16,6>'}}}}")
        shape = tuple(input_layer.config["batch_shape"][1:])
        q = self.quantizer(conv, ("conv", "iq"), conv.config["conv_config"].get("iq_conf"), shape, "input quantizer")
        t = q.covering_type()
        threshold = self.threshold(reduce)[1]
        signed = t.signed or threshold < 0
        int_bits, frac = t.int_bits + int(signed and not t.signed), t.frac_bits + 1
        while not -(2.0 ** (int_bits - 1) if signed else 0) <= threshold < 2.0 ** (int_bits - int(signed)):
            int_bits += 1  # the threshold must lie in the input range: never wraps or saturates
        return FixedType(int_bits + frac, int_bits, signed, "TRN", "SAT")

    def threshold(self, layer: Layer) -> tuple[int, float]:
        c = layer.config
        for key in ("n", "threshold", "learn_n", "learn_threshold"):
            if key not in c:
                raise SpxError(f"error: {layer.where}: no '{key}' in its config; supported: {SUPPORTED}")
        values = layer.vars()
        learned = [v for v in values if v.dtype.kind == "f" and v.ndim == 0]
        pos = 0
        threshold = np.float32(c["threshold"])
        if c["learn_threshold"]:
            if not learned:
                raise SpxError(f"error: {layer.where}: learned threshold not found in model.weights.h5; supported: {SUPPORTED}")
            threshold, pos = np.float32(learned[pos]), pos + 1
        if not abs(float(threshold)) < 2.0**30:
            raise SpxError(f"error: {layer.where}: threshold {float(threshold)!r} is not a finite number below 2^30")
        n = int(c["n"])
        if c["learn_n"]:
            if len(learned) <= pos:
                raise SpxError(f"error: {layer.where}: learned n not found in model.weights.h5; supported: {SUPPORTED}")
            n = int(np.round(np.float32(n) * np.float32(learned[pos])))  # float32, round half to even: as its call
        if n < 1:
            raise SpxError(f"error: {layer.where}: the deployed pixel budget is {n}")
        return n, float(threshold)

    def lower(self) -> ModuleOp:
        for layer in self.archive.layers:
            handler = getattr(self, f"_{layer.class_name}", None)
            if handler is None or not (layer.module.startswith(("keras", "sparsepixels", "hgq")) or layer.module == ""):
                raise SpxError(f"error: {layer.where} is not supported; supported: {', '.join(SUPPORTED_LAYERS)}")
            handler(layer)
        results = []
        for ref in self.archive.outputs:
            v = self.values.get(ref)
            if v is None or isinstance(v, (Sparse, Mask)):
                raise SpxError("error: a model output must be a dense tensor (add Flatten and QDense layers)")
            results.append(v)
        if len(self.archive.inputs) != 1:
            raise SpxError(f"error: the model has {len(self.archive.inputs)} inputs; spx compiles single-input models")
        return self.builder.finish(results)

    def _InputLayer(self, layer: Layer):
        shape = layer.config.get("batch_shape") or [None] + list(layer.config.get("input_shape", []))
        if len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
            raise SpxError(f"error: {layer.where}: input must be a fixed H x W x C image, got {shape[1:]}")
        if self.builder is not None:
            raise SpxError(f"error: {layer.where}: the model has several inputs; spx compiles single-input models")
        name = re.sub(r"[^A-Za-z0-9_]", "_", self.archive.name)[:64] or "model"
        self.builder = ModelBuilder(name if not name[0].isdigit() else f"m_{name}", shape[1:], self.input_type(layer))
        self.values[(layer.name, 0)] = self.builder.input

    def _InputReduce(self, layer: Layer):
        (x,) = self.inputs(layer)
        if isinstance(x, (Sparse, Mask)) or len(x.type.get_shape()) != 3:
            raise SpxError(f"error: {layer.where}: expects the dense input image")
        n, threshold = self.threshold(layer)
        h, w, _ = x.type.get_shape()
        feat, hash = self.builder.input_reduce(x, n, threshold)
        feat.owner.activity = StringAttr("channel0")
        self.tag(feat, layer)
        self.values[(layer.name, 0)] = Sparse(feat, hash, h, w)
        self.values[(layer.name, 1)] = Mask(hash, h, w)

    def _QConv2DSparse(self, layer: Layer):
        x, mask = self.sparse_pair(layer)
        c, conv = layer.config, layer.config.get("conv_config")
        if not isinstance(conv, dict):
            raise SpxError(f"error: {layer.where}: no conv_config; supported: {SUPPORTED}")
        for key, ok in (("strides", [1, 1]), ("dilation_rate", [1, 1]), ("groups", 1), ("padding", "same"),
                        ("data_format", "channels_last"), ("use_bias", False), ("enable_oq", False)):
            if conv.get(key, ok) != ok:
                raise SpxError(f"error: {layer.where}: {key}={str(conv.get(key))[:30]} is not supported (needs {ok})")
        _activation(conv.get("activation"), layer.where, ("linear",))
        act = _activation(c.get("activation"), layer.where, ("relu", "linear"))
        kernel = layer.vars("conv")[:1]
        if not kernel or kernel[0].ndim != 4:
            raise SpxError(f"error: {layer.where}: kernel not found in model.weights.h5; supported: {SUPPORTED}")
        kernel = kernel[0]
        if kernel.shape[2] != x.feat.type.get_shape()[1]:
            raise SpxError(f"error: {layer.where}: kernel {list(kernel.shape)} does not match {x.feat.type.get_shape()[1]} input channels")
        if conv.get("enable_iq", False):
            iq = self.quantizer(layer, ("conv", "iq"), conv.get("iq_conf"), (x.height, x.width, kernel.shape[2]), "input quantizer")
            x = self.quantize(x, iq, layer)
        kq = self.quantizer(layer, ("conv", "kq"), conv.get("kq_conf"), kernel.shape, "kernel quantizer")
        w, w_t = self.constant(layer, kernel, kq, "kernel")
        if c.get("use_bias", True):
            bias = layer.vars()[:1]
            if not bias or bias[0].shape != (kernel.shape[3],):
                raise SpxError(f"error: {layer.where}: sparse_bias not found in model.weights.h5; supported: {SUPPORTED}")
            bq = self.quantizer(layer, ("bq",), c.get("bq_conf"), bias[0].shape, "bias quantizer")
            b, b_t = self.constant(layer, bias[0], bq, "bias")
        else:
            b_t = FixedType(1, 1, signed=False)
            b = self.builder.const(np.zeros(kernel.shape[3], np.int64), b_t)
        in_t = x.feat.type.element_type.spec
        kh, kw, ci, _ = kernel.shape
        out_t = exact_sum_type(in_t, w_t, b_t, conv_terms(x.feat.type.get_shape()[0], kh, kw, ci))
        y = self.builder.sparse_conv2d(x.feat, x.hash, w, b, out_t)
        y.owner.bias_mode = StringAttr("nonzero")
        self.tag(y, layer)
        if act == "relu":
            y = self.builder.sparse_activation(y, x.hash, "relu", out_t)
            self.tag(y, layer, "_relu")
        self.values[(layer.name, 0)] = Sparse(y, x.hash, x.height, x.width)

    def _pool(self, layer: Layer, mode: str):
        x, _ = self.sparse_pair(layer)
        pc = layer.config.get("pool_config", {})
        size, strides = pc.get("pool_size", [2, 2]), pc.get("strides") or pc.get("pool_size", [2, 2])
        size = [size, size] if isinstance(size, int) else list(size)
        strides = [strides, strides] if isinstance(strides, int) else list(strides)
        p = size[0]
        if size[0] != size[1] or strides != size or pc.get("padding", "valid") != "valid" \
                or pc.get("data_format", "channels_last") != "channels_last":
            raise SpxError(f"error: {layer.where}: only square 'valid' pools with strides = pool_size are supported "
                           f"(got pool_size={size}, strides={strides}, padding={str(pc.get('padding'))[:10]})")
        if mode == "avg" and p & (p - 1):
            raise SpxError(f"error: {layer.where}: average pooling by {p} is not supported (Keras divides in floating "
                           "point; only powers of two are exact)")
        in_t = x.feat.type.element_type.spec
        grow = 2 * int(math.log2(p)) if mode == "avg" else 0
        out_t = FixedType(in_t.width + grow, in_t.int_bits, in_t.signed)
        feat, hash = self.builder.sparse_pool2d(x.feat, x.hash, p, mode, x.height, x.width, out_t)
        if mode == "max":
            feat.owner.inactive = StringAttr("zero")
        self.tag(feat, layer)
        h, w = x.height // p, x.width // p
        self.values[(layer.name, 0)] = Sparse(feat, hash, h, w)
        self.values[(layer.name, 1)] = Mask(hash, h, w)

    def _AveragePooling2DSparse(self, layer: Layer):
        self._pool(layer, "avg")

    def _MaxPooling2DSparse(self, layer: Layer):
        self._pool(layer, "max")

    def _Flatten(self, layer: Layer):
        (x,) = self.inputs(layer)
        if not isinstance(x, Sparse):
            raise SpxError(f"error: {layer.where}: only sparse features can be flattened")
        y = self.builder.sparse_flatten(x.feat, x.hash, x.height, x.width)
        self.tag(y, layer)
        self.values[(layer.name, 0)] = y

    def _QDense(self, layer: Layer):
        (x,) = self.inputs(layer)
        if isinstance(x, (Sparse, Mask)) or len(x.type.get_shape()) != 1:
            raise SpxError(f"error: {layer.where}: expects a flat vector (add a Flatten layer before it)")
        c = layer.config
        if c.get("enable_oq", False):
            raise SpxError(f"error: {layer.where}: output quantizers (enable_oq) are not supported")
        act = _activation(c.get("activation"), layer.where)
        values = layer.vars()
        kernel = values[0] if values else None
        if kernel is None or kernel.ndim != 2 or kernel.shape[0] != x.type.get_shape()[0]:
            raise SpxError(f"error: {layer.where}: kernel not found in model.weights.h5 or of the wrong shape")
        if c.get("enable_iq", False):
            iq = self.quantizer(layer, ("iq",), c.get("iq_conf"), x.type.get_shape(), "input quantizer")
            x = self.quantize(x, iq, layer)
        kq = self.quantizer(layer, ("kq",), c.get("kq_conf"), kernel.shape, "kernel quantizer")
        w, w_t = self.constant(layer, kernel, kq, "kernel")
        if c.get("use_bias", True):
            if len(values) < 2 or values[1].shape != (kernel.shape[1],):
                raise SpxError(f"error: {layer.where}: bias not found in model.weights.h5")
            bq = self.quantizer(layer, ("bq",), c.get("bq_conf"), values[1].shape, "bias quantizer")
            b, b_t = self.constant(layer, values[1], bq, "bias")
        else:
            b_t = FixedType(1, 1, signed=False)
            b = self.builder.const(np.zeros(kernel.shape[1], np.int64), b_t)
        out_t = exact_sum_type(x.type.element_type.spec, w_t, b_t, kernel.shape[0])
        y = self.builder.dense(x, w, b, out_t)
        self.tag(y, layer)
        if act != "linear":
            y.owner.attributes["layer"] = StringAttr(f"{layer.name}_linear")
            y = self.dense_activation(layer, y, act)
        self.values[(layer.name, 0)] = y

    def dense_activation(self, layer: Layer, x, act: str):
        in_t = x.type.element_type.spec
        if act == "linear":
            return x
        out_t = in_t if act == "relu" else self.cfg(layer).precision("result", FixedType(16, 1, signed=False))
        y = self.builder.activation(x, act, out_t)
        self.tag(y, layer)
        return y

    def _Dropout(self, layer: Layer):
        (x,) = self.inputs(layer)  # the identity at inference
        self.values[(layer.name, 0)] = x

    def _ReLU(self, layer: Layer):
        c = layer.config
        if c.get("max_value") is not None or c.get("negative_slope", 0) or c.get("threshold", 0):
            raise SpxError(f"error: {layer.where}: only a plain ReLU (no max_value, negative_slope or threshold) is supported")
        self._apply(layer, "relu")

    def _Activation(self, layer: Layer):
        self._apply(layer, _activation(layer.config.get("activation"), layer.where))

    def _apply(self, layer: Layer, act: str):
        (x,) = self.inputs(layer)
        if isinstance(x, Mask):
            raise SpxError(f"error: {layer.where}: cannot apply an activation to a keep mask")
        if isinstance(x, Sparse):
            if act not in ("relu", "linear"):
                raise SpxError(f"error: {layer.where}: {act} of sparse features is not supported (relu, linear)")
            y = x.feat
            if act == "relu":
                y = self.builder.sparse_activation(x.feat, x.hash, "relu", x.feat.type.element_type.spec)
                self.tag(y, layer)
            self.values[(layer.name, 0)] = Sparse(y, x.hash, x.height, x.width)
            return
        self.values[(layer.name, 0)] = self.dense_activation(layer, x, act)


def from_archive(archive: Archive, config=None) -> ModuleOp:
    """A verified spx module for a read .keras archive."""
    from spx_ir.text import verify

    try:
        module = _Lowering(archive, config).lower()
    except ConfigError as err:
        raise SpxError(f"error: {err}") from None
    verify(module, f"model '{archive.name}'")
    return module
