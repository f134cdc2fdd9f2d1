"""`spx sweep` on Dask: a 2-worker sweep, resumption, corrupted files, killed workers, bad input."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import spx  # noqa: E402
from codegen.writer import OutputDir  # noqa: E402
from spx.cli import spx as spx_cli  # noqa: E402
from spx.sweep_point import run_point  # noqa: E402
from spx.sweep_report import pareto_front  # noqa: E402

SWEEP = {
    "dataset": "mnist",
    "model": "mnist",
    "axes": {"n_max": [8, 12], "bits": [8, 16]},
    "steps": {"train_epochs": 1, "train_events": 256, "test_events": 64, "compile": True, "csim_check": True,
              "estimate": True},
}


def sweep_module():
    import sys

    return sys.modules["spx.sweep"]


@pytest.fixture(scope="module")
def two_worker_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    rows = spx.sweep(SWEEP, out, workers=2, progress=False)
    return out, rows


def test_two_workers_train_compile_verify_and_estimate_every_point(two_worker_sweep):
    out, rows = two_worker_sweep
    assert [(r["n_max"], r["bits"]) for r in rows] == [(8, 8), (8, 16), (12, 8), (12, 16)]
    assert all(r["status"] == "ok" and r["error"] is None for r in rows), rows
    assert all(r["csim_mismatches"] == 0 and r["test_events"] == 64 for r in rows)
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["latency"] > 0 and r["lut"] > 0 for r in rows)
    by = {(r["n_max"], r["bits"]): r for r in rows}
    for bits in (8, 16):  # more pixel slots: a longer input search and more conv copies in the estimate
        assert by[(12, bits)]["latency"] > by[(8, bits)]["latency"]
        assert by[(12, bits)]["lut"] > by[(8, bits)]["lut"]
    records = [json.loads(p.read_text()) for p in sorted((out / "points").glob("*.json"))]
    assert len(records) == 4 and {r["id"] for r in records} == {r["id"] for r in rows}
    assert len({r["worker"]["pid"] for r in records}) == 2  # both worker processes ran points
    assert all(r["estimate"]["source"] == "estimate (vitis cost model)" and r["seconds"]["csim"] > 0 for r in records)
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("id,n_max,bits,threshold,status,accuracy") and len(csv_lines) == 5
    assert "source=estimate" in (out / "results.md").read_text()
    for png in ("pareto_n_max.png", "pareto_bits.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 5000


def test_rerun_does_no_work(two_worker_sweep, monkeypatch):
    out, rows = two_worker_sweep
    stamps = {p: p.stat().st_mtime_ns for p in (out / "points").iterdir()}

    def no_cluster(*args, **kw):
        raise AssertionError("a re-run of a finished sweep must not start or reach a cluster")

    monkeypatch.setattr(sweep_module(), "connect", no_cluster)
    assert spx.sweep(SWEEP, out, workers=2, progress=False) == rows
    assert {p: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == stamps


def test_corrupted_and_edited_point_files_are_recomputed(two_worker_sweep, tmp_path):
    out, rows = two_worker_sweep
    files = sorted((out / "points").glob("*.json"))
    truncated, edited, *kept = files
    truncated.write_text(truncated.read_text()[:100])
    record = json.loads(edited.read_text())
    record["accuracy"] = 0.99  # valid JSON, but not what was computed: the checksum no longer matches
    edited.write_text(json.dumps(record))
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    again = spx.sweep(SWEEP, out, workers=1, progress=False)
    assert all(r["status"] == "ok" for r in again)
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps
    for p in (truncated, edited):
        fresh = json.loads(p.read_text())
        assert fresh["status"] == "ok" and fresh["accuracy"] != 0.99 and fresh["csim_mismatches"] == 0


def test_killed_crashing_and_hanging_points_are_recorded_and_the_rest_completes(tmp_path, monkeypatch, capfd):
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv("SPX_SWEEP_FAULTS", str(faults))  # inherited by the worker processes
    spec = {"dataset": "mnist", "model": "tests.sweep_faults:faulty_model", "axes": {"n_max": [4, 6, 8, 10, 12]},
            "steps": {"train_epochs": 0, "test_events": 32, "csim_check": False, "timeout": 90}}
    result = {}
    runner = threading.Thread(target=lambda: result.update(rows=spx.sweep(spec, tmp_path / "s", workers=2, retries=1,
                                                                          progress=False)))
    runner.start()
    victim = faults / "victim.pid"
    deadline = time.time() + 900  # cluster start and TensorFlow import first (minutes on a loaded machine)
    while not victim.exists() and time.time() < deadline and runner.is_alive():
        time.sleep(0.2)
    assert victim.exists(), "the point with n_max=6 never started"
    pid = int(victim.read_text())
    os.kill(pid, signal.SIGKILL)  # the test terminates a worker process mid-point
    runner.join(timeout=900)
    assert not runner.is_alive()
    rows = {r["n_max"]: r for r in result["rows"]}
    assert rows[4]["status"] == "ok" and rows[6]["status"] == "ok"  # 6 was retried on a fresh worker
    record6 = json.loads((tmp_path / "s" / "points" / f"{rows[6]['id']}.json").read_text())
    assert record6["worker"]["pid"] != pid and record6["estimate"]["latency"] > 0
    assert rows[8]["status"] == "failed" and rows[8]["error"].startswith("worker: the worker process died 2 times")
    assert rows[10]["status"] == "failed" and rows[10]["error"].startswith("timeout: the point ran longer than 90 s")
    assert rows[12]["status"] == "failed" and rows[12]["error"] == "build: RuntimeError: the builder failed"
    assert len(list((tmp_path / "s" / "points").glob("*.json"))) == 5
    err = capfd.readouterr().err  # dask's logs of the dead workers and the workers' own output stay quiet
    assert "Traceback" not in err and "distributed." not in err and "Worker" not in err, err


def _task(tmp_path, **steps):
    sw = sweep_module().load_spec({"dataset": "mnist", "model": "mnist", "axes": {"n_max": 8},
                                   "steps": {"train_epochs": 0, "test_events": 16, "csim_check": False, **steps}})
    return sw.tasks(tmp_path)[0]


def test_synth_without_the_rtl_target_fails_that_step_in_one_line(tmp_path, monkeypatch):
    from codegen import registry

    registry.available_targets()
    monkeypatch.delitem(registry._targets, "rtl", raising=False)
    record = run_point(_task(tmp_path, synth=True))
    assert record["status"] == "failed" and record["measured"] is None
    assert record["error"] == "synth: the rtl target is not available in this spx (codegen/rtl, `spx synth`: issue 10)"
    assert record["estimate"]["latency"] > 0 and record["accuracy"] is not None  # earlier steps are kept


def test_synth_records_what_the_rtl_hook_measures(tmp_path, monkeypatch):
    from codegen import registry

    calls = []

    class FakeRtl:
        name = "rtl"

        def emit(self, module, out_dir, **options):
            OutputDir(out_dir).write_text("top.v", "module top; endmodule\n")

        def synth(self, project_dir, timeout=None):
            calls.append(((Path(project_dir) / "rtl" / "top.v").is_file(), timeout))
            return {"total": {"latency": 12, "ii": 1, "lut": 3456, "ff": 789, "dsp": 0},
                    "source": {"latency": "verilator-5.006", "lut": "yosys-0.23"}}

    registry.available_targets()
    monkeypatch.setitem(registry._targets, "rtl", FakeRtl())
    record = run_point(_task(tmp_path, synth=True, synth_timeout=7))
    assert record["status"] == "ok", record["error"]
    assert record["measured"] == {"latency": 12, "ii": 1, "lut": 3456, "ff": 789, "dsp": 0,
                                  "source": {"latency": "verilator-5.006", "lut": "yosys-0.23"}}
    assert calls == [(True, 7)]  # the project was written with the rtl target before synth ran


def test_pareto_front_keeps_only_undominated_points():
    rows = [{"status": "ok", "accuracy": a, "lut": c} for a, c in [(0.5, 10), (0.6, 20), (0.55, 30), (0.9, 40),
                                                                   (0.9, 50)]]
    rows.append({"status": "failed", "accuracy": 1.0, "lut": 1})
    assert pareto_front(rows, "lut") == [0, 1, 3]


def test_ranges_expand_inclusively():
    sw = sweep_module().load_spec({"dataset": "mnist", "axes": {"n_max": {"from": 8, "to": 20, "step": 4},
                                                                "threshold": {"from": 0.1, "to": 0.3, "step": 0.1}}})
    assert sw.axes["n_max"] == [8, 12, 16, 20] and sw.axes["threshold"] == [0.1, 0.2, 0.3]
    assert len(sw.tasks(Path("/tmp/x"))) == 12 and sw.axes["bits"] == [8]


@pytest.mark.parametrize("axes,steps,message", [
    ({"n_max": [8], "width": [1, 2]}, {}, "error: axes.width: unknown axis; valid: n_max, bits, threshold"),
    ({"n_max": {"from": 12, "to": 8}}, {}, "error: axes.n_max: empty range (from 12 to 8)"),
    ({"n_max": []}, {}, "error: axes.n_max: empty list of values"),
    ({"bits": [8, 12]}, {}, "error: axes.bits: value 12 rejected by model mnist: bits=12 is not supported"),
    ({"n_max": [8], "pixel_parallel.conv1": [2, 3]}, {}, "error: axes.pixel_parallel.conv1: value 3 rejected (n_max=8): "
                                                         "pass 'spx-unroll': option pixel=3 does not divide"),
    ({"reuse_factor.dense9": [2]}, {}, "error: axes.reuse_factor.dense9: value 2 rejected (n_max=20): pass 'spx-unroll': "
                                       "option layer=dense9 names no op"),
    ({"reuse_factor": [2], "tune.lut": [1000]}, {}, "error: axes.tune.lut: cannot be combined with axes.reuse_factor"),
    ({"n_max": [8]}, {"epochs": 3}, "error: steps.epochs: unknown step; valid: train_epochs"),
    ({"n_max": [8]}, {"compile": False}, "error: steps.csim_check: needs steps.compile: true"),
])
def test_bad_sweep_files_fail_in_one_line_before_any_work(tmp_path, capsys, axes, steps, message):
    import yaml

    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"dataset": "mnist", "model": "mnist", "axes": axes, "steps": steps}))
    assert spx_cli(["sweep", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}: {message}") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "s.yml"
    path.write_text("dataset: mnist\naxes: {n_max: [8]}\nsteps: {train_epochs: 0, csim_check: false}\n")
    start = time.time()
    assert spx_cli(["sweep", str(path), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9",
                    "--connect-timeout", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tcp://127.0.0.1:9: error: cannot reach the Dask scheduler") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() and time.time() - start < 60


def test_unknown_builder_module_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.yml"
    path.write_text("dataset: mnist\nmodel: no_such_module:build\naxes: {n_max: [8]}\n")
    assert spx_cli(["sweep", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}: error: model: cannot load model 'no_such_module:build': No module named")
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_schedule_axes_reach_the_compiled_ops_and_a_layer_setting_wins():
    import frontends.keras as fk
    from spx_ir import dialect as sd

    pipeline = sweep_module().compile_pipeline({"n_max": 8, "reuse_factor": 2, "reuse_factor.dense1": 4,
                                                "pixel_parallel.conv1": 2})
    cm = spx.compile(fk.mnist_model(n_max=8, bits=8), pipeline=pipeline)
    ops = {op.attributes["layer"].data: op for op in cm.module.walk() if "layer" in op.attributes}
    dense = {name: op.reuse_factor.value.data for name, op in ops.items() if isinstance(op, sd.DenseOp)}
    assert dense == {"dense1": 4, "dense2": 2}
    assert ops["conv1"].pixel_parallel.value.data == 2 and ops["conv2"].pixel_parallel.value.data == 8
