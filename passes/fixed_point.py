"""spx-fixed-point: give every sparse_conv2d and dense an explicit accumulator type.

Rule (spx_ir/accum.py): an op lacking `accum_type` gets the exact type of `bias + T products`,
    sum_type(accumulator_type(product_type(in_t, w_t), T), b_t),
with T = min(N, Kh*Kw) * Ci for a sparse conv (distinct active pixels occupy distinct positions, so
at most Kh*Kw slots meet one kernel window) and T = n_in for dense. With this type no partial sum
rounds or overflows, so it computes exactly what the op computes without `accum_type`.
Options:
  max-accum-width=W  caps every accumulator at W bits by dropping integer bits (the fraction bits
                     stay, so nothing rounds, but values wrap): each op where that can overflow is
                     named in an AccumulatorWarning (Python warnings; the CLI shows them on stderr).
  profile=x.npy      DATA-DEPENDENT narrowing: runs the inputs x (B, H, W, C) through the NumPy
                     reference, records the exact sums every newly typed accumulator reaches and
                     keeps only the integer bits they need. Other inputs can overflow (wrap); each
                     narrowed op is named in a warning. Result types are never changed.
Ops that already have an `accum_type` keep it (only the cap applies), so the pass is idempotent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import BlockArgument
from xdsl.passes import ModulePass

from passes.cost_model import op_labels
from passes.registry import register_pass
from spx_ir import dialect as spx
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.fixed import MAX_WIDTH, FixedType
from spx_ir.text import SpxError, load_npy


class AccumulatorWarning(UserWarning):
    """An accumulator type chosen by spx-fixed-point can overflow."""


def _holds(outer: FixedType, inner: FixedType) -> bool:
    """Every value of inner is a value of outer."""
    shift = outer.frac_bits - inner.frac_bits
    return shift >= 0 and outer.min_raw <= inner.min_raw << shift and inner.max_raw << shift <= outer.max_raw


def cap(t: FixedType, width: int) -> FixedType:
    """t narrowed to `width` bits by dropping integer bits (keeps the fraction: no rounding)."""
    return t if t.width <= width else FixedType(width, t.int_bits - (t.width - width), t.signed)


def fit(t: FixedType, lo: int, hi: int) -> FixedType:
    """The narrowest type with t's fraction bits and signedness holding raw values lo..hi (<= t)."""
    if t.signed:
        width = 1 + max(max(hi, 0).bit_length(), (-min(lo, 0) - 1).bit_length() if lo < 0 else 0)
    else:
        width = max(hi.bit_length(), 1)
    return cap(t, max(width, 1))


def profile_sums(module: ModuleOp, x: np.ndarray, ops) -> dict:
    """op -> (min, max) raw of its exact sum (in the exact accumulator type) over the events x.

    Runs the NumPy reference once (its trace gives each op's inputs) and re-evaluates each op
    with exact accumulation. Lives in passes/ but uses the NumPy target (codegen), imported here only."""
    from codegen.numpy import kernels
    from codegen.numpy.emit import load
    from spx_ir.graph import layer_names
    from spx_ir.fixed import quantize

    names = layer_names(module)
    try:
        trace = load(module).trace(x)
    except ValueError as err:
        raise SpxError(f"error: pass 'spx-fixed-point': option profile: {err}") from None

    def raw(value):
        t = value.type.element_type
        if isinstance(value, BlockArgument):  # the model input
            return quantize(np.asarray(x, dtype=np.float64), t.spec)
        key = names[value.owner] + (":hash" if value.index == 1 else "")
        if key.endswith(":hash"):
            return np.asarray(trace[key], dtype=np.int64)
        return np.rint(np.ldexp(trace[key], t.spec.frac_bits)).astype(np.int64)

    ranges = {}
    for op in ops:
        if not (isinstance(op.weight.owner, spx.ConstOp) and isinstance(op.bias.owner, spx.ConstOp)):
            continue
        exact, w, b = exact_accum_type(op), op.weight.owner.raw(), op.bias.owner.raw()
        if isinstance(op, spx.SparseConv2DOp):
            sums, _ = kernels.sparse_conv2d(raw(op.feat), raw(op.hash), _t(op.feat), w, _t(op.weight), b, _t(op.bias), None, exact)
        else:
            sums, _ = kernels.dense(raw(op.input), _t(op.input), w, _t(op.weight), b, _t(op.bias), None, exact)
        ranges[op] = (int(sums.min(initial=0)), int(sums.max(initial=0)))
    return ranges


def _t(value) -> FixedType:
    return value.type.element_type.spec


def exact_accum_type(op) -> FixedType:
    """The exact accumulator type of a sparse_conv2d or dense op, whatever its `accum_type` says."""
    if isinstance(op, spx.SparseConv2DOp):
        n, ci = op.feat.type.get_shape()
        kh, kw, _, _ = op.weight.type.get_shape()
        return exact_sum_type(_t(op.feat), _t(op.weight), _t(op.bias), conv_terms(n, kh, kw, ci))
    return exact_sum_type(_t(op.input), _t(op.weight), _t(op.bias), op.input.type.get_shape()[0])


def assign_accumulators(module: ModuleOp, max_width: int | None = None, profile: np.ndarray | None = None) -> list[str]:
    """Sets accum_type as the module docstring says; returns the warnings (one line per op)."""
    labels = op_labels(module)
    ops = [op for op in labels if isinstance(op, spx.SparseConv2DOp | spx.DenseOp)]
    fresh = [op for op in ops if op.accum_type is None]
    ranges = profile_sums(module, profile, fresh) if profile is not None and fresh else {}
    messages = []
    for op in ops:
        where = f"{op.name} '{labels[op]}'"
        exact = exact_accum_type(op)
        acc = op.accum_type.spec if op.accum_type is not None else exact
        if op in ranges:
            narrowed = fit(exact, *ranges[op])
            if narrowed != exact:
                messages.append(f"{where}: accumulator narrowed from {exact} to {narrowed} by profile data "
                                f"(range [{ranges[op][0]}, {ranges[op][1]}] raw); other inputs can overflow")
            acc = narrowed
        if max_width is not None and acc.width > max_width:
            acc = cap(acc, max_width)
            if not _holds(acc, exact):
                messages.append(f"{where}: accumulator capped at {max_width} bits ({acc}) can overflow: "
                                f"the exact sum needs {exact}")
        op.accum_type = spx.FixedPointType(acc)
    return messages


@register_pass
@dataclass(frozen=True)
class FixedPoint(ModulePass):
    """Set exact accumulator types on sparse_conv2d/dense (optional cap, optional profiled narrowing)."""

    name = "spx-fixed-point"
    max_accum_width: int | None = None
    profile: str | None = None

    def __post_init__(self):
        w = self.max_accum_width
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or not 2 <= w <= MAX_WIDTH):
            raise ValueError(f"option max-accum-width={w!r} must be an integer in [2, {MAX_WIDTH}]")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        data = None
        if self.profile is not None:
            data = load_npy(self.profile, f"error: pass '{self.name}': option profile={self.profile}")
        for message in assign_accumulators(op, self.max_accum_width, data):
            # one line on stderr, located at the pass rather than at a Python source line
            warnings.warn_explicit(message, AccumulatorWarning, f"<{self.name}>", 1, module=__name__)
