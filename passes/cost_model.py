"""Cost model: latency, II and FPGA resources of each spx op and of the whole model.

Every figure here is an ESTIMATE (labelled SOURCE = `estimate (vitis cost model)` wherever it is
shown) of the C++ the vitis target EMITS: each formula follows the structure stated in the opening comment of that op's
kernel header (codegen/vitis/include/spx/), under the op's schedule as spx_ir.schedule reads it (the
same rule the emitter and spx-unroll use: an absent knob means its default there). Constants were
calibrated on the published SparsePixels neutrino designs (shared/calibration/neutrino.csv: Vitis
HLS 2023.1 csynth latency/II/DSP, Vivado post-synthesis LUT/FF, xcu250, 5 ns clock);
`bench/cost_model_calibration.py` prints the errors, in-sample and leave-one-out (refit on 7
configurations, predict the 8th). T = clock period (ns), cyc(x) = ceil(x / T):

  input_reduce   tree (default): n_max/pp pipelined iterations of pp chained balanced trees of depth
                 ceil(log2(H*W)): latency = II = (N/pp) * cyc(pp * depth * T_LEVEL) + 2;
                 LUT = pp * K_IR_LUT * H*W*C*w_in, FF = K_IR_FF * H*W*C*w_in.
                 stream: one pixel per clock: latency = II = H*W + 2; LUT = an H*W-way input mux
                 (K_MUX_LUT per input bit) + n_max slot decoders of the slot's bits.
  sparse_conv2d  one output group = 2 + cyc(N*Ci * step) cycles, a chain of N*Ci select-multiply-add
                 steps of step = T_CHAIN + T_CHAIN_BIT * w_in ns (N*(Ci/cp) * cyc(cp*step) if the
                 channel loop is rolled); latency = II = (N/pp)*(Co/fp) groups. pp*fp*N*cp multipliers,
                 each with a Kh*Kw-way weight selection from the completely partitioned weights (a LUT
                 ROM of ceil(Kh*Kw/64) LUTs per bit) and an adder of the accumulator width, + a hash
                 compare per pair.
  sparse_pool2d  latency = II = (N/pp)*(C/cp) * (2 + cyc(N * step)); avg: per slot and channel the emitted
                 reciprocal multiply (spx_ir.accum.pool_average: none when P^2 * 2^k, else n_bits x
                 mult_bits) + offset/remainder/rounding adders; LUT per slot pair: coordinate compare +
                 C masked adds.
  sparse_flatten latency = II = 2 + (N/pp) * cyc(pp * T_SCATTER) (a chain of slot writes);
                 LUT = K_FLAT_LUT * output bits.
  dense          reuse R: latency = R - 1 + round(log2(n_in) * T_TREE / T), II = R. With R = 1 the
                 weights are constants: 0 and +-2^k cost no multiplier, others a DSP (wide) or
                 shift-and-add LUTs; with R > 1, n_in*n_out/R general multipliers and a weight ROM.
  activations    relu/linear 0 cycles (LUTs for rounding/saturation); sigmoid/tanh 2 cycles, one read
                 of the completely partitioned table per element (a LUT ROM each); softmax 4 cycles,
                 n_in exp-table LUT ROMs, one inverse-table read, n_in exact-width multipliers; II 1.
                 sparse_activation: (N/pp) iterations of that body, channels unrolled.
  rolled loops   k > 1 sequential iterations of a b-cycle body take k * max(1, b) cycles.
  model          a DATAFLOW region: latency = longest path of (op latency, + 1 handoff cycle if > 0)
                 - 1; II = slowest op II + 1; resources = sum over ops + channels (every value passed
                 between ops: LUT = bits, FF = K_GLUE_FF * bits).
A multiplier of a x b bits takes ceil(max/27)*ceil(min/18) DSP48 when both exceed 10 bits, else
K_MUL_LUT*a*b LUTs. Not modelled: routing, timing closure, HLS's own resource sharing; the published
designs accumulated narrowly where spx accumulates exactly, so spx's real LUTs can differ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from spx_ir import dialect as spx
from spx_ir.accum import op_accum_type, pool_average
from spx_ir.tables import softmax_tables
from spx_ir.fixed import FixedType
from spx_ir.graph import layer_names, dataflow_graph, topological_ops
from spx_ir.schedule import divisors, knobs, schedule, search  # noqa: F401  (re-exported)

CLOCK_NS = 5.0
SOURCE = "estimate (vitis cost model)"  # names the design estimated: the Vitis HLS project spx emits
T_LEVEL = 1.6  # ns: one level of input_reduce's priority tree (3 per 5 ns cycle)
T_CHAIN, T_CHAIN_BIT = 1.25, 0.044  # ns: one chained select-multiply-add step (conv, pool) + per operand bit
T_SCATTER = 1.25  # ns: one chained slot write of sparse_flatten
T_TREE = 3.0  # ns: one level of dense's adder tree
K_IR_LUT, K_IR_FF = 3.41, 1.47  # per input pixel bit (Vivado: ~98k LUT at 8 bit, ~217k at 16 bit)
K_MUL_LUT = 0.91  # LUTs per bit product of a LUT multiplier
K_MUX_LUT = 1 / 3  # LUTs per input bit of a wide multiplexer (4:1 per LUT6)
K_FLAT_LUT = 2.5  # LUTs per output bit of sparse_flatten
K_DENSE_FF = 0.3  # FFs per product bit of dense
K_POOL_FF = 0.35  # FFs per slot pair and channel bit of sparse_pool2d
K_GLUE_FF = 1.54  # FFs per bit of a dataflow channel
TABLE_LATENCY = {"relu": 0, "linear": 0, "sigmoid": 2, "tanh": 2, "softmax": 4}
BRAM18_BITS = 18432
RESOURCES = ("dsp", "lut", "ff", "bram")


@dataclass(frozen=True)
class Cost:
    """Estimated latency (cycles), initiation interval (cycles) and resources of an op or model."""

    latency: int = 0
    ii: int = 1
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FREE = Cost(0, 1)

# ------------------------------------------------------------------------------ schedules
# knobs / schedule / divisors: spx_ir.schedule (one rule for the emitter, this model and spx-unroll)


def is_compute(op: Operation) -> bool:
    """Ops that become hardware stages (spx ops other than constants)."""
    return op.name.startswith("spx.") and not isinstance(op, spx.ConstOp)


def op_labels(module: ModuleOp) -> dict[Operation, str]:
    """Layer names of the compute ops (the rule of `spx_ir.graph.layer_names`)."""
    return {op: name for op, name in layer_names(module).items() if is_compute(op)}


# ------------------------------------------------------------------------------ building blocks


def element_type(value) -> FixedType:
    """The fixed-point element type of a tensor value."""
    return value.type.element_type.spec


def value_bits(value) -> int:
    """Bits of a whole tensor value (fixed-point or hash elements)."""
    elem = value.type.element_type
    width = elem.spec.width if isinstance(elem, spx.FixedPointType) else elem.width.data
    return math.prod(value.type.get_shape()) * width


def _cyc(ns: float, clock: float) -> int:
    return max(0, math.ceil(ns / clock - 1e-9))


def _rolled(iterations: int, body: int) -> int:
    """Cycles of a loop run in `iterations` sequential iterations of `body` cycles each."""
    return body if iterations == 1 else iterations * max(1, body)


def mult_cost(a: int, b: int) -> tuple[int, int]:
    """(DSP, LUT) of an a x b bit multiplier."""
    lo, hi = sorted((a, b))
    if lo > 10:
        return math.ceil(hi / 27) * math.ceil(lo / 18), 0
    return 0, math.ceil(K_MUL_LUT * a * b)


def _csd_digits(v: int) -> int:
    """Non-zero digits of v in canonical signed-digit form (adders of a constant multiply + 1)."""
    v, digits = abs(int(v)), 0
    while v:
        if v & 1:
            digits += 1
            v = v + 1 if v & 2 else v - 1
        v >>= 1
    return digits


def _const_mult_cost(raw: int, w_bits: int, x_bits: int) -> tuple[int, int]:
    """(DSP, LUT) of x times the constant raw: free for 0 and +-2^k, else DSP or shift-and-add."""
    digits = _csd_digits(raw)
    if digits <= 1:
        return 0, 0
    dsp, _ = mult_cost(x_bits, w_bits)
    return (dsp, 0) if dsp else (0, (digits - 1) * x_bits)


def convert_lut(src: FixedType, dst: FixedType) -> int:
    """LUTs of an assignment src -> dst: a rounding incrementer and a saturation clamp when needed."""
    lut = 0
    if dst.quant != "TRN" and src.frac_bits > dst.frac_bits:
        lut += dst.width
    if dst.overflow != "WRAP" and (src.int_bits > dst.int_bits or src.signed > dst.signed):
        lut += dst.width + math.ceil(max(src.int_bits - dst.int_bits, 1) / 6)
    return lut


def _lut_rom(entries: int, width: int) -> int:
    """LUTs of one read port of a completely partitioned constant table: 64-entry LUT6 ROMs per bit
    and a mux of their outputs."""
    roms = math.ceil(entries / 64)
    return width * (roms + math.ceil((roms - 1) / 3))


def _table_bram(entries: int, width: int, lookups: int) -> int:
    """BRAM18 of a table read `lookups` times per cycle (2 ports each); small tables go to LUTs."""
    bits = entries * width
    return 0 if bits <= 4096 else math.ceil(bits / BRAM18_BITS) * math.ceil(lookups / 2)


# ------------------------------------------------------------------------------ per-op formulas


def _input_reduce(op: spx.InputReduceOp, s: Mapping[str, int], clock: float) -> Cost:
    h, w, c = op.image.type.get_shape()
    n, pp = op.n_max.value.data, s["pixel_parallel"]
    pixel_bits = h * w * c * element_type(op.image).width
    if search(op) == "stream":  # raster scan: one pixel per clock, an H*W-way input mux, slot decoders
        latency = h * w + 2
        slot_bits = c * element_type(op.feat).width + 2 * op.hash.type.element_type.width.data
        lut = round(K_MUX_LUT * pixel_bits) + n * slot_bits + c * element_type(op.image).width
        return Cost(latency, latency, 0, lut, n * slot_bits + 2 * op.hash.type.element_type.width.data, 0)
    # n_max / pp pipelined iterations of pp chained trees of depth ceil(log2(H*W))
    latency = (n // pp) * _cyc(pp * math.ceil(math.log2(h * w)) * T_LEVEL, clock) + 2
    return Cost(latency, latency, 0, round(pp * K_IR_LUT * pixel_bits), round(K_IR_FF * pixel_bits) + value_bits(op.feat), 0)


def _sparse_conv2d(op: spx.SparseConv2DOp, s: Mapping[str, int], clock: float) -> Cost:
    n, ci = op.feat.type.get_shape()
    kh, kw, _, co = op.weight.type.get_shape()
    pp, fp, cp = s["pixel_parallel"], s["filter_parallel"], s["channel_parallel"]
    x_t, w_t, acc_t, out_t = element_type(op.feat), element_type(op.weight), op_accum_type(op), element_type(op.result)
    dsp1, lut1 = mult_cost(x_t.width, w_t.width)
    step = T_CHAIN + T_CHAIN_BIT * x_t.width
    chain = _cyc(n * ci * step, clock) if cp == ci else n * (ci // cp) * max(1, _cyc(cp * step, clock))
    latency = _rolled((n // pp) * (co // fp), 2 + chain)
    mults = pp * fp * n * cp
    rom = w_t.width * math.ceil(kh * kw / 64)
    hash_bits = op.hash.type.element_type.width.data
    lut = mults * (lut1 + rom + acc_t.width) + pp * n * 4 * hash_bits + pp * fp * convert_lut(acc_t, out_t)
    ff = mults * (x_t.width + w_t.width) + value_bits(op.result)
    return Cost(latency, latency, mults * dsp1, lut, ff, 0)


def _sparse_activation(op: spx.SparseActivationOp, s: Mapping[str, int], clock: float) -> Cost:
    n, c = op.feat.type.get_shape()
    pp, kind = s["pixel_parallel"], op.kind.data
    latency = _rolled(n // pp, TABLE_LATENCY[kind])
    in_t, out_t = element_type(op.feat), element_type(op.result)
    table = kind in ("sigmoid", "tanh")
    size = op.table_size.value.data if op.table_size is not None else 1024
    lut = pp * c * (in_t.width + _lut_rom(size, out_t.width) if table else convert_lut(in_t, out_t))
    return Cost(latency, max(1, latency) if pp < n else 1, 0, lut, value_bits(op.result), 0)


def _sparse_pool2d(op: spx.SparsePool2DOp, s: Mapping[str, int], clock: float) -> Cost:
    n, c = op.feat.type.get_shape()
    pp, cp, p = s["pixel_parallel"], s["channel_parallel"], op.size.value.data
    in_t, out_t = element_type(op.feat), element_type(op.feat_out)
    dsp1 = lut1 = 0
    if op.mode.data == "avg":  # shift + the emitted reciprocal multiply (none for powers of two)
        avg = pool_average(in_t, out_t, p)
        if avg.den_odd > 1:
            dsp1, lut1 = mult_cost(avg.n_max.bit_length(), avg.mult.bit_length())
        lut1 += 2 * avg.n_max.bit_length()  # offset add, remainder and rounding compare
    latency = _rolled((n // pp) * (c // cp), 2 + _cyc(n * (T_CHAIN + T_CHAIN_BIT * in_t.width), clock))
    hash_bits = op.hash.type.element_type.width.data
    lut = pp * n * (2 * hash_bits + cp * in_t.width) + pp * cp * (lut1 + convert_lut(in_t, out_t))
    ff = round(K_POOL_FF * pp * n * cp * in_t.width) + value_bits(op.feat_out)
    return Cost(latency, latency, pp * cp * dsp1, lut, ff, 0)


def _sparse_flatten(op: spx.SparseFlattenOp, s: Mapping[str, int], clock: float) -> Cost:
    n, pp = op.feat.type.get_shape()[0], s["pixel_parallel"]
    latency = 2 + (n // pp) * max(1, _cyc(pp * T_SCATTER, clock))
    out_bits = value_bits(op.result)
    return Cost(latency, latency, 0, round(K_FLAT_LUT * out_bits), out_bits, 0)


def _dense(op: spx.DenseOp, s: Mapping[str, int], clock: float) -> Cost:
    n_in, n_out = op.weight.type.get_shape()
    r = s["reuse_factor"]
    x_t, w_t, acc_t, out_t = element_type(op.input), element_type(op.weight), op_accum_type(op), element_type(op.result)
    latency = r - 1 + max(1, round(math.log2(max(n_in, 2)) * T_TREE / clock))
    if r == 1 and isinstance(op.weight.owner, spx.ConstOp):  # each product costs what its constant costs
        dsp = lut = terms = 0
        for raw, k in Counter(op.weight.owner.value.get_values()).items():  # equal constants cost alike
            if raw:  # plus one adder-tree input of the product's width + 2 (most tree adders are low)
                d, l = _const_mult_cost(raw, w_t.width, x_t.width)
                dsp, lut, terms = dsp + k * d, lut + k * (l + x_t.width + abs(raw).bit_length() + 2), terms + k
        bram = 0
    else:  # weights from a ROM (or an operand): n_in*n_out/R general multipliers
        terms = n_in * n_out // r
        dsp1, lut1 = mult_cost(x_t.width, w_t.width)
        dsp, lut = terms * dsp1, terms * (lut1 + x_t.width + w_t.width + 2)
        bram = math.ceil(terms * w_t.width / 36) * math.ceil(r / 512) if r >= 64 else 0
        lut += 0 if bram else terms * w_t.width * math.ceil(r / 64)  # small ROMs in LUTs
    lut += n_out * convert_lut(acc_t, out_t)
    ff = round(K_DENSE_FF * terms * (x_t.width + w_t.width)) + n_out * acc_t.width
    return Cost(latency, r, dsp, lut, ff, bram)


def _activation(op: spx.ActivationOp, s: Mapping[str, int], clock: float) -> Cost:
    n, kind = math.prod(op.input.type.get_shape()), op.kind.data
    in_t, out_t = element_type(op.input), element_type(op.result)
    size = op.table_size.value.data if op.table_size is not None else 1024
    if kind in ("relu", "linear"):
        return Cost(0, 1, 0, n * convert_lut(in_t, out_t), value_bits(op.result), 0)
    if kind == "softmax":  # exp table (partitioned: a LUT ROM per element), sum, inverse table, a multiply per output
        t = softmax_tables(in_t, n, table_size=None if op.table_size is None else size)  # the emitted tables
        dsp1, lut1 = mult_cost(t.exp_t.width, t.inv_t.width)
        lut = n * (lut1 + in_t.width + out_t.width + _lut_rom(t.exp_size, t.exp_t.width))
        return Cost(TABLE_LATENCY[kind], 1, n * dsp1, lut, 2 * value_bits(op.result), _table_bram(t.inv_size, t.inv_t.width, 1))
    return Cost(TABLE_LATENCY[kind], 1, 0, n * (in_t.width + _lut_rom(size, out_t.width)), value_bits(op.result), 0)


def _element_type(k: int, i: int, f: int, op) -> FixedType | None:
    if k + i + f == 0:
        return None
    return FixedType(k + i + f, k + i, bool(k), op.quant.data, "WRAP" if op.overflow.data == "WRAP" else "SAT")


def _quantize(op, s: Mapping[str, int], clock: float) -> Cost:
    """spx.quantize: each element a constant shift, rounding and clamp (its own k, i, f);
    spx.sparse_quantize: per slot and channel a (k, i, f) ROM read by pixel position (LUT ROM), a
    variable shift and the rounding/clamp of the widest element."""
    values = op.kif.get_values()
    triples = list(zip(values[0::3], values[1::3], values[2::3]))
    in_t, out_t = element_type(op.operands[0]), element_type(op.result)
    if isinstance(op, spx.QuantizeOp):
        lut = sum(convert_lut(in_t, t) for t in (_element_type(k, i, f, op) for k, i, f in triples) if t is not None)
        return Cost(0, 1, 0, lut, value_bits(op.result), 0)
    n, c = op.feat.type.get_shape()
    pp = s["pixel_parallel"]
    rom = math.ceil(len(triples) / c * 18 / 64)  # one channel's (k, i, f) entries, 6 bits each, LUT6 ROMs
    shifts = max((f for _, _, f in triples), default=0) - min((f for _, _, f in triples), default=0) + 1
    per_element = rom + in_t.width * max(1, math.ceil(math.log2(shifts))) + convert_lut(in_t, out_t) + out_t.width
    latency = _rolled(n // pp, 2)
    return Cost(latency, latency, 0, pp * c * per_element, value_bits(op.result), 0)


FORMULAS = {
    spx.QuantizeOp: _quantize,
    spx.SparseQuantizeOp: _quantize,
    spx.InputReduceOp: _input_reduce,
    spx.SparseConv2DOp: _sparse_conv2d,
    spx.SparseActivationOp: _sparse_activation,
    spx.SparsePool2DOp: _sparse_pool2d,
    spx.SparseFlattenOp: _sparse_flatten,
    spx.DenseOp: _dense,
    spx.ActivationOp: _activation,
}


def op_cost(op: Operation, sched: Mapping[str, int] | None = None, clock_ns: float = CLOCK_NS) -> Cost:
    """Estimated cost of one op under `sched` (default: the schedule its properties state)."""
    formula = FORMULAS.get(type(op))
    if formula is None:
        return FREE
    return formula(op, schedule(op) if sched is None else sched, clock_ns)


# ------------------------------------------------------------------------------ whole model


class ModelCost:
    """The model function as a DATAFLOW region: per-op costs, channel costs and totals."""

    def __init__(self, module: ModuleOp, clock_ns: float = CLOCK_NS):
        g = dataflow_graph(module)
        self.clock_ns = clock_ns
        self.ops = [op for op in topological_ops(module) if is_compute(op)]
        self.preds = {op: [p for p in g.predecessors(op) if is_compute(p)] for op in self.ops}
        # every value passed from one stage to another is a channel (one per reading stage)
        bits = sum(value_bits(r) for op in self.ops for r in op.results for use in r.uses if is_compute(use.operation))
        self.glue = Cost(0, 1, 0, bits, round(K_GLUE_FF * bits), 0)

    def op_cost(self, op: Operation, sched: Mapping[str, int] | None = None) -> Cost:
        return op_cost(op, sched, self.clock_ns)

    def costs(self, schedules: Mapping[Operation, Mapping[str, int]] | None = None) -> dict[Operation, Cost]:
        schedules = schedules or {}
        return {op: self.op_cost(op, schedules.get(op)) for op in self.ops}

    def total(self, costs: Mapping[Operation, Cost]) -> Cost:
        """Dataflow totals: longest path with a handoff cycle per registered stage; II = slowest + 1."""
        finish: dict[Operation, int] = {}
        for op in self.ops:
            lat = costs[op].latency
            finish[op] = max((finish[p] for p in self.preds[op]), default=0) + lat + (1 if lat > 0 else 0)
        latency = max(0, max(finish.values(), default=1) - 1)
        ii = max((c.ii for c in costs.values()), default=0) + 1
        sums = {k: sum(getattr(c, k) for c in costs.values()) + getattr(self.glue, k) for k in RESOURCES}
        return Cost(latency, ii, **sums)


def estimate(module: ModuleOp, clock_ns: float = CLOCK_NS) -> tuple[dict[Operation, Cost], Cost]:
    """(per-op costs, model total) under the schedule stated in the IR."""
    model = ModelCost(module, clock_ns)
    costs = model.costs()
    return costs, model.total(costs)


def report_table(module: ModuleOp, clock_ns: float | None = None) -> str:
    """Markdown table of the estimated cost per op and for the model (source=SOURCE)."""
    from spx_ir.builder import model_function

    if clock_ns is None:
        stored = model_function(module).attributes.get("estimate")
        clock_ns = stored.data["clock_ns"].value.data if stored is not None and "clock_ns" in stored.data else CLOCK_NS
    model = ModelCost(module, clock_ns)
    costs, labels = model.costs(), op_labels(module)
    total = model.total(costs)
    rows = ["| op | layer | latency (cycles) | II | DSP | LUT | FF | BRAM18 |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    line = lambda name, layer, c: f"| {name} | {layer} | {c.latency} | {c.ii} | {c.dsp} | {c.lut} | {c.ff} | {c.bram} |"  # noqa: E731
    rows += [line(op.name, labels[op], costs[op]) for op in model.ops]
    rows.append(f"| channels | (dataflow FIFOs) | - | - | {model.glue.dsp} | {model.glue.lut} | {model.glue.ff} | {model.glue.bram} |")
    rows.append(line("**total**", "(dataflow)", total))
    us = total.latency * clock_ns / 1000
    head = (f"Cost of `{model_function(module).sym_name.data}` for target vitis (source={SOURCE}: not a synthesis result; "
            f"clock {clock_ns:g} ns): latency {total.latency} cycles = {us:.3f} us, II {total.ii} cycles\n\n")
    return head + "\n".join(rows) + "\n"
