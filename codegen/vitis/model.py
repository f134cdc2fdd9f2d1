"""Model building of the `vitis` target: everything a project's C++ is made of, read off one verified
module (no text rendering here: codegen/vitis/render.py; no files: codegen/vitis/emit.py).

`Model(module)` walks the ops in program order and gives each value its array (a value read by
several layers is cloned so that every array has one reader), each weight/bias/table its raw-integer
array, and each op a `Layer`: the fields of its config struct (constants and typedefs, every field the
op's kernel reads: the kernels' config structs define none, so a missing field fails to compile) and
its kernel call. Schedule fields come from spx_ir.schedule, derived types from spx_ir (accum, fixed,
tables); conversions ap_fixed cannot compute are refused naming the layer.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from codegen.names import layer_identifiers, model_identifier
from spx_ir import dialect as spx
from spx_ir.accum import op_accum_type, pool_average
from spx_ir.builder import model_function, model_input
from spx_ir.fixed import INT64_WIDTH, FixedPointError, FixedType, check_assignable, product_type, sum_type, threshold_raw
from spx_ir.graph import layer_names, topological_ops
from spx_ir.schedule import schedule, search
from spx_ir.tables import (DEFAULT_SIZE, SIGMOID_RANGE, TANH_RANGE, center_raw, index_type, sigmoid_fn,
                           sigmoid_table, softmax_diff_type, softmax_tables, tanh_table)
from spx_ir.text import SpxError, print_module

@dataclass
class Array:
    """A C++ array of the top function: its name, element typedef and size."""
    name: str
    type: str
    size: int


@dataclass
class RawArray:
    """A constant array stored as raw integers (weights, biases, tables)."""
    name: str
    raw: np.ndarray
    spec: FixedType
    comment: str


@dataclass
class Layer:
    """One op: its config struct (constants and typedefs) and its kernel call."""
    index: int
    name: str
    op_name: str
    kernel: str = ""  # e.g. spx::sparse_conv2d
    base: str = ""  # the kernel's config struct with the field list, e.g. spx::sparse_conv2d_config
    constants: list[tuple[str, str, object]] = field(default_factory=list)  # (C++ type, name, value)
    types: list[tuple[str, str]] = field(default_factory=list)  # (name, C++ type)
    template: list[str] = field(default_factory=list)  # kernel template arguments before the config
    args: list[str] = field(default_factory=list)

    def call(self) -> str:
        template = ", ".join([*self.template, f"config{self.index}"])
        return f"{self.kernel}<{template}>({', '.join(self.args)});"


@dataclass
class Trace:
    """A layer output recorded by SPX_TRACE in C simulation (raw integers, in call order)."""
    key: str  # layer name, or layer name + ":hash"
    shape: tuple[int, ...]
    spec: FixedType | None  # None for hash arrays


class Model:
    """Everything the project files are made of, read off one verified module."""

    def __init__(self, module: ModuleOp):
        fn = model_function(module)
        self.name = top_function_name(module)
        self.ir_hash = hashlib.sha256(print_module(module).encode()).hexdigest()
        arg = model_input(fn)
        ret = fn.body.block.last_op
        self.input_shape = tuple(arg.type.get_shape())
        self.input_spec = _io_spec(arg, "input")
        self.typedefs: list[tuple[str, str, str]] = [("input_t", self.input_spec.cpp(), "model input")]
        self.consts: dict[SSAValue, RawArray] = {}
        self.tables: list[RawArray] = []
        self.layers: list[Layer] = []
        self.traces: list[Trace] = []
        self.trace_aliases: dict[str, str] = {}  # numpy-target trace keys of hashes a layer passes on
        self._trace_keys: dict[SSAValue, str] = {}
        self.body: list[str] = []  # statements of the top function
        self._arrays: dict[SSAValue, Array] = {}
        self._readers: dict[SSAValue, list[str]] = {}  # arrays not yet handed to a reader
        self._op_uses: dict[SSAValue, int] = {}
        for op in topological_ops(module):
            if not isinstance(op, (spx.ConstOp, func.ReturnOp)):
                for value in op.operands:
                    self._op_uses[value] = self._op_uses.get(value, 0) + 1
        self.returned = list(ret.operands)
        self.output_specs = [_io_spec(v, "output") for v in self.returned]  # refuse before building
        self.outputs = [self._output(m, v, len(ret.operands)) for m, v in enumerate(ret.operands)]

        self._pending: list[str] = []
        self._produce(arg, "x", "input_t")
        self.body.extend(self._pending)
        names, keys = layer_identifiers(module), layer_names(module)  # code and comments / trace keys
        for op in topological_ops(module):
            if not isinstance(op, (spx.ConstOp, func.ReturnOp)):
                self._layer(op, len(self.layers) + 1, names[op], keys[op])
        for value, out in zip(self.returned, self.outputs):
            if self._arrays[value].name != out.name:
                self.body.append(f"    spx::copy<{out.type}, {out.size}>({self._read(value)}, {out.name});")

    # ----------------------------------------------------------------------- values and arrays

    def _output(self, m: int, value: SSAValue, n_outputs: int) -> Array:
        if not isinstance(value.type.element_type, spx.FixedPointType) or isinstance(value.owner, spx.ConstOp):
            raise SpxError(f"error: vitis target: model output {m} ({value.type}) must be a computed "
                           "fixed-point tensor")
        suffix = "" if n_outputs == 1 else str(m)
        self.typedefs.append((f"result{suffix}_t", _spec(value).cpp(), f"model output {m}"))
        return Array(f"y{suffix}", f"result{suffix}_t", math.prod(value.type.get_shape()))

    def _produce(self, value: SSAValue, name: str, type_name: str) -> str:
        """Gives an op result (or the input) its array and returns the name to pass to its producer.

        A value only returned is written straight into its output port. Otherwise it gets a local
        array, cloned into one copy per reader when several layers (or outputs) read it."""
        size = math.prod(value.type.get_shape())
        ports = [out for v, out in zip(self.returned, self.outputs) if v == value]
        readers = self._op_uses.get(value, 0) + len(ports)
        if len(ports) == 1 and readers == 1 and name != "x":
            self._arrays[value] = Array(ports[0].name, type_name, size)
            self._readers[value] = []
            return ports[0].name
        self._arrays[value] = Array(name, type_name, size)
        if name != "x":
            self._declare(type_name, name, size)
        self._readers[value] = [name]
        if readers > 1:
            self._pending += self._clones(type_name, name, size, readers)
            self._readers[value] = [f"{name}_cpy{i}" for i in range(1, readers + 1)]
        return name

    def _clones(self, type_name: str, name: str, size: int, n: int) -> list[str]:
        """spx::clone calls turning `name` into n single-reader copies name_cpy1..name_cpyn."""
        lines, source = [], name
        for i in range(1, n):
            rest = f"{name}_cpy{n}" if i == n - 1 else f"{name}_rest{i}"
            lines += self._declaration(type_name, f"{name}_cpy{i}", size) + self._declaration(type_name, rest, size)
            lines.append(f"    spx::clone<{type_name}, {size}>({source}, {name}_cpy{i}, {rest});")
            source = rest
        return lines

    @staticmethod
    def _declaration(type_name: str, name: str, size: int) -> list[str]:
        return [f"    {type_name} {name}[{size}];", f"    #pragma HLS ARRAY_PARTITION variable={name} complete dim=0"]

    def _declare(self, type_name: str, name: str, size: int) -> None:
        self.body.extend(self._declaration(type_name, name, size))

    def _read(self, value: SSAValue) -> str:
        """The array one reader of `value` gets (each clone is handed out once)."""
        return self._readers[value].pop(0)

    def _typed(self, value: SSAValue, type_name: str, comment: str) -> str:
        elem = value.type.element_type
        cpp = _spec(value).cpp() if isinstance(elem, spx.FixedPointType) else f"ap_uint<{elem.width.data}>"
        self.typedefs.append((type_name, cpp, comment))
        return type_name

    def _feat_out(self, value: SSAValue) -> str:
        k = self._k
        return self._produce(value, f"layer{k}_out", self._typed(value, f"layer{k}_t", f"{self._layer_name} output"))

    def _hash_out(self, value: SSAValue) -> str:
        k = self._k
        return self._produce(value, f"layer{k}_hash", self._typed(value, f"hash{k}_t", f"{self._layer_name} hash"))

    def _const(self, value: SSAValue, role: str) -> str:
        """The raw-integer array of a weight or bias (named after its first user: w<k>, b<k>)."""
        if not isinstance(value.owner, spx.ConstOp):
            raise SpxError(f"error: vitis target: the {role} of {self._layer_name} must be an spx.const")
        if value not in self.consts:
            spec = _spec(value)
            name = f"{role[0]}{self._k}"
            self.consts[value] = RawArray(name, value.owner.raw(), spec,
                                          f"{self._layer_name} {role}: {spec.cpp()} {list(value.type.get_shape())}")
            self.typedefs.append((f"{name}_t", spec.cpp(), f"{self._layer_name} {role}"))
        return self.consts[value].name

    def _type(self, value: SSAValue) -> str:
        return self._arrays[value].type

    def _assigns(self, *pairs: tuple[FixedType, FixedType]) -> None:
        """Refuses (src, dst) assignments that abort ap_fixed's C simulation (spx_ir.fixed's rule:
        a rounding assignment dropping more fraction bits than the source is wide)."""
        for src, dst in pairs:
            try:
                check_assignable(src, dst)
            except FixedPointError as err:
                raise SpxError(f"error: vitis target: {self._layer_name}: {err}") from None

    def _accumulation(self, op, x: SSAValue) -> None:
        """The conversions of `acc = b; acc += x * w; y = acc` (sparse_conv2d, dense)."""
        try:
            acc_t, prod_t = op_accum_type(op), product_type(_spec(x), _spec(op.weight))
            step_t = sum_type(acc_t, prod_t)
        except FixedPointError as err:
            raise SpxError(f"error: vitis target: {self._layer_name}: {err}") from None
        self._assigns((_spec(op.bias), acc_t), (step_t, acc_t), (acc_t, _spec(op.results[0])))

    # ----------------------------------------------------------------------------------- layers

    def _layer(self, op, k: int, name: str, key: str) -> None:
        """name: the layer's safe identifier (in generated code); key: its IR name (trace keys, Python only)."""
        handler = {
            spx.InputReduceOp: self._input_reduce, spx.SparseConv2DOp: self._sparse_conv2d,
            spx.SparseActivationOp: self._sparse_activation, spx.SparsePool2DOp: self._sparse_pool2d,
            spx.SparseFlattenOp: self._sparse_flatten, spx.DenseOp: self._dense, spx.ActivationOp: self._activation,
            spx.QuantizeOp: self._quantize, spx.SparseQuantizeOp: self._quantize,
        }.get(type(op))
        if handler is None:
            raise SpxError(f"error: the vitis target does not support op '{op.name}'")
        self._k, self._layer_name, self._pending = k, name, []
        self.body.append(f"\n    // {name}: {op.name}")
        layer = handler(op, Layer(k, name, op.name))
        self.layers.append(layer)
        self.body.append(f"    {layer.call()}")
        for value, trace_key in _traced_results(op, key):
            self.body.append(f"    SPX_TRACE({self._arrays[value].name}, {math.prod(value.type.get_shape())});")
            spec = None if trace_key.endswith(":hash") else _spec(value)
            self.traces.append(Trace(trace_key, tuple(value.type.get_shape()), spec))
            self._trace_keys[value] = trace_key
        if isinstance(op, (spx.SparseConv2DOp, spx.SparseActivationOp, spx.SparseQuantizeOp)) and op.hash in self._trace_keys:
            self.trace_aliases[f"{key}:hash"] = self._trace_keys[op.hash]
        self.body.extend(self._pending)

    def _input_reduce(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        h, w, c = op.image.type.get_shape()
        n = op.n_max.value.data
        threshold = threshold_raw(op.threshold.value.data, _spec(op.image))
        layer.kernel, layer.base = f"spx::input_reduce_{search(op)}", "spx::input_reduce_config"
        layer.constants = [("unsigned", "height", h), ("unsigned", "width", w), ("unsigned", "n_chan", c),
                           ("unsigned", "n_max", n), ("long long", "threshold_raw", f"{threshold}LL"),
                           ("unsigned", "pixel_parallel", sched["pixel_parallel"]),
                           ("bool", "channel0_only", _cpp_bool(spx.variant(op, "activity") == "channel0"))]
        self._assigns((_spec(op.image), _spec(op.feat)))
        layer.args = [self._read(op.image), self._feat_out(op.feat), self._hash_out(op.hash)]
        layer.template = [self._type(op.image), self._type(op.feat), self._type(op.hash)]
        return layer

    def _sparse_conv2d(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        n, ci = op.feat.type.get_shape()
        kh, kw, _, co = op.weight.type.get_shape()
        layer.kernel, layer.base = "spx::sparse_conv2d", "spx::sparse_conv2d_config"
        layer.constants = [("unsigned", "n_max", n), ("unsigned", "n_chan", ci), ("unsigned", "n_filt", co),
                           ("unsigned", "filt_height", kh), ("unsigned", "filt_width", kw),
                           ("unsigned", "pixel_parallel", sched["pixel_parallel"]),
                           ("unsigned", "filter_parallel", sched["filter_parallel"]),
                           ("unsigned", "channel_parallel", sched["channel_parallel"]),
                           ("bool", "bias_nonzero", _cpp_bool(spx.variant(op, "bias_mode") == "nonzero"))]
        self._accumulation(op, op.feat)
        w, b = self._const(op.weight, "weight"), self._const(op.bias, "bias")
        layer.types = [("weight_t", f"{w}_t"), ("bias_t", f"{b}_t"), ("accum_t", op_accum_type(op).cpp())]
        layer.args = [self._read(op.feat), self._read(op.hash), self._feat_out(op.result), w, b]
        layer.template = [self._type(op.feat), self._type(op.hash), self._type(op.result)]
        return layer

    def _table(self, op, in_value: SSAValue, out_value: SSAValue) -> tuple[list, str]:
        """Sigmoid / tanh: the config constants and the table (raw integers of the result type)."""
        kind = op.kind.data
        size = op.table_size.value.data if op.table_size is not None else DEFAULT_SIZE
        build, half, fn = ((sigmoid_table, SIGMOID_RANGE, sigmoid_fn) if kind == "sigmoid"
                           else (tanh_table, TANH_RANGE, np.tanh))
        out_t = _spec(out_value)
        table = RawArray(f"table{self._k}", build(_spec(in_value), out_t, size), out_t,
                         f"{self._layer_name}: {kind} table, {size} entries of {out_t.cpp()}")
        self.tables.append(table)
        zero = center_raw(fn, out_t)
        return [("unsigned", "table_size", size), ("int", "half_range", half),
                ("long long", "zero_raw", f"{zero}LL")], table.name, [("index_t", index_type(half, size).cpp())]

    def _sparse_activation(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        n, c = op.feat.type.get_shape()
        kind = op.kind.data
        layer.kernel = {"relu": "spx::sparse_relu", "linear": "spx::sparse_linear"}.get(
            kind, "spx::sparse_table_activation")
        layer.base = "spx::sparse_activation_config"
        layer.constants = [("unsigned", "n_max", n), ("unsigned", "n_chan", c),
                           ("unsigned", "pixel_parallel", sched["pixel_parallel"])]
        tables = []
        if kind in ("sigmoid", "tanh"):
            constants, table, types = self._table(op, op.feat, op.result)
            layer.constants += constants
            layer.types += types
            tables.append(table)
        else:
            self._assigns((_spec(op.feat), _spec(op.result)))
        layer.args = [self._read(op.feat), self._read(op.hash), self._feat_out(op.result), *tables]
        layer.template = [self._type(op.feat), self._type(op.hash), self._type(op.result)]
        return layer

    def _sparse_pool2d(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        n, c = op.feat.type.get_shape()
        p = op.size.value.data
        in_t, out_t = _spec(op.feat), _spec(op.feat_out)
        avg = pool_average(in_t, out_t, p)  # the exact member sum, the division's constants
        layer.kernel, layer.base = "spx::sparse_pool2d", "spx::sparse_pool2d_config"
        layer.constants = [("unsigned", "n_max", n), ("unsigned", "n_chan", c), ("unsigned", "size", p),
                           ("unsigned", "height", op.height.value.data), ("unsigned", "width", op.width.value.data),
                           ("spx::pool_mode", "mode", f"spx::pool_{op.mode.data}"),
                           ("unsigned", "pixel_parallel", sched["pixel_parallel"]),
                           ("unsigned", "channel_parallel", sched["channel_parallel"]),
                           ("bool", "inactive_zero", _cpp_bool(spx.variant(op, "inactive") == "zero"))]
        if op.mode.data == "avg":
            need = max(avg.wide_t.width, avg.n_max.bit_length() + 1, avg.den.bit_length() + 1, avg.mult.bit_length())
            if need > INT64_WIDTH:
                raise SpxError(f"error: vitis target: {self._layer_name}: average pooling of {in_t} into {out_t} "
                               f"needs {need}-bit integer arithmetic; the C++ kernel computes in 64 bits "
                               "(narrow the types)")
            layer.constants += [("unsigned", "num_shift", avg.num_shift), ("unsigned", "den_pow2", avg.den_pow2),
                                ("unsigned", "recip_shift", avg.shift),
                                ("unsigned", "num_bits", max(avg.n_max.bit_length(), 1)),
                                ("unsigned", "mult_bits", avg.mult.bit_length()),
                                ("unsigned long long", "den", f"{avg.den}ULL"),
                                ("unsigned long long", "recip_mult", f"{avg.mult}ULL"),
                                ("long long", "offset", f"{avg.offset}LL"),
                                ("long long", "offset_q", f"{avg.offset // avg.den}LL")]
        self._assigns((avg.wide_t, out_t) if op.mode.data == "avg" else (in_t, out_t))
        layer.types = [("sum_t", avg.sum_t.cpp()), ("wide_t", avg.wide_t.cpp())]
        layer.args = [self._read(op.feat), self._read(op.hash), self._feat_out(op.feat_out),
                      self._hash_out(op.hash_out)]
        layer.template = [self._type(op.feat), self._type(op.hash), self._type(op.feat_out), self._type(op.hash_out)]
        return layer

    def _sparse_flatten(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        n, c = op.feat.type.get_shape()
        layer.kernel, layer.base = "spx::sparse_flatten", "spx::sparse_flatten_config"
        layer.constants = [("unsigned", "n_max", n), ("unsigned", "n_chan", c),
                           ("unsigned", "height", op.height.value.data), ("unsigned", "width", op.width.value.data),
                           ("unsigned", "pixel_parallel", sched["pixel_parallel"])]
        layer.args = [self._read(op.feat), self._read(op.hash), self._feat_out(op.result)]
        layer.template = [self._type(op.feat), self._type(op.hash), self._type(op.result)]
        return layer

    def _dense(self, op, layer: Layer) -> Layer:
        sched = schedule(op)
        n_in, n_out = op.weight.type.get_shape()
        layer.kernel, layer.base = "spx::dense", "spx::dense_config"
        layer.constants = [("unsigned", "n_in", n_in), ("unsigned", "n_out", n_out),
                           ("unsigned", "reuse_factor", sched["reuse_factor"]),
                           ("unsigned", "block_factor", "n_in * n_out / reuse_factor")]
        self._accumulation(op, op.input)
        w, b = self._const(op.weight, "weight"), self._const(op.bias, "bias")
        layer.types = [("weight_t", f"{w}_t"), ("bias_t", f"{b}_t"), ("accum_t", op_accum_type(op).cpp())]
        layer.args = [self._read(op.input), self._feat_out(op.result), w, b]
        layer.template = [self._type(op.input), self._type(op.result)]
        return layer

    def _quantize(self, op, layer: Layer) -> Layer:
        """spx.quantize / spx.sparse_quantize: the (k, i, f) table becomes a raw int16 array."""
        kif = np.array(op.kif.get_values(), dtype=np.int64)
        table = RawArray(f"kif_table{self._k}", kif, FixedType(16, 16),
                         f"{self._layer_name}: (k, i, f) per element, {kif.size // 3} entries")
        self.tables.append(table)
        ovf = {"WRAP": "spx::kif_wrap", "SAT": "spx::kif_sat", "SAT_SYM": "spx::kif_sat_sym"}[op.overflow.data]
        layer.base = "spx::quantize_config"
        layer.constants = [("ap_q_mode", "quant", f"AP_{op.quant.data}"), ("spx::kif_overflow", "overflow", ovf)]
        if isinstance(op, spx.QuantizeOp):
            layer.kernel = "spx::quantize"
            layer.constants.append(("unsigned", "n_in", math.prod(op.input.type.get_shape())))
            layer.args = [self._read(op.input), self._feat_out(op.result), table.name]
            layer.template = [self._type(op.input), self._type(op.result)]
            return layer
        n, c = op.feat.type.get_shape()
        layer.kernel = "spx::sparse_quantize"
        layer.constants += [("unsigned", "n_max", n), ("unsigned", "n_chan", c),
                            ("unsigned", "height", op.height.value.data), ("unsigned", "width", op.width.value.data),
                            ("unsigned", "pixel_parallel", schedule(op)["pixel_parallel"])]
        layer.args = [self._read(op.feat), self._read(op.hash), self._feat_out(op.result), table.name]
        layer.template = [self._type(op.feat), self._type(op.hash), self._type(op.result)]
        return layer

    def _activation(self, op, layer: Layer) -> Layer:
        n = math.prod(op.input.type.get_shape())
        kind = op.kind.data
        layer.kernel = {"relu": "spx::relu", "linear": "spx::linear", "softmax": "spx::softmax"}.get(
            kind, "spx::table_activation")
        layer.base = "spx::softmax_config" if kind == "softmax" else "spx::activation_config"
        layer.constants = [("unsigned", "n_in", n)]
        tables = []
        if kind in ("relu", "linear"):
            self._assigns((_spec(op.input), _spec(op.result)))
        elif kind in ("sigmoid", "tanh"):
            constants, table, types = self._table(op, op.input, op.result)
            layer.constants += constants
            layer.types += types
            tables.append(table)
        else:
            size = op.table_size.value.data if op.table_size is not None else None
            t = softmax_tables(_spec(op.input), n, table_size=size)
            self._assigns((t.prod_t, _spec(op.result)))
            layer.constants += [("unsigned", "exp_size", t.exp_size), ("unsigned", "inv_size", t.inv_size),
                                ("int", "exp_range", t.exp_range), ("unsigned", "kmax", t.kmax),
                                ("long long", "out_min_raw", f"{_spec(op.result).min_raw}LL")]
            layer.types = [("exp_t", t.exp_t.cpp()), ("inv_t", t.inv_t.cpp()), ("prod_t", t.prod_t.cpp()),
                           ("diff_t", softmax_diff_type(_spec(op.input)).cpp()),
                           ("index_t", index_type(t.exp_range, t.exp_size, signed=False).cpp())]
            for what, raw, spec in (("exp", t.exp_table, t.exp_t), ("inv", t.inv_table, t.inv_t)):
                table = RawArray(f"{what}_table{self._k}", raw, spec,
                                 f"{self._layer_name}: softmax {what} table, {len(raw)} entries of {spec.cpp()}")
                self.tables.append(table)
                tables.append(table.name)
        layer.args = [self._read(op.input), self._feat_out(op.result), *tables]
        layer.template = [self._type(op.input), self._type(op.result)]
        return layer


def _io_spec(value: SSAValue, what: str) -> FixedType:
    """The type of a model input or output: raws cross the C++ interface as 64-bit integers."""
    t = _spec(value)
    if t.width > INT64_WIDTH:
        raise SpxError(f"error: vitis target: the model {what} type {t} is wider than {INT64_WIDTH} bits "
                       "(inputs and outputs are exchanged as 64-bit raw integers)")
    return t


def _spec(value: SSAValue) -> FixedType:
    return value.type.element_type.spec


def _cpp_bool(value: bool) -> str:
    return "true" if value else "false"


def _traced_results(op, name: str):
    """(value, trace key) of an op's results, in the numpy target's trace layout."""
    if isinstance(op, spx.InputReduceOp):
        return [(op.feat, name), (op.hash, name + ":hash")]
    if isinstance(op, spx.SparsePool2DOp):
        return [(op.feat_out, name), (op.hash_out, name + ":hash")]
    return [(op.results[0], name)]


# global names of the generated code (typedefs, configs, constants, sizes; spx_* in the bridge)
_GENERATED = re.compile(r"(layer|hash|w|b)\d+_t|config\d+|(exp_|inv_)?table\d+|[wb]\d+|input_t|result\d*_t"
                        r"|N_INPUT|N_OUTPUT\d*|spx_\w*|read_event|x|y\d*|layer\d+_\w+")


def top_function_name(module: ModuleOp) -> str:
    """The C++ top function (and file stem): the model's safe identifier (codegen.names), prefixed
    with `model_` when it would clash with a name the generated code declares."""
    name = model_identifier(module)
    return f"model_{name}" if _GENERATED.fullmatch(name) else name

