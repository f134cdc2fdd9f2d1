"""spx-estimate: annotate every op and the model function with the cost model's estimates.

Each compute op (every spx op but spx.const) gets a discardable attribute
`estimate = {source, latency, ii, dsp, lut, ff, bram}` (cycles and resource counts, i64);
the model function gets the dataflow totals plus `latency_us` and `clock_ns`. The numbers come from
passes/cost_model.py (see its docstring for the formulas) and depend only on shapes, types and the
schedule properties, so the pass is idempotent and the attributes survive a print/parse round trip.
They are estimates, never synthesis results: `source` says so in the IR and names the design. Option
`target`: `vitis` (default: the Vitis HLS design, passes/cost_model.py, `source = "estimate (vitis cost
model)"`) or `rtl`
(the rtl target's fully parallel design, passes/rtl_cost_model.py, `source = "estimate (rtl cost model)"`).
Assumes verified IR with one model function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr, f64, i64
from xdsl.passes import ModulePass

from passes.cost_model import CLOCK_NS, SOURCE, Cost, ModelCost
from passes.registry import register_pass
from spx_ir.builder import model_function


def estimate_attr(cost: Cost, source: str = SOURCE, **extra: float) -> DictionaryAttr:
    entries = {"source": StringAttr(source)}
    entries.update({k: IntegerAttr(v, i64) for k, v in cost.as_dict().items()})
    entries.update({k: FloatAttr(float(v), f64) for k, v in extra.items()})
    return DictionaryAttr(entries)


@register_pass
@dataclass(frozen=True)
class Estimate(ModulePass):
    """Annotate ops and the model with estimated latency, II and resources (source names the target)."""

    name = "spx-estimate"
    clock: int | float = CLOCK_NS
    target: str = "vitis"

    def __post_init__(self):
        if self.target not in ("vitis", "rtl"):
            raise ValueError(f"option target={self.target!r} must be vitis or rtl")
        if not (isinstance(self.clock, int | float) and math.isfinite(self.clock) and self.clock > 0):
            raise ValueError(f"option clock={self.clock!r} must be a positive clock period in ns (e.g. clock=5.0)")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target == "rtl":
            from passes import rtl_cost_model

            costs, total = rtl_cost_model.estimate(op, float(self.clock))
            for o, cost in costs.items():
                o.attributes["estimate"] = estimate_attr(cost, rtl_cost_model.SOURCE)
            model_function(op).attributes["estimate"] = estimate_attr(
                total, rtl_cost_model.SOURCE, latency_us=round(total.latency * self.clock / 1000, 6),
                clock_ns=float(self.clock))
            return
        model = ModelCost(op, float(self.clock))
        costs = model.costs()
        for o, cost in costs.items():
            o.attributes["estimate"] = estimate_attr(cost)
        total = model.total(costs)
        model_function(op).attributes["estimate"] = estimate_attr(
            total, latency_us=round(total.latency * self.clock / 1000, 6), clock_ns=float(self.clock))
