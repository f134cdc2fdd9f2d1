"""spx module -> XLS IR package: one XLS function per op (codegen/rtl/ops.py) and a top `spx_top`
that invokes them in dataflow order.

Ports of the top: `x` = the raw input image (element (h, w, c) at bits [((h*W+w)*C+c)*Win, ...)),
result = the concatenation of the returned values (first returned value in the low bits), each flat
row-major. Function names come from layer names through codegen.names (never raw model text).
Anything this target does not implement (an op, a property or a semantic-variant attribute) is
refused with one line naming the op: nothing is silently computed with other semantics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func

from codegen.names import unique_identifiers
from codegen.rtl import ops
from codegen.rtl.xlsir import Bits, Package
from spx_ir import dialect as spx
from spx_ir.accum import op_accum_type
from spx_ir.builder import model_function, model_input
from spx_ir.fixed import FixedPointError, FixedType, threshold_raw
from spx_ir.graph import layer_names, topological_ops
from spx_ir.text import SpxError

TOP = "spx_top"

# Properties each op may carry here; anything else (e.g. a semantic variant this target does not
# implement yet) is refused.
KNOWN_PROPERTIES = {
    "spx.const": {"value"},
    "spx.input_reduce": {"n_max", "threshold", "pixel_parallel", "activity", "search"},
    "spx.sparse_conv2d": {"accum_type", "pixel_parallel", "filter_parallel", "channel_parallel", "bias_mode"},
    "spx.sparse_activation": {"kind", "table_size", "pixel_parallel"},
    "spx.sparse_pool2d": {"size", "mode", "height", "width", "pixel_parallel", "channel_parallel", "inactive"},
    "spx.sparse_flatten": {"height", "width", "pixel_parallel"},
    "spx.dense": {"accum_type", "reuse_factor"},
    "spx.activation": {"kind", "table_size"},
    "spx.quantize": {"kif", "quant", "overflow"},
    "spx.sparse_quantize": {"kif", "quant", "overflow", "height", "width", "pixel_parallel"},
}
KNOWN_ATTRIBUTES = {"layer", "estimate"}

# What the schedule attributes mean for this target (README and `spx synth` print it).
SCHEDULE_NOTES = {
    "pixel_parallel": "XLS cannot express a partially unrolled slot loop in a function; fully parallel form used",
    "filter_parallel": "XLS cannot express a partially unrolled filter loop in a function; fully parallel form used",
    "channel_parallel": "XLS cannot express a partially unrolled channel loop in a function; fully parallel form used",
    "reuse_factor": "XLS cannot share multipliers across cycles in a pipelined function; fully parallel form used (II=1)",
    "search": "input_reduce's tree|stream structure is a Vitis kernel choice; the XLS function is one fully parallel search",
}


@dataclass
class OpFunction:
    layer: str
    name: str          # XLS function name (safe identifier)
    op_name: str       # spx op, e.g. spx.sparse_conv2d
    ignored: list[str] = field(default_factory=list)   # schedule attributes not honoured


@dataclass
class Lowered:
    ir: str
    input_shape: tuple
    input_t: FixedType
    input_bits: int
    outputs: list        # [(shape, FixedType)]
    output_bits: int
    functions: list      # [OpFunction]


def _elem(v) -> FixedType:
    return v.type.element_type.spec


def _hash_bits(v) -> int:
    return v.type.element_type.width.data


def _check_supported(op, layer: str) -> None:
    known = KNOWN_PROPERTIES.get(op.name)
    if known is None:
        raise SpxError(f"error: the rtl target does not support op '{op.name}' (layer {layer})")
    extra = sorted(set(op.properties) - known) + sorted(set(op.attributes) - KNOWN_ATTRIBUTES)
    if extra:
        raise SpxError(f"error: the rtl target does not implement attribute '{extra[0]}' of op "
                       f"'{op.name}' (layer {layer})")


def lower(module) -> Lowered:
    """The XLS IR text of the model (unoptimised) and its port layout."""
    try:
        return _lower(module)
    except FixedPointError as err:
        raise SpxError(f"error: rtl target: {err}") from None


def _lower(module) -> Lowered:
    fn_op = model_function(module)
    names = layer_names(module)
    order = [op for op in topological_ops(module) if op.name.startswith("spx.")]
    for op in order:
        _check_supported(op, names.get(op, op.name))
    compute = [op for op in order if op.name != "spx.const"]
    idents = unique_identifiers(names[op] for op in compute)
    pkg = Package("spx")
    consts = {op.result: op.raw() for op in order if isinstance(op, spx.ConstOp)}

    arg = model_input(fn_op)
    in_shape = tuple(arg.type.get_shape())
    in_t = _elem(arg)
    in_bits = math.prod(in_shape) * in_t.width
    top = pkg.function(TOP)
    values: dict = {arg: top.param(in_bits, "x")}
    functions = []

    for op, ident in zip(compute, idents):
        fn = pkg.function(f"op_{ident}")
        ignored = [a for a in SCHEDULE_NOTES if a in op.properties]
        functions.append(OpFunction(names[op], fn.name, op.name, ignored))
        args = [o for o in op.operands if o not in consts]
        params = [fn.param(values[a].width) for a in args]
        p = dict(zip(args, params))
        results = _lower_op(fn, op, p, consts)
        fn.returns(*results)
        if len(results) == 1:
            call = top.invoke(fn, [values[a] for a in args], f"bits[{results[0].width}]")
            values[op.results[0]] = Bits(call, results[0].width)
        else:
            tup = top.invoke(fn, [values[a] for a in args], fn.tuple_type([r.width for r in results]))
            for k, r in enumerate(results):
                values[op.results[k]] = top.tuple_index(tup, k, r.width)

    ret = fn_op.body.block.last_op
    assert isinstance(ret, func.ReturnOp)
    outs = [values[v] for v in ret.operands]
    top.returns(top.pack(outs) if len(outs) > 1 else outs[0])
    outputs = [(tuple(v.type.get_shape()), _elem(v) if isinstance(v.type.element_type, spx.FixedPointType) else None)
               for v in ret.operands]
    return Lowered(pkg.text(TOP), in_shape, in_t, in_bits, outputs, sum(o.width for o in outs), functions)


def _lower_op(fn, op, p, consts) -> list[Bits]:
    if isinstance(op, spx.InputReduceOp):
        in_t = _elem(op.image)
        thr = threshold_raw(op.threshold.value.data, in_t)  # the one rule (spx_ir.fixed)
        return list(ops.input_reduce(fn, p[op.image], tuple(op.image.type.get_shape()), in_t, thr,
                                     op.n_max.value.data, _elem(op.feat), _hash_bits(op.hash),
                                     spx.variant(op, "activity")))
    if isinstance(op, spx.SparseConv2DOp):
        n = op.feat.type.get_shape()[0]
        return [ops.sparse_conv2d(fn, p[op.feat], p[op.hash], n, _hash_bits(op.hash), _elem(op.feat),
                                  consts[op.weight], _elem(op.weight), consts[op.bias], _elem(op.bias),
                                  None if op.accum_type is None else op_accum_type(op), _elem(op.result),
                                  spx.variant(op, "bias_mode"))]
    if isinstance(op, spx.SparseActivationOp):
        n, c = op.feat.type.get_shape()
        size = op.table_size.value.data if op.table_size is not None else None
        return [ops.sparse_activation(fn, p[op.feat], p[op.hash], n, c, _hash_bits(op.hash), _elem(op.feat),
                                      op.kind.data, _elem(op.result), size)]
    if isinstance(op, spx.SparsePool2DOp):
        n, c = op.feat.type.get_shape()
        return list(ops.sparse_pool2d(fn, p[op.feat], p[op.hash], n, c, _hash_bits(op.hash), _elem(op.feat),
                                      op.size.value.data, op.mode.data, op.height.value.data,
                                      op.width.value.data, _elem(op.feat_out), _hash_bits(op.hash_out),
                                      spx.variant(op, "inactive")))
    if isinstance(op, spx.SparseFlattenOp):
        n, c = op.feat.type.get_shape()
        return [ops.sparse_flatten(fn, p[op.feat], p[op.hash], n, c, _hash_bits(op.hash), _elem(op.feat).width,
                                   op.height.value.data, op.width.value.data)]
    if isinstance(op, spx.DenseOp):
        return [ops.dense(fn, p[op.input], _elem(op.input), consts[op.weight], _elem(op.weight),
                          consts[op.bias], _elem(op.bias),
                          None if op.accum_type is None else op_accum_type(op), _elem(op.result))]
    if isinstance(op, spx.ActivationOp):
        size = op.table_size.value.data if op.table_size is not None else None
        return [ops.activation(fn, p[op.input], tuple(op.input.type.get_shape()), _elem(op.input),
                               op.kind.data, _elem(op.result), size)]
    if isinstance(op, spx.QuantizeOp):
        kif = np.array(op.kif.get_values(), dtype=np.int64).reshape(-1, 3)
        return [ops.quantize(fn, p[op.input], _elem(op.input), kif, op.quant.data, op.overflow.data,
                             _elem(op.result))]
    if isinstance(op, spx.SparseQuantizeOp):
        n, c = op.feat.type.get_shape()
        kif = np.array(op.kif.get_values(), dtype=np.int64).reshape(op.kif.type.get_shape())
        return [ops.sparse_quantize(fn, p[op.feat], p[op.hash], n, c, _hash_bits(op.hash), _elem(op.feat), kif,
                                    op.quant.data, op.overflow.data, _elem(op.result))]
    raise SpxError(f"error: the rtl target does not support op '{op.name}'")
