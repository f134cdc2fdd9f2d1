"""spx-tune: choose every op's parallel/reuse factors with the cost model to meet budgets or targets.

Options: resource budgets `dsp`, `lut`, `ff`, `bram` (counts, >= 0) and targets `latency`, `ii`
(cycles, >= 1), `clock` (ns). The search is deterministic and greedy over valid divisors: it starts
from the fastest schedule (spx-unroll's default), then, while a budget is exceeded, takes the
change of one knob (to a smaller parallel factor or larger reuse factor) that removes
the most budget excess per added cycle of model latency (preferring changes that keep the latency
and II targets); a change may jump to any more serial valid divisor, since e.g. a dense layer's
first reuse steps can cost more than constant-folded weights do. If a latency or II target is given, it
then keeps taking the change that saves the most resources (relative to the fastest design) while
the targets still hold. When nothing fits, it fails with SpxError stating the best achievable:
the smallest design the model knows (every knob at its most serial value) or the best latency
within the budgets. Writes the chosen factors as the ops' properties (as spx-unroll does);
estimates of the vitis cost model are only as good as passes/cost_model.py. Idempotent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from passes.cost_model import RESOURCES, Cost, ModelCost
from passes.registry import register_pass
from passes.unroll import set_schedule
from spx_ir.schedule import default_factor, divisors, knobs
from spx_ir.text import SpxError


def _more_serial(knob: str, value: int, trip: int) -> list[int]:
    """The valid values of a knob more serial than `value` (smaller parallel / larger reuse factors)."""
    return [d for d in divisors(trip) if (d > value if knob == "reuse_factor" else d < value)]


def _most_serial(knob: str, trip: int) -> int:
    return trip if knob == "reuse_factor" else 1


def _describe(c: Cost) -> str:
    return f"dsp={c.dsp} lut={c.lut} ff={c.ff} bram={c.bram} latency={c.latency} ii={c.ii}"


def search(module: ModuleOp, budgets: dict[str, int], latency: int | None = None, ii: int | None = None,
           clock_ns: float = 5.0, name: str = "spx-tune"):
    """{op: schedule} meeting the budgets and targets, with the model's totals; else SpxError."""
    model = ModelCost(module, clock_ns)
    sched = {op: {k: default_factor(op, k, t) for k, t in knobs(op).items()} for op in model.ops}
    costs = model.costs(sched)
    total = model.total(costs)

    def excess(t: Cost) -> float:
        return sum(max(0, getattr(t, k) - b) / max(b, 1) for k, b in budgets.items())

    def moves():
        for op in model.ops:
            for knob, trip in knobs(op).items():
                for value in _more_serial(knob, sched[op][knob], trip):
                    trial = {**sched[op], knob: value}
                    cost = model.op_cost(op, trial)
                    yield op, trial, cost, model.total({**costs, op: cost})

    def take(best):
        nonlocal total
        op, trial, cost, total = best
        sched[op], costs[op] = trial, cost

    def best(score):
        """The move with the highest positive score (the first of equal ones: deterministic)."""
        chosen, high = None, 0.0
        for m in moves():
            s = score(m[3])
            if s > high:
                chosen, high = m, s
        return chosen

    def meets(t: Cost) -> bool:
        return (latency is None or t.latency <= latency) and (ii is None or t.ii <= ii)

    while excess(total) > 0:  # prefer changes that keep the latency/II targets
        def gain(t: Cost) -> float:
            return (excess(total) - excess(t)) / (max(t.latency - total.latency, 0) + 1)

        move = best(lambda t: gain(t) if meets(t) else 0.0) or best(gain)
        if move is None:
            serial = model.total(model.costs({op: {k: _most_serial(k, t) for k, t in knobs(op).items()} for op in model.ops}))
            wanted = " ".join(f"{k}<={v}" for k, v in budgets.items())
            raise SpxError(f"error: pass '{name}': no schedule fits {wanted}; the most serial schedule the cost model "
                           f"knows needs {_describe(serial)} (vitis cost model estimate)")
        take(move)

    if not meets(total):
        targets = " ".join(f"{k}<={v}" for k, v in (("latency", latency), ("ii", ii)) if v is not None)
        within = f" within {' '.join(f'{k}<={v}' for k, v in budgets.items())}" if budgets else ""
        raise SpxError(f"error: pass '{name}': no schedule meets {targets}; the fastest schedule the search finds"
                       f"{within} has {_describe(total)} (vitis cost model estimate)")
    if latency is not None or ii is not None:
        fastest = total

        def saving(t: Cost) -> float:
            if not meets(t) or excess(t) > 0:
                return 0.0
            saved = sum((getattr(total, k) - getattr(t, k)) / max(getattr(fastest, k), 1) for k in RESOURCES)
            return saved / (max(t.latency - total.latency, 0) + 1)

        while (move := best(saving)) is not None:
            take(move)
    return sched, total


@register_pass
@dataclass(frozen=True)
class Tune(ModulePass):
    """Choose parallel/reuse factors with the cost model under resource budgets and latency/II targets."""

    name = "spx-tune"
    dsp: int | None = None
    lut: int | None = None
    ff: int | None = None
    bram: int | None = None
    latency: int | None = None
    ii: int | None = None
    clock: int | float = 5.0

    def __post_init__(self):
        for option, low in [(r, 0) for r in RESOURCES] + [("latency", 1), ("ii", 1)]:
            v = getattr(self, option)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"option {option}={v!r} must be an integer >= {low}")
        if not (isinstance(self.clock, int | float) and math.isfinite(self.clock) and self.clock > 0):
            raise ValueError(f"option clock={self.clock!r} must be a positive clock period in ns")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        budgets = {r: getattr(self, r) for r in RESOURCES if getattr(self, r) is not None}
        sched, _ = search(op, budgets, self.latency, self.ii, float(self.clock), self.name)
        for o, s in sched.items():
            set_schedule(o, s)
