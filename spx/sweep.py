"""`spx sweep SWEEP.yml -o DIR` and `spx.sweep(...)`: design-space sweeps of SparsePixels models on Dask.

A sweep file names the data, the model and the axes; every combination of axis values is one point:

    dataset: mnist            # mnist | lartpc | jets, or module:function -> (x_train, y_train, x_test, y_test)
    dataset_options: {}       # keyword arguments for the loader (e.g. n_events: 2000 for lartpc)
    model: mnist              # neutrino | jet | mnist, or module:function(n_max=, bits=, threshold=) -> tf_keras model
    seed: 0
    axes:                     # a list, one value, or an inclusive range {from: 8, to: 20, step: 4}
      n_max: [8, 12]          # defaults: n_max 20, bits 8, threshold: the dataset's (mnist 0.5, else 0)
      bits: [8, 16]           # None = float model
      threshold: 0.5
      reuse_factor.dense1: [1, 4]   # pixel_parallel | filter_parallel | channel_parallel | reuse_factor[.LAYER]
      tune.lut: [20000, 40000]      # spx-tune budgets/targets: dsp lut ff bram latency ii (not with the knobs)
    steps:                    # defaults shown
      train_epochs: 1         # from scratch, Adam; train_events / test_events cut the data (default: all)
      compile: true           # spx.compile with the axes' schedule
      csim_check: true        # NumPy reference == C simulation on the test events (a mismatch fails the point)
      estimate: true          # vitis cost model estimate
      synth: false            # measured figures through the rtl target (spx/sweep_point.py: the hook)
      timeout: null           # seconds per point; its worker is restarted when exceeded

Points run on a Dask cluster: an embedded LocalCluster (one single-threaded worker process per core,
started and stopped here) or a running scheduler (`scheduler="tcp://host:8786"`). Each point's record is
`DIR/points/<id>.json`, written atomically by this process as the point finishes; its id hashes the
point's configuration and spx's version, so a re-run skips finished points (and recomputes a missing,
corrupted or stale file). A worker that dies mid-point is replaced and the point retried (`retries`
times); a point that fails is recorded with a one-line error and the others go on.
`DIR/results.csv`, `DIR/results.md` and the Pareto plots `DIR/pareto_<axis>.png` summarise the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from spx_ir.text import SpxError

SEED_MODELS = {"mnist": "mnist_model", "neutrino": "neutrino_model", "jet": "jet_model"}
DATASET_MODEL = {"mnist": "mnist", "lartpc": "neutrino", "jets": "jet"}
MODEL_AXES = {"n_max": 20, "bits": 8, "threshold": None}  # default values (threshold: the dataset's)
KNOBS = {"pixel_parallel": "pixel", "filter_parallel": "filter", "channel_parallel": "channel", "reuse_factor": "reuse"}
TUNE_OPTIONS = {"dsp": 0, "lut": 0, "ff": 0, "bram": 0, "latency": 1, "ii": 1}  # option: lowest value
STEPS = {"train_epochs": 1, "train_events": None, "test_events": None, "batch_size": 64, "learning_rate": 3e-3,
         "compile": True, "csim_check": True, "estimate": True, "synth": False, "synth_timeout": None,
         "timeout": None, "keep_projects": False, "threads": 1}
RESULT_NEUTRAL_STEPS = ("timeout", "keep_projects", "synth_timeout")  # do not change a point's result
TOP_KEYS = ("dataset", "dataset_options", "model", "seed", "axes", "steps")
MARKER = "sweep.json"
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "TF_NUM_INTRAOP_THREADS": "1",
              "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


def spx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spx")
    except PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------- the sweep file


class Sweep:
    """A validated sweep: data, model, ordered axes {key: [values]} and steps."""

    def __init__(self, spec: dict, where: str):
        self.where = where
        if not isinstance(spec, dict):
            self.fail("", "a sweep file is a mapping with keys " + ", ".join(TOP_KEYS))
        for key in spec:
            if key not in TOP_KEYS:
                self.fail(str(key), f"unknown key; valid keys: {', '.join(TOP_KEYS)}")
        self.dataset = self._name(spec, "dataset", None, tuple(DATASET_MODEL))
        self.model = self._name(spec, "model", DATASET_MODEL.get(self.dataset), tuple(SEED_MODELS))
        self.dataset_options = spec.get("dataset_options") or {}
        if not isinstance(self.dataset_options, dict):
            self.fail("dataset_options", "must be a mapping of keyword arguments for the dataset loader")
        self.seed = spec.get("seed", 0)
        if not _is_int(self.seed):
            self.fail("seed", f"must be an integer, got {self.seed!r}")
        self.steps = self._steps(spec.get("steps") or {})
        self.axes = self._axes(spec.get("axes") or {})

    def fail(self, key: str, message: str):
        raise SpxError(f"{self.where}: error: {key + ': ' if key else ''}{message}")

    def _name(self, spec, key, default, builtin):
        value = spec.get(key, default)
        if value is None:
            self.fail(key, f"missing; one of {', '.join(builtin)} or module:function")
        if not isinstance(value, str) or (value not in builtin and not _is_module_function(value)):
            self.fail(key, f"unknown {key} {value!r}; one of {', '.join(builtin)} or module:function")
        return value

    def _steps(self, steps) -> dict:
        if not isinstance(steps, dict):
            self.fail("steps", "must be a mapping")
        for key, value in steps.items():
            if key not in STEPS:
                self.fail(f"steps.{key}", f"unknown step; valid: {', '.join(STEPS)}")
            default = STEPS[key]
            if isinstance(default, bool) or key == "keep_projects":
                if not isinstance(value, bool):
                    self.fail(f"steps.{key}", f"must be true or false, got {value!r}")
            elif key in ("learning_rate", "timeout", "synth_timeout"):
                if value is not None and (not _is_number(value) or value <= 0):
                    self.fail(f"steps.{key}", f"must be a positive number, got {value!r}")
            elif value is not None or default is not None:
                low = 0 if key == "train_epochs" else 1
                if not _is_int(value) or value < low:
                    self.fail(f"steps.{key}", f"must be an integer >= {low}, got {value!r}")
        steps = {**STEPS, **steps}
        for key in ("csim_check", "estimate", "synth", "keep_projects"):
            if steps[key] and not steps["compile"]:
                self.fail(f"steps.{key}", "needs steps.compile: true")
        return steps

    def _axes(self, axes) -> dict:
        if not isinstance(axes, dict):
            self.fail("axes", "must be a mapping of axis: values")
        out = {}
        for key, spec in axes.items():
            where = f"axes.{key}"
            kind = axis_kind(str(key))
            if kind is None:
                self.fail(where, "unknown axis; valid: n_max, bits, threshold, "
                                 + ", ".join(f"{k}[.LAYER]" for k in KNOBS) + ", "
                                 + ", ".join(f"tune.{o}" for o in TUNE_OPTIONS))
            values = self._values(where, spec)
            for v in values:
                self._check_value(where, kind, str(key), v)
            if len(set(map(json.dumps, values))) != len(values):
                self.fail(where, f"repeated value in {values}")
            out[str(key)] = values
        has_knob = [k for k in out if axis_kind(k) == "knob"]
        has_tune = [k for k in out if axis_kind(k) == "tune"]
        if has_knob and has_tune:
            self.fail(f"axes.{has_tune[0]}", f"cannot be combined with axes.{has_knob[0]} (spx-tune chooses every factor)")
        if (has_knob or has_tune) and not self.steps["compile"]:
            self.fail(f"axes.{(has_knob + has_tune)[0]}", "needs steps.compile: true")
        for axis, default in MODEL_AXES.items():
            if axis not in out:
                if axis == "threshold":
                    default = _default_threshold(self.dataset)
                out[axis] = [default]
        return out

    def _values(self, where: str, spec) -> list:
        if isinstance(spec, dict):
            unknown = set(spec) - {"from", "to", "step"}
            if unknown or "from" not in spec or "to" not in spec:
                self.fail(where, "a range is {from: A, to: B, step: S} (inclusive; step defaults to 1)")
            start, stop, step = spec["from"], spec["to"], spec.get("step", 1)
            if not all(_is_number(v) for v in (start, stop, step)) or step <= 0:
                self.fail(where, f"range bounds and a positive step must be numbers, got {spec}")
            if start > stop:
                self.fail(where, f"empty range (from {start} to {stop})")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            as_int = all(_is_int(v) for v in (start, stop, step))
            values = [start + i * step if as_int else round(start + i * step, 12) for i in range(count)]
        elif isinstance(spec, list):
            values = spec
        else:
            values = [spec]
        if not values:
            self.fail(where, "empty list of values")
        return values

    def _check_value(self, where: str, kind: str, key: str, v) -> None:
        if kind == "n_max" and not (_is_int(v) and v >= 1):
            self.fail(where, f"value {v!r} is not a positive integer")
        if kind == "bits" and v is not None and not (_is_int(v) and v >= 1):
            self.fail(where, f"value {v!r} is not a positive integer or null (float)")
        if kind == "threshold" and not (_is_number(v) and math.isfinite(v) and v >= 0):
            self.fail(where, f"value {v!r} is not a finite number >= 0")
        if kind == "knob" and not (_is_int(v) and v >= 1):
            self.fail(where, f"value {v!r} is not a positive integer")
        if kind == "tune":
            low = TUNE_OPTIONS[key.split(".", 1)[1]]
            if not (_is_int(v) and v >= low):
                self.fail(where, f"value {v!r} is not an integer >= {low}")

    def tasks(self, out_dir: Path, log_dir: str | None = None) -> list[dict]:
        """One plain dict per point (what a worker needs), in the order of the axes' product."""
        from codegen.names import safe_identifier

        version = spx_version()
        steps_key = {k: v for k, v in self.steps.items() if k not in RESULT_NEUTRAL_STEPS}
        result = []
        keys = list(self.axes)
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            values = dict(zip(keys, combo))
            config = {"dataset": self.dataset, "dataset_options": self.dataset_options, "model": self.model,
                      "seed": self.seed, "values": dict(sorted(values.items())), "steps": steps_key, "spx": version}
            digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
            point_id = safe_identifier(f"p_{digest[:16]}")
            result.append({**config, "values": values, "steps": self.steps, "id": point_id, "hash": digest,
                           "key": f"spx-sweep-{point_id}", "log_dir": log_dir,
                           "project_dir": str(Path(out_dir) / "projects" / point_id)})
        return result


def axis_kind(key: str) -> str | None:
    if key in MODEL_AXES:
        return key
    head, _, tail = key.partition(".")
    if head in KNOBS and (tail == "" or tail):
        return "knob"
    if head == "tune" and tail in TUNE_OPTIONS:
        return "tune"
    return None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_module_function(text: str) -> bool:
    module, sep, name = text.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".")) and name.isidentifier()


def _default_threshold(dataset: str) -> float:
    from spx.demo import DATASETS

    return float(DATASETS[dataset][2]) if dataset in DATASETS else 0.0


def load_spec(spec) -> Sweep:
    """A Sweep from a YAML/JSON file path or a dict; one-line SpxError for any problem."""
    if isinstance(spec, dict):
        return Sweep(spec, "sweep")
    path = Path(spec)
    if not path.is_file():
        raise SpxError(f"{spec}: error: no such file")
    try:
        import yaml

        data = yaml.safe_load(path.read_text())
    except Exception as err:  # noqa: BLE001  any parse failure is the user's file
        raise SpxError(f"{spec}: error: cannot read sweep file: {str(err).splitlines()[0]}") from None
    return Sweep(data, str(spec))


# ----------------------------------------------------------------------------- checks against the model


def compile_pipeline(values: dict):
    """The default pipeline with the point's schedule: per-knob spx-unroll passes or spx-tune budgets."""
    from xdsl.passes import PassPipeline

    from passes.registry import available_passes, parse_pipeline
    from spx.api import default_pipeline

    registry = available_passes()
    base = list(parse_pipeline(default_pipeline()).passes)
    names = [p.name for p in base]
    at = names.index("spx-unroll") if "spx-unroll" in names else len(base)
    unroll = []
    for key, value in values.items():  # model-wide settings first, so that a layer's own setting wins
        if axis_kind(key) == "knob":
            knob, _, layer = key.partition(".")
            unroll.append((layer != "", registry["spx-unroll"](**{KNOBS[knob]: value, "layer": layer or None})))
    unroll = [p for _, p in sorted(unroll, key=lambda item: item[0])]
    tune = {key.split(".", 1)[1]: v for key, v in values.items() if axis_kind(key) == "tune"}
    extra = [registry["spx-tune"](**tune)] if tune else []
    return PassPipeline(tuple(base[:at] + unroll + base[at:at + 1] + extra + base[at + 1:]))


@contextmanager
def quiet_stderr():
    """Hides what native libraries print on fd 2 while TensorFlow loads (shown again if loading fails)."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_against_model(sw: Sweep) -> None:
    """Builds the model for every value of n_max/bits/threshold, and checks every schedule value on the
    lowered model of each n_max; the first rejected value is a one-line SpxError naming its axis."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_stderr():
        import frontends.keras as fk
    from spx.sweep_point import StepError, resolve

    for key in ("dataset", "model"):
        if ":" in getattr(sw, key):
            try:
                resolve(getattr(sw, key), key)
            except StepError as err:
                sw.fail(key, str(err))
    build = resolve(sw.model, "model") if ":" in sw.model else getattr(fk, SEED_MODELS[sw.model])
    base = {axis: sw.axes[axis][0] for axis in MODEL_AXES}

    def make(where, value, **values):
        try:
            return build(**{**base, **values})
        except Exception as err:  # noqa: BLE001  the user's builder says why
            sw.fail(where, f"value {value!r} rejected by model {sw.model}: {_first_line(err)}")

    for axis in MODEL_AXES:
        for v in sw.axes[axis]:
            make(f"axes.{axis}", v, **{axis: v})
    schedule = [k for k in sw.axes if axis_kind(k) in ("knob", "tune")]
    if not schedule:
        return
    from frontends.keras.lower import from_keras
    from passes.registry import available_passes, run_pipeline

    registry = available_passes()
    for n in sw.axes["n_max"]:
        module = from_keras(make("axes.n_max", n, n_max=n))
        run_pipeline(module, "canonicalize,spx-fixed-point")
        for key in schedule:
            for v in sw.axes[key]:
                try:
                    if axis_kind(key) == "tune":
                        registry["spx-tune"](**{key.split(".", 1)[1]: v})
                        continue
                    knob, _, layer = key.partition(".")
                    run_pipeline(module.clone(), _unroll_only(registry, knob, layer, v))
                except (SpxError, ValueError) as err:
                    message = _first_line(err).removeprefix("error: ")
                    sw.fail(f"axes.{key}", f"value {v!r} rejected (n_max={n}): {message}")


def _unroll_only(registry, knob: str, layer: str, value: int):
    from xdsl.passes import PassPipeline

    return PassPipeline((registry["spx-unroll"](**{KNOBS[knob]: value, "layer": layer or None}),))


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def warm_dataset(sw: Sweep) -> None:
    """Builds a shipped dataset once here (workers then read it from the cache); bad options fail early."""
    if ":" in sw.dataset:
        return
    from spx import datasets

    try:
        datasets.load(sw.dataset, **sw.dataset_options)
    except (TypeError, ValueError) as err:
        sw.fail("dataset_options", _first_line(err))


# ----------------------------------------------------------------------------- point files


def load_record(out, task: dict) -> dict | None:
    """The valid record of `task` in DIR/points, or None (missing, unreadable, corrupted or stale)."""
    path = out.path(f"points/{task['id']}.json")
    try:
        record = json.loads(path.read_text())
        body = {k: v for k, v in record.items() if k != "checksum"}
        if record.get("checksum") != _checksum(body) or record.get("hash") != task["hash"]:
            return None
        if record.get("status") not in ("ok", "failed"):
            return None
        return record
    except (OSError, ValueError, AttributeError):
        return None


def save_record(out, task: dict, record: dict) -> dict:
    body = {"id": task["id"], "hash": task["hash"], "spx_version": task["spx"], "values": task["values"],
            "config": {k: task[k] for k in ("dataset", "dataset_options", "model", "seed", "steps")}, **record}
    body["checksum"] = _checksum(body)
    out.write_text(f"points/{task['id']}.json", json.dumps(body, indent=1, default=str) + "\n")
    return body


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def failure(message: str) -> dict:
    return {"status": "failed", "error": message, "accuracy": None, "auc": None, "csim_mismatches": None,
            "test_events": None, "estimate": None, "measured": None, "seconds": {}, "worker": None}


# ----------------------------------------------------------------------------- the cluster


@contextmanager
def quiet_dask(enabled: bool = True):
    """Raises the distributed/tornado loggers to CRITICAL (a killed worker is reported by the sweep)."""
    if not enabled:
        yield
        return
    import distributed  # noqa: F401  creates its loggers

    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("distributed", "tornado", "bokeh")]
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


@contextmanager
def connect(scheduler: str | None, workers: int | None, retries: int, connect_timeout: float):
    """A Client of the running scheduler, or of an embedded LocalCluster started (and closed) here."""
    import dask
    from distributed import Client, LocalCluster

    settings = {"distributed.scheduler.allowed-failures": retries,
                "distributed.scheduler.worker-saturation": 1.0}  # a dying worker takes only its own point down
    with dask.config.set(settings):
        if scheduler:
            try:
                client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise SpxError(f"{scheduler}: error: cannot reach the Dask scheduler ({_first_line(err)})") from None
            except (ValueError, TypeError) as err:
                raise SpxError(f"{scheduler}: error: not a Dask scheduler address ({_first_line(err)})") from None
            try:
                yield client
            finally:
                client.close()
            return
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.CRITICAL, env=WORKER_ENV)
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


class Progress:
    """`[sweep] ####----- 5/16 done, 2 running, 1 failed, ETA 1m20s` on stderr (a line per change off a tty)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.ok = self.failed = self.running = self.base = 0
        self.start, self.last, self.shown = time.time(), 0.0, ""
        self.tty = sys.stderr.isatty()

    def line(self) -> str:
        done = self.ok + self.failed
        bar = "#" * (20 * done // max(self.total, 1))
        eta = "-"
        if done > self.base:
            left = (time.time() - self.start) / (done - self.base) * (self.total - done)
            eta = f"{int(left // 60)}m{int(left % 60):02d}s"
        return (f"[sweep] [{bar:<20}] {done}/{self.total} done, {self.running} running, {self.failed} failed, "
                f"ETA {eta}")

    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        text = self.line()
        if self.tty:
            if force or time.time() - self.last > 0.5:
                self.last = time.time()
                print(f"\r{text}", end="", file=sys.stderr, flush=True)
        elif text.split(", ETA")[0] != self.shown.split(", ETA")[0]:  # off a tty: a line per change of counts
            print(text, file=sys.stderr, flush=True)
            self.shown = text

    def close(self) -> None:
        if self.enabled and self.tty:
            print(f"\r{self.line()}", file=sys.stderr, flush=True)


def execute(client, tasks: list[dict], out, progress: Progress, retries: int, timeout: float | None) -> dict:
    """Runs the tasks on the cluster, saving each record as it arrives; returns {id: record}."""
    import threading

    from distributed.scheduler import KilledWorker

    from spx.sweep_point import TOPIC, run_point

    started: dict[str, dict] = {}
    lock = threading.Lock()

    def on_event(event):
        _, msg = event
        with lock:
            started[msg["key"]] = msg

    client.subscribe_topic(TOPIC, on_event)
    futures = {t["key"]: client.submit(run_point, t, key=t["key"], pure=False) for t in tasks}
    by_key = {t["key"]: t for t in tasks}
    pending, records = set(futures.values()), {}

    def finish(task, record):
        records[task["id"]] = save_record(out, task, record)
        progress.ok += record["status"] == "ok"
        progress.failed += record["status"] != "ok"

    try:
        while pending:
            done = {f for f in pending if f.done()}
            pending -= done
            if not done:
                time.sleep(0.2)
            for f in done:
                task = by_key[f.key]
                if f.status == "finished":
                    finish(task, f.result())
                elif f.status == "cancelled":
                    finish(task, failure("cancelled: the cluster dropped this point"))
                else:
                    err = f.exception()
                    if isinstance(err, KilledWorker):
                        message = (f"worker: the worker process died {retries + 1} times while running this point "
                                   "(killed, out of memory or crashed)")
                    else:
                        message = f"worker: {type(err).__name__}: {_first_line(err)}"
                    finish(task, failure(message))
            now = time.time()
            with lock:
                events = {k: dict(v) for k, v in started.items()}
            # a start event counts only while its worker still holds the point: after a worker died, the
            # retry's own event (sent once the new process is ready) replaces the stale one
            where = {k: addr for addr, ks in client.processing().items() for k in ks}
            keys = {f.key: f for f in pending}
            running = {k: e for k, e in events.items() if k in keys and where.get(k) == e["address"]}
            for key, msg in running.items():
                if timeout and now - msg["time"] > timeout:
                    keys[key].cancel()
                    pending.discard(keys[key])
                    try:  # the point's thread cannot be stopped: its worker process is replaced
                        client.restart_workers([msg["address"]], raise_for_error=False)
                    except Exception:  # noqa: BLE001  a worker without a nanny cannot be restarted
                        pass
                    finish(by_key[key], failure(f"timeout: the point ran longer than {timeout:g} s; "
                                                "its worker was restarted"))
            progress.running = sum(1 for k in running if keys[k] in pending)
            progress.draw()
    finally:
        for f in pending:
            f.cancel()
        client.unsubscribe_topic(TOPIC)
        progress.running = 0
        progress.draw(force=True)
        progress.close()
    return records


# ----------------------------------------------------------------------------- the API


def sweep(spec, out_dir, *, scheduler: str | None = None, workers: int | None = None, retries: int = 2,
          retry_failed: bool = False, progress: bool = True, connect_timeout: float = 10.0) -> list[dict]:
    """Runs (or resumes) a sweep; returns one flat dict per point (see spx/sweep_report.py: COLUMNS).

    `spec`: a sweep file path or the same content as a dict. `scheduler`: address of a running Dask
    scheduler (default: an embedded LocalCluster with `workers` processes, default one per core).
    `retries`: how often a point whose worker died is retried. `retry_failed`: recompute points recorded
    as failed. Raises SpxError (one line) for bad input or an unreachable scheduler, before writing."""
    from codegen.writer import OutputDir
    from spx import sweep_report

    sw = load_spec(spec)
    if not (_is_int(retries) and retries >= 0):
        raise SpxError(f"error: retries must be an integer >= 0, got {retries!r}")
    if workers is not None and (scheduler is not None or not (_is_int(workers) and workers >= 1)):
        raise SpxError(f"error: workers must be an integer >= 1 and applies to the embedded cluster only, "
                       f"got {workers!r}" + (f" with scheduler {scheduler}" if scheduler else ""))
    root = Path(out_dir)
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / MARKER).is_file())):
        raise SpxError(f"{root}: error: exists and is not a sweep directory (no {MARKER})")
    check_against_model(sw)
    warm_dataset(sw)
    out = OutputDir(root)
    embedded = scheduler is None
    tasks = sw.tasks(out.root, str(out.root / "logs") if embedded else None)
    records = {t["id"]: r for t in tasks if (r := load_record(out, t)) is not None}
    todo = [t for t in tasks if t["id"] not in records or (retry_failed and records[t["id"]]["status"] != "ok")]
    bar = Progress(len(tasks), progress)
    todo_ids = {t["id"] for t in todo}
    kept = [records[t["id"]] for t in tasks if t["id"] not in todo_ids]
    bar.ok = sum(r["status"] == "ok" for r in kept)
    bar.failed = len(kept) - bar.ok
    summary = f"[sweep] {len(tasks)} points: {len(tasks) - len(todo)} already recorded, {len(todo)} to compute"
    if todo:
        with quiet_dask(), connect(scheduler, workers, retries, connect_timeout) as client:
            _log(progress, summary)
            out.mkdir("points")
            if embedded:
                out.mkdir("logs")
            out.write_text(MARKER, json.dumps({"spx_version": spx_version(), "sweep": _plain(spec)}, indent=1) + "\n")
            t = time.perf_counter()
            try:
                ready = client.run(_warm_worker, tasks[0]["log_dir"], sw.steps["threads"])
            except Exception as err:  # noqa: BLE001  e.g. a remote worker without spx or TensorFlow
                raise SpxError(f"error: the Dask workers cannot run spx: {type(err).__name__}: {_first_line(err)}") from None
            _log(progress, f"[sweep] {len(ready)} workers ready in {time.perf_counter() - t:.1f} s "
                           f"(TensorFlow import per worker process: "
                           f"{', '.join(f'{s:.1f} s' for s in ready.values()) or '-'}); dashboard {client.dashboard_link}")
            bar.base, bar.start = bar.ok + bar.failed, time.time()
            records.update(execute(client, todo, out, bar, retries, sw.steps["timeout"]))
    elif progress:
        _log(progress, summary)
        bar.draw(force=True)
        bar.close()
    rows = sweep_report.rows(tasks, records, list(sw.axes))
    written = sweep_report.write(out, rows, list(sw.axes))
    _log(progress, f"[sweep] wrote {', '.join(str(p.relative_to(out.root)) for p in written)} in {out.root}")
    return rows


def _warm_worker(log_dir, threads):
    from spx.sweep_point import prepare_process

    return prepare_process(log_dir, threads)


def _plain(spec):
    return spec if isinstance(spec, dict) else {"file": str(Path(spec).resolve())}


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def main(args) -> int:
    """`spx sweep`: 0 when every point is ok, 2 when the sweep finished with failed points."""
    rows = sweep(args.sweep, args.output, scheduler=args.scheduler, workers=args.workers, retries=args.retries,
                 retry_failed=args.retry_failed, connect_timeout=args.connect_timeout)
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"{len(rows)} points, {len(rows) - len(failed)} ok, {len(failed)} failed; table in "
          f"{Path(args.output) / 'results.md'}")
    return 2 if failed else 0
