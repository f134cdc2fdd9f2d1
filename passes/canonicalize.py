"""canonicalize: local clean-ups that never change what the model computes.

- a `linear` activation (sparse or dense) whose result type equals its input type is the
  identity: its uses are replaced by its input and it is erased;
- pure ops whose results are unused (dead weights, dead layers) are erased.
Assumes verified IR; idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.traits import Pure

from passes.registry import register_pass
from spx_ir import dialect as spx


@register_pass
@dataclass(frozen=True)
class Canonicalize(ModulePass):
    """Drop identity linear activations and dead pure ops."""

    name = "canonicalize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for act in [o for o in op.walk() if isinstance(o, spx.SparseActivationOp | spx.ActivationOp)]:
            source = act.feat if isinstance(act, spx.SparseActivationOp) else act.input
            if act.kind.data == "linear" and act.result.type == source.type:
                act.result.replace_all_uses_with(source)
                act.detach()
                act.erase()
        changed = True
        while changed:
            changed = False
            for dead in [o for o in op.walk() if o.has_trait(Pure) and o.results and all(r.first_use is None for r in o.results)]:
                dead.detach()
                dead.erase()
                changed = True
