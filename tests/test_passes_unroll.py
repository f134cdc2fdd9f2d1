"""spx-unroll: explicit schedule properties, validated against the loop trip counts."""

import pytest

from passes import run_pipeline
from passes.cost_model import estimate
from spx_ir.text import SpxError, parse_module, print_module
from tests.test_passes_fixed_point import tiny_model


def _schedules(text: str) -> list[str]:
    """`op: knob=value ...` for every op line that has schedule properties."""
    out = []
    for line in text.splitlines():
        knobs = [part.strip() for part in line.replace("{", ",").replace("}", ",").split(",")
                 if part.strip().startswith(("pixel_parallel", "filter_parallel", "channel_parallel", "reuse_factor"))]
        if knobs:
            out.append(line.split("=", 1)[1].split()[0] + ": " + " ".join(k.replace(" : i64", "").replace(" ", "") for k in knobs))
    return out


def test_default_is_the_published_fully_parallel_schedule():
    text = print_module(run_pipeline(tiny_model(), "spx-unroll"))
    assert _schedules(text) == [
        "spx.input_reduce: pixel_parallel=1",  # serial priority search, as published
        "spx.sparse_conv2d: pixel_parallel=4 filter_parallel=2 channel_parallel=1",
        "spx.sparse_activation: pixel_parallel=4",
        "spx.sparse_pool2d: pixel_parallel=4 channel_parallel=2",
        "spx.sparse_flatten: pixel_parallel=4",
        "spx.dense: reuse_factor=1",
    ]
    assert "spx.input_reduce %0 {n_max = 4 : i64, threshold = 0.000000e+00 : f64, pixel_parallel = 1 : i64}" in text
    assert print_module(run_pipeline(parse_module(text), "spx-unroll")) == text  # idempotent


def test_options_set_every_op_that_has_the_knob():
    text = print_module(run_pipeline(tiny_model(), "spx-unroll{pixel=2 filter=1 reuse=4}"))
    assert _schedules(text) == [
        "spx.input_reduce: pixel_parallel=2",
        "spx.sparse_conv2d: pixel_parallel=2 filter_parallel=1 channel_parallel=1",
        "spx.sparse_activation: pixel_parallel=2",
        "spx.sparse_pool2d: pixel_parallel=2 channel_parallel=2",
        "spx.sparse_flatten: pixel_parallel=2",
        "spx.dense: reuse_factor=4",
    ]
    # a later default run keeps what is set; an option overrides it
    assert print_module(run_pipeline(parse_module(text), "spx-unroll")) == text
    again = print_module(run_pipeline(parse_module(text), "spx-unroll{reuse=1}"))
    assert _schedules(again)[-1] == "spx.dense: reuse_factor=1"


def test_layer_option_restricts_to_one_op():
    text = print_module(run_pipeline(tiny_model(), "spx-unroll{pixel=1 layer=sparse_conv2d_1}"))
    assert _schedules(text) == ["spx.sparse_conv2d: pixel_parallel=1 filter_parallel=2 channel_parallel=1"]


def test_schedule_changes_the_estimate():
    _, fast = estimate(run_pipeline(tiny_model(), "spx-unroll"))
    _, slow = estimate(run_pipeline(tiny_model(), "spx-unroll{pixel=1 filter=1 reuse=36}"))
    assert slow.latency > fast.latency and slow.lut < fast.lut


@pytest.mark.parametrize("pipeline,message", [
    ("spx-unroll{pixel=3}", "error: pass 'spx-unroll': option pixel=3 does not divide the trip count 4 of pixel_parallel on "
                            "spx.input_reduce 'input_reduce_1'; valid values: 1, 2, 4"),
    ("spx-unroll{reuse=5}", "option reuse=5 does not divide the trip count 36 of reuse_factor on spx.dense 'dense_1'; "
                            "valid values: 1, 2, 3, 4, 6, 9, 12, 18, 36"),
    ("spx-unroll{filter=0}", "error: pass 'spx-unroll': option filter=0 must be a positive integer"),
    ("spx-unroll{channel=-2}", "option channel=-2 must be a positive integer"),
    ("spx-unroll{pixel=two}", "error: pass 'spx-unroll':"),
    ("spx-unroll{layer=conv9}", "option layer=conv9 names no op; layers: input_reduce_1, sparse_conv2d_1,"),
])
def test_bad_factors_are_rejected_with_the_valid_values(pipeline, message):
    with pytest.raises(SpxError) as err:
        run_pipeline(tiny_model(), pipeline)
    assert message in str(err.value)
