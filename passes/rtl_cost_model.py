"""RTL cost model: latency and FPGA resources of the FULLY PARALLEL design the `rtl` target emits.

The design (codegen/rtl/ops.py) is one XLS function per op, inlined into one function pipelined by
XLS at the clock T with II = 1 (schedule attributes are ignored by that target), synthesized by Yosys
`synth_xilinx -family xcup`. Every figure here is an ESTIMATE of that design (label it
`estimate (rtl cost model)`); measured figures come from `spx synth`. The constants K were fitted by
bench/rtl_calibration.py on its measured table (bench/results/rtl_calibration.json: each op's XLS
function synthesized alone, whole small models through Verilator + Yosys); that bench prints the
error on configurations held out of the fit.

Per op, `structure(op)` counts the operators of its XLS function (widths from the exact-range
integer arithmetic of codegen/rtl/arith.py), then:

  multipliers  XLS turns x * c into shifts and adds when c = 0, or c > 0 with an odd part 1 or
               2^k +- 1; Yosys turns x * -2^k into a negation; every other product (other negative
               constants included) stays a multiplier.
               Yosys maps a multiplier of operand widths a, b and product width y to a DSP48E2 when
               a >= 2, b >= 2 and y >= 9 (measured; mul2dsp's limits for xcup), as
               ceil(a/27)*ceil(b/18) DSPs; narrower ones become LUTs (K["soft_mul"] per a*b).
  LUT          K[kind:arith] * arith + K[kind:mux] * mux + K[kind:dsp] * DSPs (+ LUT multipliers):
               arith counts adder and comparator bits, mux 2:1 multiplexer / AND bits and ROM bits / 64
               (LUT6 ROMs). Yosys folds adders into DSPs (K[kind:dsp] may be negative), shares and
               simplifies: the fitted constants absorb it. Measured held-out error ~22 % (worst:
               sparse_flatten, whose LUTs per output bit vary 1-9 with N and hb under ABC).
  FF           of an op alone (as measured): input bits + output bits + 2 valid flops, plus the
               pipeline registers of each further stage, K[kind:cut] * its output bits (the partial
               sums cross the boundary; input_reduce: * its input bits, the pixel words wait for the ranks), K[cut] for kinds without a measured multi-stage point.
  latency      (an op alone) 1 + stages, stages = max(1, ceil(delay / T)); delay (ps, XLS's sky130
               delay model) = K[kind:d0] + K[kind:d1] * levels + K[kind:d2] * width: levels = the
               op's logic depth in tree levels, width = the operand width that sets a level's delay
               (per op below). Stage markers == Verilator's latency (measured on whole models).
  model        (measured on 4 small models; XLS/Yosys optimise across ops, so the sums overestimate
               LUT/DSP a little) the ops inlined and pipelined as one: latency = 1 + max(1, ceil(sum of the op
               delays on the longest path / T)); II = 1; LUT, DSP = sums over ops; FF = input bits +
               output bits + 2 + one pipeline register per internal stage boundary (at equal
               fractions of the summed delay), K[model_cut] * the cut_width of the op it falls in.
Per-op assumptions are in the structure functions. Not modelled: BRAM/URAM (tables are LUT ROMs:
BRAM = 0), routing, timing closure; softmax was not measured (Yosys > 300 s on the smallest) and
uses the sigmoid/tanh table constants (FALLBACK).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from passes.cost_model import Cost, element_type, op_labels, value_bits
from spx_ir import dialect as spx
from spx_ir.accum import op_accum_type
from spx_ir.fixed import FixedType, accumulator_type, product_type, sum_type
from spx_ir.graph import dataflow_graph, topological_ops
from spx_ir.tables import DEFAULT_SIZE, softmax_tables

__all__ = ["Cost", "op_labels", "Structure", "structure", "op_cost", "estimate", "report_table", "K",
           "TARGET", "SOURCE"]

TARGET = "rtl"
SOURCE = "estimate (rtl cost model)"
CLOCK_NS = 5.0

# Fitted by bench/rtl_calibration.py (fit split of bench/results/rtl_calibration.json).
K: dict[str, float] = {
    "activation:relu:arith": 0.7724, "activation:relu:d0": 220.6, "activation:relu:d1": 0.0,
    "activation:relu:d2": 28.6, "activation:relu:dsp": 0.0, "activation:relu:mux": 0.0, "activation:table:arith": 0.0,
    "activation:table:d0": 1214.0, "activation:table:d1": 0.0, "activation:table:d2": 20.0,
    "activation:table:dsp": 0.0, "activation:table:mux": 0.2704, "cut": 2.518, "dense:arith": 0.4968,
    "dense:cut": 1.4167, "dense:d0": -2399.6, "dense:d1": 1143.1, "dense:d2": 208.8, "dense:dsp": 6.9066,
    "dense:mux": 0.0, "input_reduce:arith": 0.0, "input_reduce:cut": 1.1209, "input_reduce:d0": -1722.0,
    "input_reduce:d1": 198.8, "input_reduce:d2": 922.2, "input_reduce:dsp": 0.0, "input_reduce:mux": 0.4811,
    "model_cut": 1.2853, "soft_mul": 0.6, "sparse_conv2d:arith": 0.6576, "sparse_conv2d:cut": 3.0467,
    "sparse_conv2d:d0": -1056.8, "sparse_conv2d:d1": 1236.1, "sparse_conv2d:d2": 226.6, "sparse_conv2d:dsp": 9.1473,
    "sparse_conv2d:mux": 0.0, "sparse_flatten:arith": 2.1655, "sparse_flatten:d0": 399.4, "sparse_flatten:d1": 108.0,
    "sparse_flatten:d2": 26.7, "sparse_flatten:dsp": 0.0, "sparse_flatten:mux": 0.505,
    "sparse_pool2d:avg:arith": 0.1616, "sparse_pool2d:avg:d0": 591.7, "sparse_pool2d:avg:d1": 764.9,
    "sparse_pool2d:avg:d2": -2.8, "sparse_pool2d:avg:dsp": -11.2209, "sparse_pool2d:avg:mux": 0.7802,
    "sparse_pool2d:max:arith": 0.8846, "sparse_pool2d:max:d0": 389.0, "sparse_pool2d:max:d1": 967.6,
    "sparse_pool2d:max:d2": -36.6, "sparse_pool2d:max:dsp": 0.0, "sparse_pool2d:max:mux": 0.5338,
}


@dataclass
class Structure:
    """Operator counts of one op's XLS function (see the module docstring)."""

    kind: str                      # the fitted family, e.g. "sparse_conv2d", "activation:table"
    in_bits: int
    out_bits: int
    arith: float = 0.0             # adder and comparator bits
    mux: float = 0.0               # 2:1 multiplexer / AND-gate bits, LUT6 ROMs (64 bits each)
    levels: float = 0.0            # logic depth in tree levels (first delay regressor)
    width: float = 0.0             # the width that sets each level's delay (second delay regressor)
    mults: list = field(default_factory=list)   # (a, b, y) widths of each multiplier XLS keeps
    cut_base: int = 0              # bits an internal pipeline cut is proportional to (0: out_bits)

    @property
    def cut_width(self) -> int:
        return self.cut_base or self.out_bits

    def add(self, bits: float) -> None:
        self.arith += bits

    def sel(self, bits: float) -> None:
        self.mux += bits


# ------------------------------------------------------------------------------ building blocks


def _sw(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement type holding [lo, hi] (codegen/rtl/arith.py)."""
    return max(1, 1 + max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0))


def const_reduced(c: int) -> bool:
    """True when XLS's optimiser turns x * c into shifts/adds (measured: bench/rtl_calibration.py)."""
    if c == 0:
        return True
    if c < 0:
        return False
    odd = c >> ((c & -c).bit_length() - 1)
    return bin(odd).count("1") <= 2 or (odd + 1) & odd == 0


def dsp_of(a: int, b: int, y: int) -> int:
    """DSP48E2 of an a x b -> y bit multiplier in Yosys synth_xilinx -family xcup (0: LUTs)."""
    if min(a, b) < 2 or y < 9:
        return 0
    hi, lo = max(a, b), min(a, b)
    return math.ceil(hi / 27) * math.ceil(lo / 18)


def _const_product(st: Structure, x_lo: int, x_hi: int, c: int) -> tuple[int, int]:
    """x * c: a multiplier or a shift-add; returns the product's range."""
    corners = [x_lo * c, x_hi * c]
    lo, hi = min(corners), max(corners)
    if c == 0:
        return 0, 0
    y = _sw(lo, hi)
    if const_reduced(c):
        odd = c >> ((c & -c).bit_length() - 1)
        st.add(0 if odd == 1 else y)  # one adder / subtractor for 2^k +- 1
    elif -c & (-c - 1) == 0:  # -2^k: XLS keeps the multiply, Yosys makes it a negation (measured)
        st.add(y)
    else:
        st.mults.append((_sw(x_lo, x_hi), _sw(c, c), y))
    return lo, hi


def _tree(st: Structure, ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """An adder tree over terms of the given ranges (codegen/rtl/arith.py: sum_tree); its range."""
    terms = list(ranges)
    if not terms:
        return 0, 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms), 2):
            if i + 1 < len(terms):
                lo, hi = terms[i][0] + terms[i + 1][0], terms[i][1] + terms[i + 1][1]
                st.add(_sw(lo, hi))
                nxt.append((lo, hi))
            else:
                nxt.append(terms[i])
        terms = nxt
    return terms[0]


def _convert(st: Structure, src: FixedType, dst: FixedType, lo: int | None = None, hi: int | None = None) -> None:
    """Rounding (compare of the dropped bits + incrementer) and saturation (two compares + two mux) of
    src -> dst (codegen/rtl/arith.py: convert), for a value in [lo, hi] of src's raw scale."""
    lo = src.min_raw if lo is None else lo
    hi = src.max_raw if hi is None else hi
    drop = src.frac_bits - dst.frac_bits
    if drop > 0 and dst.quant != "TRN":
        st.add(2 * drop + _sw(lo >> drop, hi >> drop))
    lo, hi = (lo >> drop, hi >> drop) if drop > 0 else (lo << -drop, hi << -drop)
    if dst.overflow != "WRAP" and (lo < dst.min_raw or hi > dst.max_raw):
        st.add(2 * (_sw(lo, hi) + dst.width))


class _Counter(Structure):
    """Discards counts (for operators shared with one already counted)."""

    def __init__(self):
        super().__init__("", 0, 0)

    def add(self, bits: float) -> None:
        pass

    def sel(self, bits: float) -> None:
        pass


# ------------------------------------------------------------------------------ per-op structures


def _prefix_ops(n: int) -> int:
    """Operators of codegen/rtl/ops.py _prefix (Sklansky) over n items."""
    return 0 if n <= 1 else _prefix_ops(n // 2) + _prefix_ops(n - n // 2) + (n - n // 2)


def _input_reduce(op) -> Structure:
    """The rank select (codegen/rtl/ops.py input_reduce). Per pixel: C compares with the threshold.
    Saturating count adders (a cw-bit add, a compare with N, a cw-bit mux; cw = bits of 2N): the
    prefix over each row, over the row totals, and row-before + in-row for every pixel off the first
    row and column. Per (pixel p, slot k <= p): rank == k (cw bits) AND active. Per slot k (H*W - k
    candidates): the data word gated by each select bit and OR-reduced, and 2*hb hash bits, each an OR
    of the select bits of the pixels whose coordinate bit is 1. levels = threshold compare + row and
    column prefix depths + combine + rank compare + the OR tree; width = cw. A pipeline cut falls
    before the selects: the pixel words (and their active bits) cross it, so cut_base = input bits."""
    h, w, c = op.image.type.get_shape()
    n, in_t = op.n_max.value.data, element_type(op.image)
    hb = op.hash.type.element_type.width.data
    pix, data_w, cw = h * w, c * in_t.width, (2 * n).bit_length()
    st = Structure("input_reduce", value_bits(op.image), value_bits(op.feat) + value_bits(op.hash))
    st.add(pix * c * in_t.width)
    sat = h * _prefix_ops(w) + _prefix_ops(h - 1) + (h - 1) * (w - 1)
    st.add(sat * 2 * cw)
    st.sel(sat * cw)
    rank_cmps = sum(min(n, p + 1) for p in range(pix)) - 1
    st.add(rank_cmps * cw)
    st.sel(rank_cmps)
    for k in range(n):
        cands = max(0, pix - k)
        st.sel(cands * data_w + max(0, cands - 1) * data_w)   # gates + OR tree of the data word
        for coord in (lambda p: p // w + 1, lambda p: p % w + 1):
            for b in range(hb):
                ones = sum(1 for p in range(k, pix) if coord(p) >> b & 1)
                st.sel(max(0, ones - 1))
    st.levels = 1 + math.ceil(math.log2(max(2, w))) + math.ceil(math.log2(max(2, h))) + 2 \
        + math.ceil(math.log2(max(2, pix)))
    st.width, st.cut_base = cw, st.in_bits
    return st


def _pairs(st: Structure, n: int, hb: int) -> None:
    """The slot-pair geometry of sparse_conv2d: per ordered pair (i != j) two (hb+1)-bit differences,
    four compares against the kernel window, and the non-empty tests."""
    st.add(n * (n - 1) * 6 * (hb + 1) + 2 * n * hb)


def _sparse_conv2d(op) -> Structure:
    """Per slot pair (i, j) the kernel offset selects the weight (a Kh*Kw-way mux of constants for
    j != i, the centre constant for j == i); one product per (i, j, c, o), gated by the window test;
    per (i, o) an adder tree over the N*Ci products + bias, the output conversion and the empty-slot
    mux. Explicit narrow accumulators (the sequential form) are counted like the tree.
    levels = log2(N*Ci + 1) + 1 for the multiplier."""
    n, ci = op.feat.type.get_shape()
    kh, kw, _, co = op.weight.type.get_shape()
    x_t, w_t, b_t, out_t = element_type(op.feat), element_type(op.weight), element_type(op.bias), element_type(op.result)
    hb = op.hash.type.element_type.width.data
    wr = op.weight.owner.value.get_values() if isinstance(op.weight.owner, spx.ConstOp) else None
    br = op.bias.owner.value.get_values() if isinstance(op.bias.owner, spx.ConstOp) else [0] * co
    st = Structure("sparse_conv2d", value_bits(op.feat) + value_bits(op.hash), value_bits(op.result))
    _pairs(st, n, hb)
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    acc_t = op_accum_type(op)
    prod_t = product_type(x_t, w_t)
    exact_t = sum_type(accumulator_type(prod_t, max(1, min(n, kh * kw) * ci)), b_t)
    seen = set()
    w_at = lambda a, b, c, o: int(wr[((a * kw + b) * ci + c) * co + o]) if wr is not None else w_t.max_raw  # noqa: E731
    for o in range(co):
        for i in range(n):
            ranges = []
            for j in range(n):
                for c in range(ci):
                    cands = [w_at(ph, pw, c, o)] if i == j else [w_at(a, b, c, o) for a in range(kh) for b in range(kw)]
                    if all(v == 0 for v in cands):
                        continue
                    if len(cands) == 1:  # a constant: x[j] * w is one product, shared by every i
                        lo, hi = _const_product(_Counter() if (j, c, o) in seen else st, x_t.min_raw, x_t.max_raw,
                                                cands[0])
                        seen.add((j, c, o))
                    else:  # a Kh*Kw-way select of constants (0 beyond them) times x[j]
                        wl, wh = min(cands + [0]), max(cands + [0])
                        st.sel((len(cands) - 1) * _sw(wl, wh))
                        corners = [x_t.min_raw * wl, x_t.min_raw * wh, x_t.max_raw * wl, x_t.max_raw * wh]
                        lo, hi = min(corners), max(corners)
                        st.mults.append((_sw(x_t.min_raw, x_t.max_raw), _sw(wl, wh), _sw(lo, hi)))
                    if lo == hi == 0:
                        continue
                    st.sel(_sw(lo, hi))  # the window gate
                    ranges.append((lo, hi))
            bias = int(br[o]) << max(0, exact_t.frac_bits - b_t.frac_bits)
            _tree(st, ranges + [(bias, bias)])
            _convert(st, acc_t, out_t)
            st.sel(out_t.width)
    st.levels, st.width = math.log2(n * ci + 1) + 1, x_t.width
    return st


def _sparse_pool2d(op) -> Structure:
    """Pooled coordinates by ROM (2N of 2^hb entries), the N x N same-cell matrix (two compares per
    unordered pair), the leader OR chain; per (slot, channel): max = N-1 compare-and-select, avg =
    N-1 adders and, for P*P not a power of two, the exact division (a magic-constant multiply, a
    multiply by P*P, the remainder compares: codegen/rtl/ops.py: divide_round); conversion, leader mux.
    levels = log2(N) (+ 2 for the division)."""
    n, c = op.feat.type.get_shape()
    p, mode = op.size.value.data, op.mode.data
    in_t, out_t = element_type(op.feat), element_type(op.feat_out)
    hb = op.hash.type.element_type.width.data
    st = Structure(f"sparse_pool2d:{mode}", value_bits(op.feat) + value_bits(op.hash), value_bits(op.feat_out) + value_bits(op.hash_out))
    cw = max(1, max(op.height.value.data // p, op.width.value.data // p).bit_length())
    st.sel(2 * n * cw * max(1, 2 ** hb / 64))
    st.add(n * (n - 1) * cw + n * n)
    st.levels, st.width = math.log2(max(2, n)), in_t.width
    for _ in range(n * c):
        if mode == "max":
            st.add((n - 1) * in_t.width)
            st.sel((n - 1) * in_t.width + n * in_t.width)
            _convert(st, in_t, out_t)
        else:
            st.sel(n * in_t.width)
            lo, hi = _tree(st, [(min(0, in_t.min_raw), in_t.max_raw)] * n)
            shift = out_t.frac_bits - in_t.frac_bits
            num_lo, num_hi = (lo << shift, hi << shift) if shift >= 0 else (lo, hi)
            den = p * p if shift >= 0 else (p * p) << -shift
            if den & (den - 1):
                offset = -(num_lo // den) if num_lo < 0 else 0
                bits_n = max(1, (num_hi + offset * den).bit_length())
                s = bits_n + (den - 1).bit_length()
                magic = -(-(1 << s) // den)
                _const_product(st, 0, num_hi + offset * den, magic)
                _const_product(st, num_lo // den, num_hi // den, den)
                st.add(4 * _sw(0, 2 * den) + _sw(num_lo // den, num_hi // den))
                st.levels = math.log2(max(2, n)) + 2
            _convert(st, FixedType(out_t.width + 8, out_t.int_bits + 8, True), out_t,
                     num_lo // den, num_hi // den)
        st.sel(out_t.width)
    return st


def _sparse_flatten(op) -> Structure:
    """Per output pixel and slot: the row/column hits (compares shared per slot: N*(H+W) of hb bits)
    and an N-way priority select of the C*w slot word (N-1 mux bits per output bit; Yosys/ABC's LUTs
    per output bit vary 1-9 with N and hb in the measurements: this op's LUT is the least certain).
    levels = log2(N)."""
    n, c = op.feat.type.get_shape()
    h, w = op.height.value.data, op.width.value.data
    hb = op.hash.type.element_type.width.data
    fw = element_type(op.feat).width
    st = Structure("sparse_flatten", value_bits(op.feat) + value_bits(op.hash), value_bits(op.result))
    st.add(n * (h + w) * hb)
    st.sel(h * w * (n + (n - 1) * c * fw))
    st.levels, st.width = math.log2(max(2, n)), hb
    return st


def _dense(op) -> Structure:
    """Constant products (zero weights skipped; see multipliers), an adder tree per output + bias,
    the output conversion. The reuse factor is ignored (the rtl target is fully parallel).
    levels = log2(n_in + 1) + 1 for the multiplier."""
    n_in, n_out = op.weight.type.get_shape()
    x_t, w_t, b_t, out_t = element_type(op.input), element_type(op.weight), element_type(op.bias), element_type(op.result)
    wr = op.weight.owner.value.get_values() if isinstance(op.weight.owner, spx.ConstOp) else [w_t.max_raw] * (n_in * n_out)
    br = op.bias.owner.value.get_values() if isinstance(op.bias.owner, spx.ConstOp) else [0] * n_out
    st = Structure("dense", value_bits(op.input), value_bits(op.result))
    acc_t = op_accum_type(op)
    exact_t = sum_type(accumulator_type(product_type(x_t, w_t), n_in), b_t)
    seen = set()
    for o in range(n_out):
        ranges = []
        for i in range(n_in):
            w = int(wr[i * n_out + o])
            if w:  # x[i] * w is one product however many outputs use it (XLS merges equal nodes)
                ranges.append(_const_product(_Counter() if (i, w) in seen else st, x_t.min_raw, x_t.max_raw, w))
                seen.add((i, w))
        bias = int(br[o]) << max(0, exact_t.frac_bits - b_t.frac_bits)
        _tree(st, ranges + [(bias, bias)])
        _convert(st, acc_t, out_t)
    st.levels, st.width = math.log2(n_in + 1) + 1, x_t.width
    return st


def _elementwise(st: Structure, kind: str, in_t: FixedType, out_t: FixedType, size: int | None) -> None:
    if kind in ("relu", "linear"):
        if kind == "relu":
            st.add(in_t.width)
            st.sel(in_t.width)
        _convert(st, in_t, out_t, max(0, in_t.min_raw) if kind == "relu" else None)
    else:  # index arithmetic + clamp, ROM (LUT6 = 64 bits), the value-at-0 compare and mux
        entries = size or DEFAULT_SIZE
        st.add(4 * in_t.width)
        st.sel(entries * out_t.width / 64 + out_t.width)


def _activation(op) -> Structure:
    """relu/linear: compare, select and conversion per element; sigmoid/tanh: index arithmetic and a
    LUT ROM per element; softmax: maximum tree, per element an exp ROM, the sum, the inverse ROM and
    one multiplier exp x inv per element, the scale select and the decision rule.
    levels: 1 (relu), 2 (tables), 4 + log2(n) (softmax)."""
    n, kind = math.prod(op.input.type.get_shape()), op.kind.data
    in_t, out_t = element_type(op.input), element_type(op.result)
    size = op.table_size.value.data if op.table_size is not None else None
    fam = {"relu": "relu", "linear": "relu", "sigmoid": "table", "tanh": "table", "softmax": "softmax"}[kind]
    st = Structure(f"activation:{fam}", value_bits(op.input), value_bits(op.result))
    if kind != "softmax":
        for _ in range(n):
            _elementwise(st, kind, in_t, out_t, size)
        st.levels, st.width = (1 if fam == "relu" else 2), in_t.width
        return st
    last = op.input.type.get_shape()[-1]
    t = softmax_tables(in_t, last, table_size=size)
    for _ in range(n // last):
        st.add((last - 1) * in_t.width)                                   # maximum
        st.sel((last - 1) * in_t.width + last * t.exp_size * t.exp_t.width / 64)  # its select, exp ROMs
        st.add(last * 3 * in_t.width)                                     # exp index
        _tree(st, [(0, (1 << t.exp_t.width) - 1)] * last)                 # the sum
        st.add(t.kmax * (t.exp_t.width + 8))
        st.sel(t.inv_size * t.inv_t.width / 64)
        for _ in range(last):
            st.mults.append((t.exp_t.width + 1, t.inv_t.width + 1, t.exp_t.width + t.inv_t.width))
            st.sel((t.kmax + 1) * out_t.width + 2 * out_t.width)          # scale select, decide
            st.add(4 * out_t.width)                                       # convert, decide compares
    st.levels, st.width = 4 + math.log2(max(2, last)), in_t.width
    return st


def _sparse_activation(op) -> Structure:
    """The elementwise activation per (slot, channel) and the empty-slot mux (as `activation`)."""
    n, c = op.feat.type.get_shape()
    kind = op.kind.data
    in_t, out_t = element_type(op.feat), element_type(op.result)
    size = op.table_size.value.data if op.table_size is not None else None
    fam = "relu" if kind in ("relu", "linear") else "table"
    st = Structure(f"activation:{fam}", value_bits(op.feat) + value_bits(op.hash), value_bits(op.result))
    st.add(2 * n * op.hash.type.element_type.width.data)
    for _ in range(n * c):
        _elementwise(st, kind, in_t, out_t, size)
        st.sel(out_t.width)
    st.levels, st.width = (1 if fam == "relu" else 2), in_t.width
    return st


STRUCTURES = {
    spx.InputReduceOp: _input_reduce,
    spx.SparseConv2DOp: _sparse_conv2d,
    spx.SparsePool2DOp: _sparse_pool2d,
    spx.SparseFlattenOp: _sparse_flatten,
    spx.DenseOp: _dense,
    spx.ActivationOp: _activation,
    spx.SparseActivationOp: _sparse_activation,
}


def structure(op: Operation) -> Structure | None:
    """Operator counts of an op's XLS function; None for ops that emit no hardware (constants)."""
    fn = STRUCTURES.get(type(op))
    return fn(op) if fn is not None else None


# ------------------------------------------------------------------------------ figures


# Kinds without a measured point use another kind's constants (unvalidated): softmax's smallest
# configuration (4 x 8 bit) exceeded the calibration's 300 s Yosys timeout.
FALLBACK = {"activation:softmax": "activation:table"}


def _k(k: Mapping[str, float], key: str) -> float:
    kind, _, name = key.rpartition(":")
    if key not in k and kind in FALLBACK:
        key = f"{FALLBACK[kind]}:{name}"
    if key not in k:
        raise KeyError(f"rtl cost model: no fitted constant {key!r} (run bench/rtl_calibration.py)")
    return k[key]


def delay_ps(st: Structure, k: Mapping[str, float] = K) -> float:
    """Combinational delay of the op's function (XLS delay model), ps."""
    return _k(k, f"{st.kind}:d0") + _k(k, f"{st.kind}:d1") * st.levels + _k(k, f"{st.kind}:d2") * st.width


def stages(st: Structure, clock_ns: float, k: Mapping[str, float] = K) -> int:
    """Pipeline stages of the op alone (XLS stage markers; = Verilator latency in cycles)."""
    return 1 + max(1, math.ceil(delay_ps(st, k) / (clock_ns * 1000) - 1e-9))


def mult_figures(st: Structure, k: Mapping[str, float] = K) -> tuple[int, float]:
    """(DSP, LUT) of the op's multipliers."""
    dsp = lut = 0
    for a, b, y in st.mults:
        d = dsp_of(a, b, y)
        dsp += d
        lut += 0 if d else _k(k, "soft_mul") * a * b
    return dsp, lut


def cut_bits(st: Structure, k: Mapping[str, float] = K) -> float:
    """Register bits at one internal pipeline boundary inside the op: K[kind:cut] (else K[cut]) * st.cut_width."""
    return k.get(f"{st.kind}:cut", _k(k, "cut")) * st.cut_width


def cost_of(st: Structure, clock_ns: float = CLOCK_NS, k: Mapping[str, float] = K) -> Cost:
    """The op synthesized alone (inputs and outputs registered), as bench/rtl_calibration.py measures."""
    dsp, mul_lut = mult_figures(st, k)
    lat = stages(st, clock_ns, k)
    lut = max(0.0, _k(k, f"{st.kind}:arith") * st.arith + _k(k, f"{st.kind}:mux") * st.mux
              + _k(k, f"{st.kind}:dsp") * dsp) + mul_lut
    ff = st.in_bits + st.out_bits + 2 + (lat - 2) * cut_bits(st, k)
    return Cost(lat, 1, dsp, round(lut), round(ff), 0)


def op_cost(op: Operation, clock_ns: float = CLOCK_NS, k: Mapping[str, float] = K) -> Cost:
    st = structure(op)
    return Cost(0, 1) if st is None else cost_of(st, clock_ns, k)


def _compute_ops(module: ModuleOp) -> list[Operation]:
    return [op for op in topological_ops(module) if type(op) in STRUCTURES]


def model_cost(module: ModuleOp, clock_ns: float = CLOCK_NS, k: Mapping[str, float] = K) -> tuple[dict, Cost]:
    """(per-op costs, the whole model's cost): see the module docstring (`model`)."""
    from spx_ir.builder import model_function

    ops = _compute_ops(module)
    sts = {op: structure(op) for op in ops}
    costs = {op: cost_of(sts[op], clock_ns, k) for op in ops}
    g = dataflow_graph(module)
    finish, start = {}, {}
    for op in ops:
        start[op] = max((finish[p] for p in g.predecessors(op) if p in finish), default=0.0)
        finish[op] = start[op] + delay_ps(sts[op], k)
    period = clock_ns * 1000
    total = max(finish.values(), default=0.0)
    n_stages = max(1, math.ceil(total / period - 1e-9))
    ff = 0.0
    for cut in range(1, n_stages):  # the op in which each stage boundary falls
        t = cut * total / n_stages
        inside = [op for op in ops if start[op] <= t < finish[op]] or ops[-1:]
        ff += sum(_k(k, "model_cut") * sts[op].cut_width for op in inside)
    fn = model_function(module)
    in_bits = sum(value_bits(a) for a in fn.body.block.args)
    out_bits = sum(value_bits(v) for v in fn.body.block.last_op.operands)
    total_cost = Cost(1 + n_stages, 1, sum(c.dsp for c in costs.values()), sum(c.lut for c in costs.values()),
                      round(in_bits + out_bits + 2 + ff), 0)
    return costs, total_cost


def estimate(module: ModuleOp, clock_ns: float = CLOCK_NS) -> tuple[dict[Operation, Cost], Cost]:
    """(per-op costs, model total) of the rtl design (source: `estimate (rtl cost model)`)."""
    return model_cost(module, clock_ns)


def report_table(module: ModuleOp, clock_ns: float = CLOCK_NS) -> str:
    """Markdown table of the rtl estimate per op (each op alone) and for the model."""
    from spx_ir.builder import model_function

    costs, total = estimate(module, clock_ns)
    labels = op_labels(module)
    rows = ["| op | layer | latency (cycles, alone) | II | DSP | LUT | FF (alone) | BRAM18 |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    line = lambda name, layer, c: f"| {name} | {layer} | {c.latency} | {c.ii} | {c.dsp} | {c.lut} | {c.ff} | {c.bram} |"  # noqa: E731
    rows += [line(op.name, labels.get(op, op.name), c) for op, c in costs.items()]
    rows.append(line("**total**", "(one pipeline)", total))
    head = (f"Cost of `{model_function(module).sym_name.data}` for target rtl (source={SOURCE}: the fully parallel "
            f"XLS design, Yosys xcup resources; not a synthesis result; clock {clock_ns:g} ns): latency "
            f"{total.latency} cycles = {total.latency * clock_ns / 1000:.3f} us, II {total.ii}\n\n")
    return head + "\n".join(rows) + "\n"
