"""Schedules: the one rule for what an op's schedule properties mean, absent ones included.

Every op with a loop over slots, filters, channels or products has schedule knobs (optional
properties): `pixel_parallel` (slots), `filter_parallel` (sparse_conv2d's Co), `channel_parallel`
(sparse_conv2d's Ci, sparse_pool2d's C) and `reuse_factor` (dense's n_in*n_out products), plus input_reduce's `search`
("tree" | "stream"). A parallel factor is the number of loop iterations run at once (it divides the
trip count); the reuse factor is the number of sequential steps. `schedule(op)` is what the C++
target emits, what the cost model estimates and what spx-unroll writes when it makes a schedule
explicit: an absent knob means its DEFAULT below, everywhere.

Defaults (the published SparsePixels designs): fully parallel (factor = trip count, reuse 1),
except input_reduce: its N slot searches form a dependence chain (each clears the pixel it found)
that unrolling only replicates without shortening, so its default is pixel_parallel = 1 (one tree
search per pipelined iteration) and search = "tree".
"""

from __future__ import annotations

from xdsl.ir import Operation

from spx_ir import dialect as spx

SEARCHES = spx.INPUT_SEARCHES  # balanced priority tree per slot | raster scan, one pixel per clock
DEFAULT_SEARCH = "tree"


def knobs(op: Operation) -> dict[str, int]:
    """The op's integer schedule knobs and the trip count each must divide ({} for ops without any)."""
    if isinstance(op, spx.SparseConv2DOp):
        n, ci = op.feat.type.get_shape()
        return {"pixel_parallel": n, "filter_parallel": op.weight.type.get_shape()[3], "channel_parallel": ci}
    if isinstance(op, spx.SparsePool2DOp):
        n, c = op.feat.type.get_shape()
        return {"pixel_parallel": n, "channel_parallel": c}
    if isinstance(op, spx.InputReduceOp | spx.SparseActivationOp | spx.SparseFlattenOp | spx.SparseQuantizeOp):
        return {"pixel_parallel": op.hash.type.get_shape()[0]}
    if isinstance(op, spx.DenseOp):
        n_in, n_out = op.weight.type.get_shape()
        return {"reuse_factor": n_in * n_out}
    return {}


def default_factor(op: Operation, knob: str, trip: int) -> int:
    """The value an absent knob means: fully parallel, except reuse (1) and input_reduce's slots (1)."""
    if knob == "reuse_factor" or isinstance(op, spx.InputReduceOp):
        return 1
    return trip


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def schedule(op: Operation) -> dict[str, int]:
    """The op's schedule: each knob's stated value, or its default when absent."""
    out = {}
    for knob, trip in knobs(op).items():
        attr = getattr(op, knob)
        out[knob] = attr.value.data if attr is not None else default_factor(op, knob, trip)
    return out


def search(op: spx.InputReduceOp) -> str:
    """input_reduce's search structure: the `search` property, else the default tree."""
    return op.search.data if op.search is not None else DEFAULT_SEARCH
