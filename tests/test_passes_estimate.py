"""spx-estimate and the cost model: annotations in the IR, the report table, calibration."""

import csv

import pytest

from bench.cost_model_calibration import CONFIGS, CSV, PUBLISHED_LATENCY, estimates, neutrino_ir
from passes import run_pipeline
from passes.cost_model import Cost, ModelCost, mult_cost, report_table
from spx_ir.text import SpxError, parse_module, print_module
from tests.test_passes_fixed_point import tiny_model


def test_estimates_are_printed_on_ops_and_model_and_round_trip():
    text = print_module(run_pipeline(tiny_model(), "spx-unroll,spx-estimate"))
    assert ('func.func @tiny(%0: tensor<6x6x1x!spx.fixed<4, 1, unsigned>>) -> tensor<2x!spx.fixed<16, 8>> attributes '
            '{estimate = {source = "estimate (vitis cost model)", latency = 28 : i64, ii = 11 : i64, dsp = 0 : i64, lut = 2923 : i64, '
            'ff = 1392 : i64, bram = 0 : i64, latency_us = 1.400000e-01 : f64, clock_ns = 5.000000e+00 : f64}} {') in text
    # 6x6 pixels: 6 tree levels * 1.6 ns = 2 cycles per slot, 4 slots + 2
    assert ('%1, %2 = spx.input_reduce %0 {estimate = {source = "estimate (vitis cost model)", latency = 10 : i64, ii = 10 : i64, dsp = 0 : i64, '
            'lut = 491 : i64, ff = 228 : i64, bram = 0 : i64}, n_max = 4 : i64,') in text
    # conv: 2 + a chain of N*Ci = 4 steps of (1.25 + 0.044 * 4) ns = 2 cycles
    assert '%5 = spx.sparse_conv2d %1, %2, %3, %4 {estimate = {source = "estimate (vitis cost model)", latency = 4 : i64, ii = 4 : i64,' in text
    assert text.count('source = "estimate (vitis cost model)"') == 7  # six ops and the model; never on spx.const
    assert print_module(parse_module(text)) == text  # survives a round trip
    assert print_module(run_pipeline(parse_module(text), "spx-estimate")) == text  # idempotent


def test_clock_option_rescales_cycles():
    slow = parse_module(print_module(run_pipeline(neutrino_ir(20, 8), "spx-unroll,spx-estimate{clock=10.0}")))
    fast = parse_module(print_module(run_pipeline(neutrino_ir(20, 8), "spx-unroll,spx-estimate")))
    get = lambda m: m.body.block.first_op.attributes["estimate"].data  # noqa: E731
    assert get(slow)["latency"].value.data < get(fast)["latency"].value.data
    assert get(slow)["clock_ns"].value.data == 10.0
    assert get(fast)["latency_us"].value.data == pytest.approx(get(fast)["latency"].value.data * 5e-3)


def test_report_table_names_its_source_and_totals():
    module = run_pipeline(neutrino_ir(20, 8), "spx-unroll")
    table = report_table(module)
    lines = table.splitlines()
    assert "source=estimate" in lines[0] and "latency 132 cycles = 0.660 us, II 83 cycles" in lines[0]
    assert lines[2] == "| op | layer | latency (cycles) | II | DSP | LUT | FF | BRAM18 |"
    assert lines[4].startswith("| spx.input_reduce | input_reduce | 82 | 82 | 0 |")
    assert lines[-1].startswith("| **total** | (dataflow) | 132 | 83 | 60 |")
    assert len(lines) == 4 + 11 + 2  # header, 11 ops, channels, total


def test_dataflow_latency_adds_one_handoff_per_registered_stage():
    module = run_pipeline(neutrino_ir(8, 8), "spx-unroll")
    model = ModelCost(module)
    costs = model.costs()
    stages = [c.latency for c in costs.values()]
    assert model.total(costs).latency == sum(stages) + sum(1 for s in stages if s) - 1
    assert model.total(costs).ii == max(c.ii for c in costs.values()) + 1


def test_multipliers_map_to_dsp_only_when_wide():
    assert mult_cost(8, 8) == (0, 59)  # ceil(K_MUL_LUT * 64)
    assert mult_cost(16, 16) == (1, 0)
    assert mult_cost(22, 22) == (2, 0)
    assert mult_cost(30, 20) == (4, 0)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("model", list(CONFIGS))
def test_top_latency_matches_the_published_designs_within_25_percent(model, bits):
    _, total = estimates(model, bits)
    published = PUBLISHED_LATENCY[(model, bits)]
    assert abs(total.latency - published) <= 0.25 * published, (total, published)
    assert abs(total.ii - (4 * CONFIGS[model] + 2)) <= 2  # input_reduce sets the II (34/51/66/83 + 1)


@pytest.mark.skipif(not CSV.is_file(), reason="shared/calibration/neutrino.csv not present")
def test_module_latencies_match_csynth_within_two_cycles():
    with open(CSV) as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "csynth" and r["model"].startswith("sparse") and r["latency_max"]]
    checked = 0
    for bits in (8, 16):
        for model in CONFIGS:
            layers, total = estimates(model, bits)
            for r in rows:
                if int(r["bits"]) == bits and r["model"] == model and r["module"] in layers:
                    assert abs(layers[r["module"]].latency - int(r["latency_max"])) <= 2, (model, bits, r["module"])
                    checked += 1
                elif int(r["bits"]) == bits and r["model"] == model and r["module"] == "top":
                    assert int(r["latency_max"]) == PUBLISHED_LATENCY[(model, bits)]
    assert checked == 8 * 11


def test_estimate_rejects_bad_clock():
    with pytest.raises(SpxError, match=r"pass 'spx-estimate': option clock=-1.0 must be a positive clock period"):
        run_pipeline(tiny_model(), "spx-estimate{clock=-1.0}")


def test_cost_fields_are_the_reported_columns():
    assert list(Cost().as_dict()) == ["latency", "ii", "dsp", "lut", "ff", "bram"]
