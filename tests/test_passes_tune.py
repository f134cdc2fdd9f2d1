"""spx-tune: schedules chosen with the cost model under budgets and latency/II targets."""

import pytest

from bench.cost_model_calibration import neutrino_ir
from passes import run_pipeline
from passes.cost_model import estimate
from spx_ir.text import SpxError, parse_module, print_module
from tests.test_passes_fixed_point import tiny_model
from tests.test_passes_unroll import _schedules


def test_without_goals_it_is_the_fastest_schedule():
    assert print_module(run_pipeline(tiny_model(), "spx-tune")) == print_module(run_pipeline(tiny_model(), "spx-unroll"))


def test_lut_budget_on_the_tiny_model_in_ir_text():
    text = print_module(run_pipeline(tiny_model(), "spx-tune{lut=2000}"))
    assert _schedules(text) == [
        "spx.input_reduce: pixel_parallel=1",
        "spx.sparse_conv2d: pixel_parallel=2 filter_parallel=2 channel_parallel=1",
        "spx.sparse_activation: pixel_parallel=4",
        "spx.sparse_pool2d: pixel_parallel=4 channel_parallel=2",
        "spx.sparse_flatten: pixel_parallel=4",
        "spx.dense: reuse_factor=9",
    ]
    assert estimate(parse_module(text))[1].lut <= 2000
    assert print_module(run_pipeline(parse_module(text), "spx-tune{lut=2000}")) == text  # idempotent


@pytest.mark.parametrize("bits", [8, 16])
def test_half_the_dsps_of_the_fully_parallel_design(bits):
    _, full = estimate(run_pipeline(neutrino_ir(20, bits), "spx-unroll"))
    budget = full.dsp // 2
    module = run_pipeline(neutrino_ir(20, bits), f"spx-tune{{dsp={budget}}}")  # verified after the pass
    text = print_module(module)
    _, tuned = estimate(parse_module(text))
    assert tuned.dsp <= budget < full.dsp
    assert tuned.latency >= full.latency  # paid for in latency
    assert print_module(run_pipeline(module, f"spx-tune{{dsp={budget}}}")) == text


def test_latency_targets_trade_latency_for_resources():
    _, fastest = estimate(run_pipeline(neutrino_ir(20, 16), "spx-unroll"))
    points = []
    for factor in (1, 2, 4):
        target = fastest.latency * factor
        _, tuned = estimate(run_pipeline(neutrino_ir(20, 16), f"spx-tune{{latency={target}}}"))
        assert tuned.latency <= target
        points.append(tuned)
    assert points[0] == fastest
    assert points[0].lut > points[1].lut > points[2].lut
    assert points[0].dsp > points[1].dsp > points[2].dsp


def test_budget_and_target_together():
    module = run_pipeline(tiny_model(), "spx-tune{lut=2000 latency=40}")
    _, tuned = estimate(module)
    assert tuned.lut <= 2000 and tuned.latency <= 40


@pytest.mark.parametrize("pipeline,message", [
    ("spx-tune{dsp=0}", "error: pass 'spx-tune': no schedule fits dsp<=0; the most serial schedule the cost model knows "
                        "needs dsp=44 "),
    ("spx-tune{latency=100}", "error: pass 'spx-tune': no schedule meets latency<=100; the fastest schedule the search finds "
                              "has dsp=5184 lut=464084 ff=217111 bram=0 latency=135 ii=83 (vitis cost model estimate)"),
    ("spx-tune{dsp=100 latency=150}", "no schedule meets latency<=150; the fastest schedule the search finds within dsp<=100 has"),
    ("spx-tune{dsp=-1}", "error: pass 'spx-tune': option dsp=-1 must be an integer >= 0"),
    ("spx-tune{ii=0}", "error: pass 'spx-tune': option ii=0 must be an integer >= 1"),
    ("spx-tune{lut=many}", "error: pass 'spx-tune': "),
    ("spx-tune{clock=0}", "error: pass 'spx-tune': option clock=0 must be a positive clock period in ns"),
])
def test_impossible_goals_and_bad_options_are_one_line_errors(pipeline, message):
    with pytest.raises(SpxError) as err:
        run_pipeline(neutrino_ir(20, 16), pipeline)
    assert message in str(err.value) and "\n" not in str(err.value)
