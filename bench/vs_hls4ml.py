"""spx vs hls4ml 1.3.0 on the neutrino architecture (63x63x1): emit, compile and C-simulation speed.

hls4ml converts the STANDARD (dense) CNN (`neutrino_model(sparse=False, bits=None)`, Vitis backend,
default precision fixed<16,6>, io_stream and io_parallel); spx compiles the SPARSE model
(`neutrino_model(n_max=20, bits=8)`, sparse-l). Both see the same seeded random weights and the same
seeded neutrino-like events (~27 active pixels per event, Poisson); hls4ml takes the first N of them.
The comparison is throughput, not accuracy.

Prints a markdown table on stdout (progress on stderr) and writes it to bench/results/vs_hls4ml.md.
Each hls4ml flow runs in a child process with a time limit, so a huge io_parallel build cannot hang
the benchmark. Usage:

    python bench/vs_hls4ml.py [--hls4ml-events 2000] [--spx-events 10000]
                              [--io-types io_stream,io_parallel] [--hls4ml-timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

EVENT_SEED = 2024
WEIGHT_SEED = 7
MEAN_ACTIVE = 27           # published neutrino test bench: 26.9 active pixels per event
PART = "xcu250-figd2104-2L-e"
LAYERS = ("conv1", "conv2", "dense1", "dense2")


def log(msg: str) -> None:
    print(f"[vs_hls4ml {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# ----------------------------------------------------------------------------------- inputs

def neutrino_like_events(n: int, seed: int = EVENT_SEED) -> np.ndarray:
    """n sparse 63x63x1 images: Poisson(27) active pixels at distinct random places, values U(0.05, 1.5)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 63 * 63), dtype=np.float32)
    for i, count in enumerate(np.minimum(rng.poisson(MEAN_ACTIVE, n), 63 * 63)):
        x[i, rng.choice(63 * 63, size=count, replace=False)] = rng.uniform(0.05, 1.5, count)
    return x.reshape(n, 63, 63, 1)


def random_weights(model, seed: int = WEIGHT_SEED) -> dict[str, list[np.ndarray]]:
    """Seeded N(0, 0.5) weights for conv1, conv2, dense1, dense2 (same shapes in both models)."""
    rng = np.random.default_rng(seed)
    return {name: [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_layer(name).get_weights()]
            for name in LAYERS}


def set_weights(model, weights: dict[str, list[np.ndarray]]) -> None:
    for name, arrays in weights.items():
        layer = model.get_layer(name)
        shapes = [w.shape for w in layer.get_weights()]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(f"{model.name}/{name}: weight shapes {shapes} != {[a.shape for a in arrays]}")
        layer.set_weights(arrays)


# ----------------------------------------------------------------------------------- hls4ml (child)

def standard_model_for_hls4ml(weights):
    """The standard CNN with its input layer renamed: hls4ml reserves the layer name 'input'."""
    import tf_keras

    import frontends.keras as fk

    model = fk.neutrino_model(sparse=False, bits=None)
    set_weights(model, weights)
    image = tf_keras.Input(shape=(63, 63, 1), name="image")
    h = image
    for layer in model.layers[1:]:  # a plain chain: conv1, relu1, ..., output
        h = layer(h)
    return tf_keras.Model(image, h, name="neutrino_standard_float")


def hls4ml_child(io_type: str, data_dir: Path, n_events: int, out_json: Path) -> None:
    """Converts, writes, compiles and C-simulates the standard model; writes the measurements as JSON."""
    import tf_keras

    sys.modules["keras"] = tf_keras  # hls4ml picks its Keras parser by keras.__version__
    import hls4ml

    weights = dict(np.load(data_dir / "weights.npz", allow_pickle=True)["weights"].item())
    x = np.load(data_dir / "events.npy")[:n_events]
    model = standard_model_for_hls4ml(weights)
    result = {"io_type": io_type, "hls4ml": hls4ml.__version__, "events": int(len(x))}

    log(f"hls4ml {io_type}: convert + write")
    t0 = time.perf_counter()
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="fixed<16,6>")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=cfg, backend="Vitis", io_type=io_type, output_dir=str(data_dir / f"hls4ml_{io_type}"),
        part=PART, clock_period=5)
    t1 = time.perf_counter()
    hls_model.write()
    t2 = time.perf_counter()
    result.update(convert_s=t1 - t0, write_s=t2 - t1)
    log(f"hls4ml {io_type}: convert {t1 - t0:.2f} s, write {t2 - t1:.2f} s; compile (g++ -O3) ...")

    t0 = time.perf_counter()
    hls_model.compile()  # note: compile() calls write() again before build_lib.sh
    result["compile_s"] = time.perf_counter() - t0
    log(f"hls4ml {io_type}: compile {result['compile_s']:.1f} s; csim warm-up")

    hls_model.predict(x[:5])  # warm-up (not timed)
    log(f"hls4ml {io_type}: csim on {len(x)} events ...")
    t0 = time.perf_counter()
    y = np.asarray(hls_model.predict(x)).reshape(len(x), -1)
    result["csim_s"] = time.perf_counter() - t0
    result["csim_rate"] = len(x) / result["csim_s"]
    keras_y = model.predict(x, batch_size=512, verbose=0).reshape(len(x), -1)
    result["max_abs_vs_keras"] = float(np.max(np.abs(y - keras_y)))
    result["output_mean"] = float(y.mean())
    log(f"hls4ml {io_type}: {result['csim_rate']:.1f} events/s")
    out_json.write_text(json.dumps(result, indent=1))


def run_hls4ml(io_type: str, data_dir: Path, n_events: int, timeout: float) -> dict:
    """Runs one hls4ml flow in a child process (its own session, killed as a group on timeout)."""
    out_json = data_dir / f"hls4ml_{io_type}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-hls4ml", io_type,
           "--data-dir", str(data_dir), "--hls4ml-events", str(n_events)]
    t0 = time.perf_counter()
    # hls4ml prints its layer listing on stdout: send it to our stderr so stdout stays the table
    proc = subprocess.Popen(cmd, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and its g++ processes
        proc.wait()
        return {"io_type": io_type, "error": f"timed out after {timeout:.0f} s (killed)",
                "elapsed_s": time.perf_counter() - t0}
    if code != 0 or not out_json.is_file():
        return {"io_type": io_type, "error": f"child exited with code {code} (see stderr)"}
    return json.loads(out_json.read_text())


# ----------------------------------------------------------------------------------- spx

def median_rate(fn, x, repeats: int = 3) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        rates.append(len(x) / (time.perf_counter() - t))
    return statistics.median(rates)


def run_spx(weights, x: np.ndarray, work: Path) -> dict:
    # a fresh cache, so the first csim call really runs g++ (set before spx is imported)
    os.environ["SPX_CACHE"] = str(work / "spx_cache")
    import frontends.keras as fk
    import spx
    from codegen.vitis import csim as spx_csim

    model = fk.neutrino_model(n_max=20, bits=8)
    set_weights(model, weights)
    r = {"events": int(len(x))}

    log("spx: compile (lowering + default pipeline)")
    t0 = time.perf_counter()
    cm = spx.compile(model)
    t1 = time.perf_counter()
    cm.write(work / "spx_project", targets=("numpy", "vitis"))
    t2 = time.perf_counter()
    r.update(lower_s=t1 - t0, write_s=t2 - t1)
    log(f"spx: lower+pipeline {t1 - t0:.2f} s, write {t2 - t1:.2f} s; first csim call (g++ -O2) ...")

    t0 = time.perf_counter()
    cm.predict(x[:1], backend="csim")  # builds the project in $SPX_CACHE, compiles, loads
    r["compile_s"] = time.perf_counter() - t0
    log(f"spx: csim build {r['compile_s']:.1f} s; throughput on {len(x)} events ...")

    r["csim_rate"] = median_rate(lambda v: cm.predict(v, backend="csim"), x)
    chunk = spx_csim.CHUNK  # calls of <= CHUNK events run on the calling thread only

    def one_thread(v):
        for i in range(0, len(v), chunk):
            cm.predict(v[i:i + chunk], backend="csim")

    r["csim_rate_1t"] = median_rate(one_thread, x)
    r["numpy_rate"] = median_rate(cm.predict, x)
    r["keras_rate"] = median_rate(lambda v: model.predict(v, batch_size=1024, verbose=0), x)
    y_csim, y_ref = cm.predict_raw(x, backend="csim"), cm.predict_raw(x)
    r["csim_equals_numpy"] = bool(np.array_equal(y_csim, y_ref))
    r["dropped_events"] = int((np.count_nonzero(x.reshape(len(x), -1), axis=1) > 20).sum())
    log(f"spx: csim {r['csim_rate']:,.0f} events/s ({r['csim_rate_1t']:,.0f} on 1 thread), "
        f"NumPy {r['numpy_rate']:,.0f} events/s")
    return r


# ----------------------------------------------------------------------------------- report

def table(hls: list[dict], s: dict, args, n_total: int, loads: tuple[str, str]) -> str:
    lines = [
        "# spx vs hls4ml 1.3.0: neutrino architecture (63x63x1)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}; other jobs may be running. Load average (1/5/15 min) at start: "
        f"{loads[0]}; at end: {loads[1]}.",
        f"Events: {n_total} neutrino-like 63x63 images (Poisson mean {MEAN_ACTIVE} active pixels, values "
        f"U(0.05, 1.5), seed {EVENT_SEED}); hls4ml runs the first {args.hls4ml_events}. Random N(0, 0.5) "
        f"weights (seed {WEIGHT_SEED}), the same arrays in both models.",
        "",
        "| tool | model | emit/convert (s) | compile (s) | csim events/s | events measured | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for h in hls:
        model = f"standard CNN, float -> fixed<16,6>, {h['io_type']}"
        if "error" in h:
            lines.append(f"| hls4ml 1.3.0 (Vitis) | {model} | - | - | - | - | {h['error']} |")
            continue
        notes = (f"convert {h['convert_s']:.2f} + write {h['write_s']:.2f} s; compile() = write again + "
                 f"build_lib.sh (g++ -O3); predict() loops over events in Python, 1 thread; "
                 f"max abs diff vs Keras float {h['max_abs_vs_keras']:.3g}")
        lines.append(f"| hls4ml 1.3.0 (Vitis) | {model} | {h['convert_s'] + h['write_s']:.2f} | "
                     f"{h['compile_s']:.1f} | {h['csim_rate']:,.1f} | {h['events']:,} | {notes} |")
    sparse = "sparse-l (N=20), 8 bit"
    lines.append(
        f"| spx | {sparse} | {s['lower_s'] + s['write_s']:.2f} | {s['compile_s']:.1f} | {s['csim_rate']:,.0f} | "
        f"{s['events']:,} | lowering+pipeline {s['lower_s']:.2f} + write numpy,vitis {s['write_s']:.2f} s; "
        f"compile = first csim call (emit into fresh $SPX_CACHE + g++ -O2); chunks of 1,024 events on "
        f"{os.cpu_count()} threads; median of 3; csim == NumPy bit for bit: {s['csim_equals_numpy']} |")
    lines.append(
        f"| spx | {sparse}, csim on 1 thread | | | {s['csim_rate_1t']:,.0f} | {s['events']:,} | "
        "same library, calls of <= 1,024 events (no thread pool); median of 3 |")
    lines.append(
        f"| spx | {sparse}, NumPy reference | | - | {s['numpy_rate']:,.0f} | {s['events']:,} | "
        "`cm.predict(x)` (bit-exact oracle, not C simulation); median of 3 |")
    lines.append(
        f"| Keras (tf-keras 2.21) | {sparse}, QKeras `model.predict` | | - | {s['keras_rate']:,.0f} | {s['events']:,} | "
        "same model and events, batch 1024, CPU; median of 3 |")
    lines.append("| spx | standard CNN | - | - | - | - | not possible: spx compiles sparse (SparsePixels) "
                 "models only |")
    lines += ["", f"{s['dropped_events']:,} of {s['events']:,} spx events have more than 20 active pixels "
              "(the extra ones are dropped by input_reduce, as the sparse model is defined).", ""]

    spx_total = s["lower_s"] + s["write_s"] + s["compile_s"]
    for h in hls:
        if "error" in h:
            lines.append(f"- {h['io_type']}: no ratio ({h['error']}).")
            continue
        ratio, ratio_1t = s["csim_rate"] / h["csim_rate"], s["csim_rate_1t"] / h["csim_rate"]
        h_total = h["convert_s"] + h["write_s"] + h["compile_s"]
        lines.append(
            f"- vs hls4ml {h['io_type']}: spx csim / hls4ml csim = **{ratio:,.0f}x** ({ratio_1t:,.0f}x with spx "
            f"on 1 thread); goal >= 10x: {'met' if ratio >= 10 else 'NOT met'} "
            f"({'met' if ratio_1t >= 10 else 'NOT met'} on 1 thread). spx emit+compile "
            f"{spx_total:.1f} s vs hls4ml convert+compile {h_total:.1f} s "
            f"(goal not slower: {'met' if spx_total <= h_total else 'NOT met'}).")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hls4ml-events", type=int, default=2000)
    ap.add_argument("--spx-events", type=int, default=10000)
    ap.add_argument("--io-types", default="io_stream", help="comma-separated; io_parallel takes ~30 min of g++ on 2 cores")
    ap.add_argument("--hls4ml-timeout", type=float, default=1800.0, help="seconds per hls4ml flow")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "vs_hls4ml.md"))
    ap.add_argument("--child-hls4ml", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child_hls4ml:
        hls4ml_child(args.child_hls4ml, Path(args.data_dir), args.hls4ml_events,
                     Path(args.data_dir) / f"hls4ml_{args.child_hls4ml}.json")
        return

    load_start = load_text()
    log(f"{os.cpu_count()} cores, load average {load_start}")
    n_total = max(args.spx_events, args.hls4ml_events)
    x = neutrino_like_events(n_total)
    with tempfile.TemporaryDirectory(prefix="spx_vs_hls4ml_") as tmp:
        work = Path(tmp)
        import frontends.keras as fk

        weights = random_weights(fk.neutrino_model(sparse=False, bits=None))
        np.save(work / "events.npy", x)
        np.savez(work / "weights.npz", weights=np.array(weights, dtype=object))

        hls = [run_hls4ml(io, work, args.hls4ml_events, args.hls4ml_timeout)
               for io in args.io_types.split(",") if io]
        s = run_spx(weights, x[:args.spx_events], work)
    text = table(hls, s, args, n_total, (load_start, load_text()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")
    log(f"written {out}")


if __name__ == "__main__":
    main()
