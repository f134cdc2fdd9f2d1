"""One schedule rule (spx_ir.schedule): an absent knob means the same to spx-unroll, the cost model
and the C++ target, and the emitted config structs state the schedule the estimate assumed."""

import re
from pathlib import Path

import pytest
from xdsl.dialects.builtin import StringAttr

from codegen.vitis.emit import emit
from passes import run_pipeline
from passes.cost_model import estimate, op_labels, report_table
from spx_ir.graph import topological_ops
from spx_ir.schedule import knobs, schedule, search
from spx.cli import spx
from spx_ir.text import parse_module, print_module
from tests.ir_samples import every_op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"
MODELS = {"neutrino": lambda: parse_module(EXAMPLE.read_text()), "every_op": every_op_model}


def _config_structs(project: Path) -> list[dict[str, str]]:
    """The `static const` fields of every `struct configK` of parameters.h, in layer order."""
    text = (project / "firmware" / "parameters.h").read_text()
    structs = re.findall(r"struct config(\d+) : \S+ \{(.*?)\n\};", text, re.S)
    return [dict(re.findall(r"static const [\w ]+? (\w+) = ([^;]+);", body)) for _, body in structs]


def _calls(project: Path, name: str) -> list[str]:
    return re.findall(r"spx::(\w+)<[^;]*config\d+>", (project / "firmware" / f"{name}.cpp").read_text())


@pytest.mark.parametrize("name", list(MODELS))
def test_unroll_changes_neither_the_design_nor_its_estimate(name, tmp_path):
    module = MODELS[name]()
    explicit = run_pipeline(MODELS[name](), "spx-unroll")
    assert print_module(explicit) != print_module(module)  # the pass did write every knob
    assert estimate(explicit)[1] == estimate(module)[1]
    assert report_table(explicit) == report_table(module)
    for ops in (list(op_labels(module)), list(op_labels(explicit))):
        assert all(op.name != "spx.input_reduce" or schedule(op) == {"pixel_parallel": 1} for op in ops)
    a, b = emit(module, tmp_path / "a"), emit(explicit, tmp_path / "b")
    assert (a / "firmware" / "parameters.h").read_text().split("\n", 3)[3] == \
        (b / "firmware" / "parameters.h").read_text().split("\n", 3)[3]  # equal but for the banner's IR hash


@pytest.mark.parametrize("pipeline", ["spx-unroll", "spx-unroll{pixel=2}", "spx-unroll{pixel=1 filter=1 channel=1}",
                                      "spx-unroll{reuse=4}"])
def test_config_structs_state_the_schedule_of_every_op(pipeline, tmp_path):
    module = run_pipeline(every_op_model(), pipeline)
    ops = [op for op in topological_ops(module) if op in op_labels(module)]
    project = emit(module, tmp_path / "prj")
    configs, calls = _config_structs(project), _calls(project, "every_op")
    assert len(configs) == len(ops) == len(calls)
    stated = 0
    for op, config, call in zip(ops, configs, calls):
        for knob, value in schedule(op).items():
            assert int(config[knob]) == value, (op.name, knob)
            stated += 1
        if op.name == "spx.input_reduce":
            assert call == f"input_reduce_{search(op)}"
    assert stated == sum(len(knobs(op)) for op in ops) > 5


def test_search_property_selects_the_kernel_and_the_estimate(tmp_path):
    module = every_op_model()
    reduce_op = next(op for op in topological_ops(module) if op.name == "spx.input_reduce")
    tree = estimate(module)[0][reduce_op]
    reduce_op.search = StringAttr("stream")
    stream = estimate(module)[0][reduce_op]
    assert stream.lut < tree.lut and stream.latency != tree.latency
    assert _calls(emit(module, tmp_path / "prj"), "every_op")[0] == "input_reduce_stream"
    assert "search = \"stream\"" in print_module(module)


def _report_and_estimates(module, path: Path, capsys) -> tuple[str, list[str]]:
    """`spx report` on the module's text, and the spx-estimate attributes of the parsed text."""
    path.write_text(print_module(module))
    assert spx(["report", str(path)]) == 0
    out = capsys.readouterr().out
    annotated = run_pipeline(parse_module(path.read_text()), "spx-estimate")
    return out, [str(op.attributes["estimate"]) for op in annotated.walk() if "estimate" in op.attributes]


@pytest.mark.parametrize("name", list(MODELS))
def test_spx_report_and_spx_estimate_are_the_same_with_and_without_unroll(name, tmp_path, capsys):
    report, estimates = _report_and_estimates(MODELS[name](), tmp_path / "plain.mlir", capsys)
    assert len(estimates) > 5 and "latency" in report
    same = _report_and_estimates(run_pipeline(MODELS[name](), "spx-unroll"), tmp_path / "unrolled.mlir", capsys)
    assert same == (report, estimates)
    # the comparison sees a schedule change: a different schedule gives different figures
    other = _report_and_estimates(run_pipeline(MODELS[name](), "spx-unroll{filter=1}"), tmp_path / "other.mlir", capsys)
    assert other[0] != report and other[1] != estimates


def test_rtl_target_accepts_the_search_structure_as_a_vitis_choice():
    """The rtl target lowers an input_reduce with `search` (e.g. from hls4ml's Variant) and lists it
    among the schedule attributes it does not honour (its search is one fully parallel function)."""
    from codegen.rtl.lower import SCHEDULE_NOTES, lower
    from tests.test_rtl_models import tiny_model

    module = tiny_model()
    reduce_op = next(op for op in module.walk() if op.name == "spx.input_reduce")
    reduce_op.search = StringAttr("stream")
    functions = lower(module).functions
    assert functions[0].op_name == "spx.input_reduce" and "search" in functions[0].ignored
    assert "search" in SCHEDULE_NOTES
