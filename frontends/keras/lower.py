"""Lowering of a Keras/QKeras SparsePixels model into spx IR: `from_keras(model, config=None)`.

Types: QKeras quantizers become fixed types (quantized_bits(b, i, alpha=1) -> fixed<b, i+1,
RND_CONV, SAT>, quantized_relu(b, i) -> relu into ufixed<b, i, RND_CONV, SAT>: what QKeras computes,
checked by tests). Weights of quantized layers are the quantizer's output stored as integers;
float layers take weight/bias/result types from the hls4ml-style config. Quantized conv/dense
layers keep their exact (full-precision) result type, so the next quantizer rounds once, as Keras
does. A QKeras quantizer right after the Input sets the model's input type; one right after an
average pool becomes that pool's result type (rounded once). An average pool without one keeps the
exact result when P is a power of two (2 log2 P more fraction bits); otherwise (no fixed type holds
sum / P^2) its result type is the layer's precision from the config, default fixed<16,6> as in hls4ml,
rounded once by that type's mode (TRN) -- where Keras, dividing in floating point, differs (DESIGN
section 5). InputReduce thresholds are taken as Keras compares them: cast to the layer's dtype. Every op gets a `layer` attribute
naming its Keras layer, so traces line up with Keras layer outputs.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr

from frontends.config import LayerConfig, ModelConfig, apply_schedule
from frontends.values import Mask, Sparse
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedPointError, FixedType, quantize
from spx_ir.text import SpxError

SUPPORTED = (
    "InputLayer", "QActivation", "Activation", "InputReduce", "Conv2DSparse", "QConv2DSparse",
    "SparseActivation", "AveragePooling2DSparse", "MaxPooling2DSparse", "Flatten", "Dense", "QDense",
)
TABLE_ACTIVATIONS = ("sigmoid", "tanh", "softmax")


def quantizer_type(q, where: str) -> tuple[FixedType, bool]:
    """(fixed type, applies relu first) of a QKeras quantizer; unsupported settings are errors."""
    import qkeras

    if isinstance(q, str):
        q = qkeras.get_quantizer(q)
    name = type(q).__name__
    if getattr(q, "use_stochastic_rounding", False):
        raise SpxError(f"error: {where}: stochastic rounding in {name} is not supported")
    if name == "quantized_bits":
        if q.alpha not in (None, 1, 1.0) or getattr(q, "symmetric", 0):
            raise SpxError(f"error: {where}: quantized_bits needs alpha=1 and symmetric=0 (got alpha={q.alpha!r}, symmetric={q.symmetric!r})")
        bits, integer = int(q.bits), int(q.integer)
        signed = bool(q.keep_negative)
        return FixedType(bits, integer + (1 if signed else 0), signed, "RND_CONV", "SAT"), False
    if name == "quantized_relu":
        if getattr(q, "use_sigmoid", 0) or getattr(q, "negative_slope", 0) or getattr(q, "relu_upper_bound", None):
            raise SpxError(f"error: {where}: quantized_relu with use_sigmoid/negative_slope/relu_upper_bound is not supported")
        return FixedType(int(q.bits), int(q.integer), False, "RND_CONV", "SAT"), True
    raise SpxError(f"error: {where}: quantizer {name} is not supported; supported: quantized_bits, quantized_relu")


def _activation_name(act, where: str) -> str:
    name = act if isinstance(act, str) else getattr(act, "__name__", None)
    if name not in ("relu", "linear", "sigmoid", "tanh", "softmax"):
        raise SpxError(f"error: {where}: activation {name or act!r} is not supported; supported: relu, linear, sigmoid, tanh, softmax")
    return name


class _Lowering:
    def __init__(self, model, config):
        self.model = model
        self.config = ModelConfig(config)
        self.config.check_layer_names(layer.name for layer in model.layers)
        self.values: dict[int, object] = {}  # id(KerasTensor) -> SSA value | Sparse | Mask
        self.consumed: set[str] = set()  # QActivation layers folded into their producer
        self.builder: ModelBuilder | None = None

    # ---- helpers
    def cfg(self, layer) -> LayerConfig:
        return LayerConfig(self.config, layer.name, type(layer).__name__)

    def where(self, layer) -> str:
        return f"layer '{layer.name}' ({type(layer).__name__})"

    def default_t(self, layer) -> FixedType:
        return self.cfg(layer).precision("result", FixedType.parse("fixed<16,6>"))

    def inputs(self, layer) -> list:
        tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        return [self.values[id(t)] for t in tensors]

    def set_outputs(self, layer, *values) -> None:
        outs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        for t, v in zip(outs, values):
            self.values[id(t)] = v

    def consumers(self, layer) -> list:
        outs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        ids = {id(t) for t in outs}
        result = []
        for other in self.model.layers:
            ins = other.input if isinstance(other.input, (list, tuple)) else [other.input]
            if other is not layer and any(id(t) in ids for t in ins if other.built):
                result.append(other)
        return result

    def folded_quantizer(self, layer):
        """The QActivation that alone consumes `layer`'s (first) output, if any."""
        users = self.consumers(layer)
        if len(users) == 1 and type(users[0]).__name__ == "QActivation":
            return users[0]
        return None

    def tag(self, value, layer) -> None:
        owner = getattr(value, "owner", None) or getattr(getattr(value, "feat", None), "owner", None)
        if owner is not None:
            owner.attributes["layer"] = StringAttr(layer.name)
            apply_schedule(owner, self.cfg(layer))

    def weights(self, layer, quantizer, values: np.ndarray, kind: str) -> tuple[np.ndarray, FixedType]:
        """Raw integers + type of a kernel/bias: the quantizer's output (exact), or the config type."""
        where = self.where(layer)
        if not np.isfinite(values).all():
            raise SpxError(f"error: {where}: the {kind} contains NaN or Inf")
        if quantizer is not None:
            t, _ = quantizer_type(quantizer, f"{where} {kind}_quantizer")
            qv = np.asarray(quantizer(values.astype(np.float32)), dtype=np.float64)
            raw = qv * 2.0**t.frac_bits
            if not np.array_equal(raw, np.round(raw)):
                raise AssertionError(f"{where}: quantized {kind} is not on the grid of {t}")
            return raw.astype(np.int64), t
        t = self.cfg(layer).precision(kind, FixedType.parse("fixed<16,6>"))
        return quantize(values.astype(np.float64), t), t

    # ---- per layer
    def lower(self) -> ModuleOp:
        for layer in self.model.layers:
            if layer.name in self.consumed:
                continue
            kind = type(layer).__name__
            handler = getattr(self, f"_{kind}", None)
            if handler is None:
                raise SpxError(f"error: layer '{layer.name}' ({kind}) is not supported; supported: {', '.join(SUPPORTED)}")
            try:
                handler(layer)
            except FixedPointError as err:  # a type the layer's operands imply cannot be built
                raise SpxError(f"error: {self.where(layer)}: {err}") from None
        outs = self.model.outputs
        results = []
        for t in outs:
            v = self.values[id(t)]
            if isinstance(v, (Sparse, Mask)):
                raise SpxError("error: a model output must be a dense tensor (add Flatten and Dense layers)")
            results.append(v)
        return self.builder.finish(results)

    def _InputLayer(self, layer):
        shape = tuple(layer.output.shape[1:])
        if len(shape) != 3 or any(d is None for d in shape):
            raise SpxError(f"error: {self.where(layer)}: input must be a fixed H x W x C image, got {shape}")
        quant = self.folded_quantizer(layer)
        if quant is not None:
            t, _ = quantizer_type(quant.quantizer, self.where(quant))  # relu on input = unsigned SAT
            self.consumed.add(quant.name)
            alias = quant
        else:
            t, alias = self.cfg(layer).precision("result", FixedType.parse("fixed<16,6>")), None
        self.builder = ModelBuilder(self.model.name.replace("-", "_"), list(shape), t)
        self.set_outputs(layer, self.builder.input)
        if alias is not None:
            self.set_outputs(alias, self.builder.input)

    def _InputReduce(self, layer):
        (x,) = self.inputs(layer)
        h, w, _ = x.type.get_shape()
        # Keras compares with the threshold cast to the layer's dtype (float32 unless float64)
        threshold = float(np.asarray(layer.threshold, dtype=np.dtype(layer.compute_dtype or "float32")))
        feat, hash = self.builder.input_reduce(x, layer.n_max, threshold)
        self.tag(feat, layer)
        self.set_outputs(layer, Sparse(feat, hash, h, w), Mask(hash, h, w))

    def _sparse_pair(self, layer):
        ins = self.inputs(layer)
        if len(ins) != 2 or not isinstance(ins[0], Sparse) or not isinstance(ins[1], Mask):
            raise SpxError(f"error: {self.where(layer)}: expects [features, mask] from the sparse layers before it")
        return ins[0], ins[1]

    def _Conv2DSparse(self, layer):
        x, mask = self._sparse_pair(layer)
        fused = getattr(layer, "activation", None)
        if fused is not None and _activation_name(fused, self.where(layer)) != "linear":
            raise SpxError(f"error: {self.where(layer)}: a fused activation is not supported; use a separate activation layer")
        kernel = layer.kernel.numpy()
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1])
        w_raw, w_t = self.weights(layer, getattr(layer, "kernel_quantizer_internal", None), kernel, "weight")
        b_raw, b_t = self.weights(layer, getattr(layer, "bias_quantizer_internal", None), bias, "bias")
        b = self.builder
        in_t = x.feat.type.element_type.spec
        kh, kw, ci, _ = kernel.shape
        cfg = self.cfg(layer)
        acc_t = cfg.precision("accum")
        exact = exact_sum_type(in_t, w_t, b_t, conv_terms(x.feat.type.get_shape()[0], kh, kw, ci))
        out_t = cfg.explicit_result() or (exact if self._quantized(layer) else self.default_t(layer))
        y = b.sparse_conv2d(x.feat, mask.hash, b.const(w_raw, w_t), b.const(b_raw, b_t), out_t, acc_t)
        self.tag(y, layer)
        self.set_outputs(layer, Sparse(y, mask.hash, x.height, x.width))

    _QConv2DSparse = _Conv2DSparse

    def _quantized(self, layer) -> bool:
        return getattr(layer, "kernel_quantizer_internal", None) is not None

    def _activation(self, layer, x, name: str, out_t: FixedType | None, relu_first: bool):
        """Applies an activation to a dense value or sparse features."""
        in_t = (x.feat if isinstance(x, Sparse) else x).type.element_type.spec
        if out_t is None:
            out_t = self.cfg(layer).explicit_result() or (in_t if name in ("relu", "linear") else self.default_t(layer))
        if relu_first and name == "linear":
            name = "relu"
        b = self.builder
        if isinstance(x, Sparse):
            if name in TABLE_ACTIVATIONS and type(layer).__name__ != "SparseActivation":
                raise SpxError(f"error: {self.where(layer)}: {name} of sparse features must use SparseActivation (it keeps inactive pixels at 0)")
            y = b.sparse_activation(x.feat, x.hash, name, out_t)
            self.tag(y, layer)
            return Sparse(y, x.hash, x.height, x.width)
        y = b.activation(x, name, out_t)
        self.tag(y, layer)
        return y

    def _Activation(self, layer):
        ins = self.inputs(layer)
        self.set_outputs(layer, self._activation(layer, ins[0], _activation_name(layer.activation, self.where(layer)), None, False))

    def _QActivation(self, layer):
        (x,) = self.inputs(layer)
        act = layer.quantizer
        if isinstance(act, str) or hasattr(act, "bits"):
            t, relu = quantizer_type(act, self.where(layer))
            self.set_outputs(layer, self._activation(layer, x, "linear", t, relu))
        else:
            self.set_outputs(layer, self._activation(layer, x, _activation_name(act, self.where(layer)), None, False))

    def _SparseActivation(self, layer):
        x, mask = self._sparse_pair(layer)
        act = layer.activation
        if hasattr(act, "bits"):
            t, relu = quantizer_type(act, self.where(layer))
            self.set_outputs(layer, self._activation(layer, x, "linear", t, relu))
        else:
            self.set_outputs(layer, self._activation(layer, x, _activation_name(act, self.where(layer)), None, False))

    def _pool(self, layer, mode: str):
        x, mask = self._sparse_pair(layer)
        p = layer.pool_size[0] if isinstance(layer.pool_size, (tuple, list)) else layer.pool_size
        if isinstance(layer.pool_size, (tuple, list)) and layer.pool_size[0] != layer.pool_size[1]:
            raise SpxError(f"error: {self.where(layer)}: only square pools are supported, got pool_size={layer.pool_size}")
        in_t = x.feat.type.element_type.spec
        quant = self.folded_quantizer(layer)
        aliases = []
        if quant is not None:
            out_t, _ = quantizer_type(quant.quantizer, self.where(quant))  # relu is implied by unsigned SAT
            self.consumed.add(quant.name)
            aliases.append(quant)
        elif self.cfg(layer).explicit_result() is not None:
            out_t = self.cfg(layer).explicit_result()
        elif mode == "max":
            out_t = in_t
        elif p & (p - 1) == 0:  # dividing by 4**k is exact with 2k more fraction bits
            out_t = FixedType(in_t.width + 2 * (p.bit_length() - 1), in_t.int_bits, in_t.signed, in_t.quant, in_t.overflow)
        else:  # no fixed type holds sum / P^2 exactly: the layer precision, as hls4ml does
            out_t = self.default_t(layer)
        feat, hash = self.builder.sparse_pool2d(x.feat, mask.hash, p, mode, x.height, x.width, out_t)
        self.tag(feat, quant or layer)  # a folded quantizer's output is what this op computes
        h, w = x.height // p, x.width // p
        self.set_outputs(layer, Sparse(feat, hash, h, w), Mask(hash, h, w))
        for alias in aliases:
            self.set_outputs(alias, Sparse(feat, hash, h, w))

    def _AveragePooling2DSparse(self, layer):
        self._pool(layer, "avg")

    def _MaxPooling2DSparse(self, layer):
        self._pool(layer, "max")

    def _Flatten(self, layer):
        (x,) = self.inputs(layer)
        if not isinstance(x, Sparse):
            raise SpxError(f"error: {self.where(layer)}: only sparse features can be flattened")
        y = self.builder.sparse_flatten(x.feat, x.hash, x.height, x.width)
        self.tag(y, layer)
        self.set_outputs(layer, y)

    def _Dense(self, layer):
        (x,) = self.inputs(layer)
        if isinstance(x, (Sparse, Mask)) or len(x.type.get_shape()) != 1:
            raise SpxError(f"error: {self.where(layer)}: expects a flat vector (add a Flatten layer before it)")
        kernel = layer.kernel.numpy()
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1])
        w_raw, w_t = self.weights(layer, getattr(layer, "kernel_quantizer_internal", None), kernel, "weight")
        b_raw, b_t = self.weights(layer, getattr(layer, "bias_quantizer_internal", None), bias, "bias")
        in_t = x.type.element_type.spec
        cfg = self.cfg(layer)
        exact = exact_sum_type(in_t, w_t, b_t, kernel.shape[0])
        out_t = cfg.explicit_result() or (exact if self._quantized(layer) else self.default_t(layer))
        b = self.builder
        y = b.dense(x, b.const(w_raw, w_t), b.const(b_raw, b_t), out_t, cfg.precision("accum"))
        act = _activation_name(layer.activation, self.where(layer))
        self.tag(y, layer)
        if act != "linear":
            y.owner.attributes["layer"] = StringAttr(f"{layer.name}_linear")
            y = self._activation(layer, y, act, None, False)
        self.set_outputs(layer, y)

    _QDense = _Dense


def from_keras(model, config: dict | None = None) -> ModuleOp:
    """Lowers a Sequential or functional tf-keras model of spx sparse layers into a verified spx module."""
    from spx_ir.text import verify

    try:
        module = _Lowering(model, config).lower()
    except ValueError as err:  # config errors (ConfigError) and invalid settings
        raise SpxError(f"error: {err}") from None
    verify(module, f"model '{model.name}'")
    return module
