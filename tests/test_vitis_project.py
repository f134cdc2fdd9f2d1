"""The Vitis HLS project: test bench run to 0 mismatches, tcl script, files, output-directory safety,
g++ errors, and bad input to the C simulation."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerAttr, i64

from codegen import get_target
from codegen.numpy.emit import load as numpy_load
from codegen.vitis.csim import WARNING_FLAGS
from codegen.vitis.csim import load as csim_load
from codegen.vitis.emit import DEFAULT_PART, MARKER, emit
from codegen.vitis.toolchain import CompileError, compile_cpp
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedType
from spx_ir.graph import topological_ops
from spx_ir.text import SpxError, parse_module
from tests.ir_samples import every_op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


def build_testbench(project: Path, name: str, extra_flags=()) -> Path:
    """g++ -Wall -Wextra -Werror on the test bench and the firmware (HLS pragmas aside)."""
    sources = [project / "tb" / f"{name}_test.cpp", project / "firmware" / f"{name}.cpp"]
    suffix = "_as_synthesized" if extra_flags else ""
    return compile_cpp(sources, project / f"tb_{name}{suffix}", extra_flags=WARNING_FLAGS + tuple(extra_flags))


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """The neutrino example and every_op_model() as projects, their test benches compiled."""
    modules = {"neutrino_sparse": parse_module(EXAMPLE.read_text()), "every_op": every_op_model()}
    dirs = {name: emit(m, tmp_path_factory.mktemp(name) / "prj") for name, m in modules.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        exes = dict(zip(dirs, pool.map(lambda n: build_testbench(dirs[n], n), dirs)))
    return {name: (modules[name], dirs[name], exes[name]) for name in modules}


@pytest.mark.parametrize("name", ["neutrino_sparse", "every_op"])
def test_testbench_passes_every_event(projects, name):
    _, project, exe = projects[name]
    run = subprocess.run([str(exe)], cwd=project, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "100 passed, 0 failed"


@pytest.mark.parametrize("name", ["neutrino_sparse", "every_op"])
def test_testbench_passes_with_the_synthesized_loops(projects, name):
    """The kernels' C-simulation-only shortcuts (dense skipping zero inputs) change no output: the
    loops HLS synthesizes, compiled by g++, pass the same reference events."""
    _, project, _ = projects[name]
    exe = build_testbench(project, name, ["-DSPX_CSIM_AS_SYNTHESIZED"])
    run = subprocess.run([str(exe)], cwd=project, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "100 passed, 0 failed"


def test_testbench_reports_mismatches(projects, tmp_path):
    _, project, exe = projects["every_op"]
    data = tmp_path / "tb_data"
    data.mkdir()
    (data / "tb_input_raw.dat").write_text((project / "tb_data" / "tb_input_raw.dat").read_text())
    rows = (project / "tb_data" / "tb_output_raw.dat").read_text().splitlines()
    first = rows[3].split()
    rows[3] = " ".join([str(int(first[0]) + 1), *first[1:]])
    (data / "tb_output_raw.dat").write_text("\n".join(rows) + "\n")
    run = subprocess.run([str(exe), str(data)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "event 3, output 0" in run.stdout and run.stdout.strip().endswith("99 passed, 1 failed")


def test_tcl_script(projects, tmp_path):
    _, project, _ = projects["neutrino_sparse"]
    tcl = (project / "build_prj.tcl").read_text()
    assert re.search(r"^set_top neutrino_sparse$", tcl, re.M)
    assert re.search(r"^add_files firmware/neutrino_sparse\.cpp\b", tcl, re.M)
    assert re.search(r"^add_files -tb tb/neutrino_sparse_test\.cpp\b", tcl, re.M)
    assert re.search(r"^add_files -tb tb_data$", tcl, re.M)
    assert re.search(rf"^set part {DEFAULT_PART}$", tcl, re.M) and re.search(r"^set_part \$part$", tcl, re.M)
    assert re.search(r"^set clock_period 5$", tcl, re.M) and re.search(r"^create_clock -period \$clock_period", tcl, re.M)
    for step in ("csim_design", "csynth_design", "cosim_design", "export_design"):
        assert re.search(rf"if {{\$opt\(\w+\)}} {{ {step}\b", tcl), step
    for path in re.findall(r"^add_files (?:-tb )?(\S+)", tcl, re.M):
        assert (project / path).exists(), path
    other = emit(every_op_model(), tmp_path / "p", part="xc7z020clg400-1", clock_period=3.3)
    tcl = (other / "build_prj.tcl").read_text()
    assert "set part xc7z020clg400-1\n" in tcl and "set clock_period 3.3\n" in tcl


def test_project_files_follow_the_ir(projects):
    module, project, _ = projects["every_op"]
    marker = json.loads((project / MARKER).read_text())
    assert marker["generator"] == "spx" and marker["target"] == "vitis" and marker["name"] == "every_op"
    assert len(marker["ir_sha256"]) == 64 and "firmware/every_op.cpp" in marker["files"]
    assert all((project / f).is_file() for f in marker["files"])
    # weights are the IR's raw integers, exactly
    conv = next(op for op in topological_ops(module) if op.name == "spx.sparse_conv2d")
    text = (project / "firmware" / "weights" / "w2.h").read_text()
    values = [int(v) for v in re.search(r"\{([^}]*)\}", text)[1].replace("\n", " ").split(",")]
    assert values == conv.weight.owner.raw().reshape(-1).tolist()
    params = (project / "firmware" / "parameters.h").read_text()
    assert "typedef ap_fixed<24,12> accum_t;" in params  # the op's explicit accumulator
    assert "struct config2 : spx::sparse_conv2d_config {" in params
    top = (project / "firmware" / "every_op.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "#pragma HLS INTERFACE ap_vld port=x" in top
    assert (project / "README.md").read_text().count("vitis_hls -f build_prj.tcl") >= 1


def test_schedule_attributes_reach_the_configs(tmp_path):
    module = every_op_model(n_max=4)
    for op in topological_ops(module):
        if op.name == "spx.sparse_conv2d":
            op.pixel_parallel, op.filter_parallel = IntegerAttr(2, i64), IntegerAttr(1, i64)
        if op.name == "spx.dense":
            op.reuse_factor = IntegerAttr(4, i64)
    params = (emit(module, tmp_path / "p") / "firmware" / "parameters.h").read_text()
    conv = params[params.index("struct config2"):]
    assert "pixel_parallel = 2;" in conv[:600] and "filter_parallel = 1;" in conv[:600]
    assert "reuse_factor = 4;" in params
    kernels = (tmp_path / "p" / "firmware" / "spx")
    assert "#pragma HLS UNROLL factor=CONFIG_T::pixel_parallel" in (kernels / "spx_sparse_conv2d.h").read_text()
    assert "for (unsigned r = 0; r < CONFIG_T::reuse_factor; r++)" in (kernels / "spx_dense.h").read_text()


# --------------------------------------------------------------------------- output directory


def test_refuses_an_existing_directory_that_is_not_an_spx_project(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SpxError) as err:
        emit(every_op_model(), out)
    assert "\n" not in str(err.value) and "not an spx project" in str(err.value) and str(out) in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    emit(every_op_model(), out, force=True)  # forced: written, the user's file left alone
    assert (out / "notes.txt").read_text() == "keep me" and (out / MARKER).is_file()


def test_rewrites_its_own_project_and_removes_stale_files(tmp_path):
    out = emit(every_op_model(), tmp_path / "p")
    assert (out / "firmware" / "weights" / "w9.h").is_file()
    b = ModelBuilder("tiny", [4], FixedType(8, 3))
    module = b.finish([b.activation(b.input, "relu", FixedType(8, 3))])
    emit(module, out)  # an spx project: no force needed
    assert not (out / "firmware" / "weights").exists() or not any((out / "firmware" / "weights").iterdir())
    assert not (out / "firmware" / "every_op.cpp").exists() and (out / "firmware" / "tiny.cpp").is_file()


def test_never_writes_outside_the_output_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = emit(every_op_model(), tmp_path / "p")
    for f in (out / "firmware").rglob("*"):
        if f.is_file():
            f.unlink()
    for d in sorted((out / "firmware").rglob("*"), reverse=True):
        d.rmdir()
    (out / "firmware").rmdir()
    (out / "firmware").symlink_to(outside)  # a link inside the project pointing out of it
    with pytest.raises(SpxError, match="refusing to write through a symlink"):
        emit(every_op_model(), out)
    assert not any(outside.iterdir())


def test_unsafe_model_names_become_safe_identifiers(tmp_path):
    for k, name in enumerate(("../escape", "has space", "int", "layer3_t", "spx_run")):
        b = ModelBuilder(name, [4], FixedType(8, 3))
        out = emit(b.finish([b.activation(b.input, "relu", FixedType(8, 3))]), tmp_path / f"p{k}")
        top = json.loads((out / MARKER).read_text())["name"]
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", top) and top != name and (out / "firmware" / f"{top}.cpp").is_file()
        assert not re.fullmatch(r"layer\d+_t|spx_\w+", top)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p{k}" for k in range(5)]


def test_refuses_a_conversion_that_aborts_ap_fixed_csim(tmp_path):
    b = ModelBuilder("aborts", [4, 4, 1], FixedType(10, 1, signed=False))
    feat, hash_ = b.input_reduce(b.input, n_max=4, feat_t=FixedType(4, 6, False, "RND_ZERO", "SAT_SYM"))
    with pytest.raises(SpxError, match=r"^error: vitis target: input_reduce_1: cannot assign") as err:
        emit(b.finish([feat]), tmp_path / "p")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------- toolchain


def test_gxx_errors_name_the_generated_file_and_line(tmp_path):
    out = emit(every_op_model(), tmp_path / "p")
    params = out / "firmware" / "parameters.h"
    lines = params.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("struct config2"))
    lines.insert(at, "typedef no_such_type broken_t;")
    params.write_text("\n".join(lines) + "\n")
    with pytest.raises(CompileError) as err:
        build_testbench(out, "every_op")
    assert re.search(rf"parameters\.h:{at + 1}:\d+: error: .*no_such_type", str(err.value)), str(err.value)


def test_registry_and_csim_input_checks():
    target = get_target("vitis")
    module = every_op_model()
    sim = target.load(module)
    x = np.zeros((3, 8, 8, 1))
    x[1, 2, 3, 0] = 0.75
    for bad, message in [(np.zeros((3, 8, 8)), r"expected input shape \(B, 8, 8, 1\)"),
                         (np.zeros((2, 8, 8, 2)), "expected input shape"),
                         (np.array([["a"]]), "not numeric")]:
        with pytest.raises(ValueError, match=message):
            sim.predict_raw(bad)
    for value in (np.nan, np.inf):
        x_bad = x.copy()
        x_bad[2, 0, 0, 0] = value
        with pytest.raises(ValueError, match="event 2 contains NaN or Inf"):
            sim.predict(x_bad)
    ref = numpy_load(module)
    np.testing.assert_array_equal(sim.predict(x), ref.predict(x))
    np.testing.assert_array_equal(sim.predict_raw(x[1]), ref.predict_raw(x[1]))  # one event, no batch axis
    assert sim.predict_raw(np.zeros((0, 8, 8, 1))).shape == (0, 5)
    assert sim.LAYERS == ref.LAYERS and sim.INPUT_SHAPE == ref.INPUT_SHAPE


def test_multiple_outputs_and_shared_values_match(tmp_path):
    """A value read by several layers (cloned) and returned as well (copied to its port)."""
    b = ModelBuilder("fanout", [6, 6, 2], FixedType(8, 2))
    feat, hash_ = b.input_reduce(b.input, n_max=5)
    relu = b.sparse_activation(feat, hash_, "relu", FixedType(8, 2, False))
    flat = b.sparse_flatten(relu, hash_, 6, 6)
    module = b.finish([relu, flat, b.sparse_activation(feat, hash_, "sigmoid", FixedType(8, 0, False)), relu])
    sim = csim_load(module)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 2, size=(500, 6, 6, 2)) * (rng.random((500, 6, 6, 2)) < 0.2)
    for got, expected in zip(sim.predict_raw(x), numpy_load(module).predict_raw(x)):
        np.testing.assert_array_equal(got, expected)
    top = (sim.library.parent / "firmware" / "fanout.cpp").read_text()
    assert "spx::clone<" in top and "spx::copy<" in top
