"""spx-unroll: set every op's schedule properties (parallel factors, reuse factor) explicitly.

Knobs: sparse_conv2d has pixel_parallel (over the N slots), filter_parallel (Co) and
channel_parallel (Ci); sparse_pool2d has pixel_parallel and channel_parallel (C); input_reduce,
sparse_activation, sparse_flatten and sparse_quantize have
pixel_parallel (N); dense has reuse_factor (over n_in*n_out products). An option (`pixel`,
`filter`, `channel`, `reuse`) sets that knob on every op that has it (only on the op labelled
`layer=...` when given); a knob left unset keeps the value already in the IR, or else gets its
default (spx_ir.schedule: the published designs' schedule, the one an absent knob means to the
C++ target and the cost model too, so the pass never changes the design or its estimate).
A factor must divide its trip count; otherwise the pass fails naming the op and the valid values.
Idempotent. The C++ target reads these properties; so does the cost model.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass

from passes.cost_model import op_labels
from passes.registry import register_pass
from spx_ir import dialect as spx
from spx_ir.schedule import default_factor, divisors, knobs
from spx_ir.text import SpxError

OPTION_KNOB = {"pixel": "pixel_parallel", "filter": "filter_parallel", "channel": "channel_parallel", "reuse": "reuse_factor"}


def set_schedule(op, sched: dict[str, int]) -> None:
    for knob, value in sched.items():
        setattr(op, knob, IntegerAttr(value, i64))


def check_factor(pass_name: str, option: str, op, label: str, knob: str, value: int, trip: int) -> None:
    if trip % value:
        raise SpxError(f"error: pass '{pass_name}': option {option}={value} does not divide the trip count {trip} of "
                       f"{knob} on {op.name} '{label}'; valid values: {', '.join(map(str, divisors(trip)))}")


@register_pass
@dataclass(frozen=True)
class Unroll(ModulePass):
    """Set parallel/reuse factors (default: the fully parallel published schedule)."""

    name = "spx-unroll"
    pixel: int | None = None
    filter: int | None = None
    channel: int | None = None
    reuse: int | None = None
    layer: str | None = None

    def __post_init__(self):
        for option in OPTION_KNOB:
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"option {option}={value!r} must be a positive integer dividing the loop's trip count")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        labels = op_labels(op)
        if self.layer is not None and self.layer not in labels.values():
            raise SpxError(f"error: pass '{self.name}': option layer={self.layer} names no op; layers: {', '.join(labels.values())}")
        for o, label in labels.items():
            if self.layer is not None and label != self.layer:
                continue
            sched = {}
            for knob, trip in knobs(o).items():
                option = next(k for k, v in OPTION_KNOB.items() if v == knob)
                value = getattr(self, option)
                if value is not None:
                    check_factor(self.name, option, o, label, knob, value, trip)
                elif getattr(o, knob) is not None:
                    value = getattr(o, knob).value.data
                else:
                    value = default_factor(o, knob, trip)
                sched[knob] = value
            set_schedule(o, sched)
