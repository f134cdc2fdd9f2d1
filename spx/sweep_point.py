"""What one design point of `spx sweep` does on a Dask worker: train, compile, verify, estimate, synth.

`run_point(task)` takes the plain dict that spx/sweep.py builds for a point and returns its record (a
JSON-serialisable dict). A failing step ends the point with a one-line error naming the step; what the
earlier steps measured is kept. Nothing here writes into the sweep directory: the driver does (a worker
of a remote cluster may not share its file system), except `keep_projects`, which needs a shared one.

The `synth` step is the hook for the `rtl` target (issue 10): it needs the registry target `rtl` with
`synth(project_dir, timeout=seconds) -> dict` returning measured `latency`, `ii`, `lut`, `ff`, `dsp`
(at the top level or under `total`) and the tool of each figure under `source` or `tools`. Without it
the step fails with one line; no figure is ever made up.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

TOPIC = "spx-sweep"  # worker -> client events: {"key", "address", "pid", "time"} when a point starts
MEASURED = ("latency", "ii", "lut", "ff", "dsp")
_prepared: dict = {}


class StepError(Exception):
    """A step failed for a reason stated in one line."""


def resolve(spec: str, what: str):
    """`module:function` -> the function (imports user code: only from the user's own sweep file)."""
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise StepError(f"cannot load {what} '{spec}': {err}") from None
    if not callable(fn):
        raise StepError(f"{what} '{spec}' is not callable")
    return fn


def prepare_process(log_dir: str | None = None, threads: int = 1) -> float:
    """Once per worker process: send its stdout/stderr to `log_dir`/worker-<pid>.log (embedded cluster),
    limit TensorFlow to `threads` threads and import it. Returns the seconds this took (0 when done)."""
    if _prepared:
        return 0.0
    start = time.perf_counter()
    if log_dir:
        from codegen.writer import OutputDir

        path = OutputDir(log_dir).path(f"worker-{os.getpid()}.log")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    import frontends.keras  # noqa: F401

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its settings
        pass
    _prepared["seconds"] = time.perf_counter() - start
    return _prepared["seconds"]


def _announce(key: str) -> None:
    """Tells the client that this point started running here (for the progress bar and timeouts)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    worker.log_event(TOPIC, {"key": key, "address": worker.address, "pid": os.getpid(), "time": time.time()})


def load_data(task: dict):
    """(x_train, y_train, x_test, y_test), cut to the requested numbers of events."""
    from spx import datasets

    spec, options = task["dataset"], task["dataset_options"]
    data = resolve(spec, "dataset")(**options) if ":" in spec else datasets.load(spec, **options)
    x_train, y_train, x_test, y_test = data
    steps = task["steps"]
    cut = lambda a, n: a if n is None else a[:n]  # noqa: E731
    return (cut(x_train, steps["train_events"]), cut(y_train, steps["train_events"]),
            cut(x_test, steps["test_events"]), cut(y_test, steps["test_events"]))


def build_model(task: dict):
    """The Keras model of the point: a seed architecture or the user's builder(n_max, bits, threshold)."""
    import frontends.keras as fk

    from spx.sweep import SEED_MODELS

    spec, values = task["model"], task["values"]
    build = resolve(spec, "model") if ":" in spec else getattr(fk, SEED_MODELS[spec])
    return build(n_max=values["n_max"], bits=values["bits"], threshold=values["threshold"])


def synth(cm, project_dir: Path, timeout: float | None) -> dict:
    """The `synth` step through the `rtl` target's hook (see the module docstring)."""
    from codegen import available_targets

    target = available_targets().get("rtl")
    if target is None:
        raise StepError("the rtl target is not available in this spx (codegen/rtl, `spx synth`: issue 10)")
    if not callable(getattr(target, "synth", None)):
        raise StepError("the rtl target has no synth(project_dir, timeout=...) function")
    cm.write(project_dir, targets=("numpy", "rtl"), force=True)
    report = target.synth(project_dir, timeout=timeout)
    figures = report.get("total", report)
    missing = [k for k in MEASURED if k not in figures]
    if missing:
        raise StepError(f"the rtl target's synth report lacks {', '.join(missing)}")
    measured = {k: figures[k] for k in MEASURED}
    measured["source"] = report.get("source") or report.get("tools") or "rtl synth"
    return measured


def run_point(task: dict) -> dict:
    """Runs the steps of one point and returns its record (never raises for a failing step)."""
    from spx.demo import csim_mismatches, estimated_cost, evaluate, train

    record = {"status": "ok", "error": None, "accuracy": None, "auc": None, "csim_mismatches": None,
              "test_events": None, "estimate": None, "measured": None, "seconds": {}}
    steps, seconds = task["steps"], record["seconds"]
    seconds["prepare"] = prepare_process(task.get("log_dir"), steps["threads"])
    _announce(task["key"])
    started = time.time()
    step = "data"

    def timed(name, fn, *args):
        nonlocal step
        step = name
        t = time.perf_counter()
        result = fn(*args)
        seconds[name] = round(time.perf_counter() - t, 3)
        return result

    project = None
    try:
        import tf_keras as keras

        keras.utils.set_random_seed(task["seed"])
        x_train, y_train, x_test, y_test = timed("data", load_data, task)
        model = timed("build", build_model, task)
        classes = max(2, int(model.output_shape[-1]))
        record["test_events"] = int(len(x_test))
        if steps["train_epochs"] > 0:
            timed("train", train, model, x_train, y_train, classes, steps["train_epochs"],
                  steps["learning_rate"], 0, steps["batch_size"])
        if not steps["compile"]:
            scores = model.predict(x_test, verbose=0)
            record["accuracy"], record["auc"] = evaluate(scores, y_test, classes)
            return record
        import spx
        from passes.cost_model import CLOCK_NS, SOURCE as COST_SOURCE
        from spx.sweep import compile_pipeline

        cm = timed("compile", lambda: spx.compile(model, pipeline=compile_pipeline(task["values"])))
        step = "evaluate"
        record["accuracy"], record["auc"] = evaluate(cm.predict(x_test), y_test, classes)
        if steps["keep_projects"]:
            project = Path(task["project_dir"])
            timed("write", cm.write, project, ("numpy", "vitis"), True)
        if steps["csim_check"]:
            record["csim_mismatches"] = timed("csim", csim_mismatches, cm, x_test)
        if steps["estimate"]:
            total, _ = timed("estimate", estimated_cost, cm)
            record["estimate"] = {"source": COST_SOURCE, "clock_ns": CLOCK_NS, **total.as_dict(),
                                  "latency_us": round(total.latency * CLOCK_NS / 1000, 6)}
        if steps["synth"]:
            if project is None:
                with tempfile.TemporaryDirectory(prefix="spx-sweep-") as tmp:
                    record["measured"] = timed("synth", synth, cm, Path(tmp) / "project", steps["synth_timeout"])
            else:
                record["measured"] = timed("synth", synth, cm, project, steps["synth_timeout"])
    except StepError as err:
        record.update(status="failed", error=f"{step}: {err}")
    except Exception as err:  # noqa: BLE001  a point's failure is recorded, never raised
        text = str(err).strip().splitlines()
        record.update(status="failed", error=f"{step}: {type(err).__name__}: {text[0] if text else ''}".rstrip(": "))
    finally:
        seconds["total"] = round(time.time() - started, 3)
        record["worker"] = {"host": socket.gethostname(), "pid": os.getpid(), "started": started,
                            "finished": time.time()}
    if record["status"] == "ok" and record["csim_mismatches"]:
        record.update(status="failed", error=f"csim: {record['csim_mismatches']} of {record['test_events']} events "
                                             "differ from the NumPy reference")
    return record
