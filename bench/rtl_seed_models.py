"""Measured RTL of the neutrino seed model (8 bit) through the rtl target, next to the published Vitis
design and spx's estimate, with each tool's run time and peak memory, and the measured scaling.

For each (image size S, N): builds the neutrino sparse model on an S x S image (layers as published:
conv7x7(1) relu conv7x7(3) relu avgpool7 flatten dense16 relu dense1 sigmoid), then measures:
- XLS (lower, optimise, pipeline-schedule + Verilog at 5 ns) of the whole model;
- Verilator: build + stream 256 events through the whole model's Verilog: latency, II;
- Yosys `synth_xilinx -family xcup`, PER OP: each op's XLS function scheduled and synthesized alone,
  LUT/FF/DSP/CARRY summed over the ops (issue 10 allows this for a flattened top; the pipeline
  registers between ops then differ from the whole design's). Results are cached by Verilog content,
  so the ops that do not depend on H*W (convs, activations, pool, dense2) are synthesized once per N;
  their time is that of the run that produced them. `--whole-yosys S:N,...` also synthesizes the whole
  top of those configurations (the check of the per-op sum).
Each tool runs in a fresh child process: its peak memory is that child's (and its children's) maximum
RSS. Published Vitis figures exist for S = 63 only (N = 8 -> sparse_t, N = 20 -> sparse_l). A tool past
--timeout is reported as such, never as a figure. The scaling of each tool's time/memory and of
LUT/FF with H*W and N is fitted (power law) over the measured rows and extrapolated to 63x63.

    python bench/rtl_seed_models.py --sizes 14,21,28 --n 8 --extra 14:20 --whole-yosys 14:8 --timeout 1800
Results: bench/results/rtl_seed_models.{md,json,png}.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.rtl import emit as rtl_emit  # noqa: E402
from codegen.rtl.synth import ToolTimeout, pipeline_stages, verilator_timing, yosys  # noqa: E402
from passes.cost_model import estimate  # noqa: E402
from passes.rtl_cost_model import estimate as rtl_estimate  # noqa: E402
from spx_ir.accum import conv_terms, exact_sum_type  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import FixedType  # noqa: E402
from spx_ir.text import SpxError  # noqa: E402

CSV = next((p / "shared" / "calibration" / "neutrino.csv" for p in (ROOT.parent, ROOT.parent.parent)
            if (p / "shared" / "calibration" / "neutrino.csv").is_file()), ROOT.parent / "shared" / "calibration" / "neutrino.csv")
PUBLISHED_NAME = {8: "sparse_t", 12: "sparse_s", 16: "sparse_m", 20: "sparse_l"}
IN_T, W_T, ACT_T = FixedType(8, 1, signed=False), FixedType(8, 3), FixedType(8, 2, False, "RND_CONV", "SAT")
RES = ("lut", "ff", "dsp", "carry")
TOOLS = ("xls", "verilator", "yosys")


def neutrino(size: int, n_max: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = ModelBuilder(f"neutrino_{size}px_n{n_max}", [size, size, 1], IN_T)

    def weights(*shape):
        fan_in, fan_out = (np.prod(shape[:-1]), shape[-1]) if len(shape) > 1 else (shape[0], shape[0])
        return b.const_float(np.clip(rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), shape), -2, 2), W_T)

    feat, hash_ = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    x_t, ch = IN_T, 1
    for co in (1, 3):
        y = b.sparse_conv2d(feat, hash_, weights(7, 7, ch, co), weights(co),
                            exact_sum_type(x_t, W_T, W_T, conv_terms(n_max, 7, 7, ch)))
        feat, x_t, ch = b.sparse_activation(y, hash_, "relu", ACT_T), ACT_T, co
    feat, hash_ = b.sparse_pool2d(feat, hash_, 7, "avg", size, size, ACT_T)
    hw = size // 7
    x = b.sparse_flatten(feat, hash_, hw, hw)
    x = b.dense(x, weights(hw * hw * 3, 16), weights(16), exact_sum_type(ACT_T, W_T, W_T, hw * hw * 3))
    x = b.activation(x, "relu", ACT_T)
    x = b.dense(x, weights(16, 1), weights(1), exact_sum_type(ACT_T, W_T, W_T, 16))
    return b.finish([b.activation(x, "sigmoid", FixedType(16, 0, signed=False))])


def published(n_max: int) -> dict:
    name = PUBLISHED_NAME.get(n_max)
    rows = {}
    with open(CSV) as f:
        for r in csv.DictReader(f):
            if r["model"] == name and r["bits"] == "8" and r["module"] == "top":
                rows[r["source"]] = r
    return rows


def in_child(fn, *args, memory_gb: float = 18):
    """(fn(*args), peak RSS in MB of the child and its children) in a fresh forked process; the
    child's address space is capped at `memory_gb` so a runaway tool fails instead of the machine."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(False)

    def target():
        limit = int(memory_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            out = ("ok", fn(*args))
        except BaseException as err:  # noqa: BLE001  handed to the parent
            out = ("err", err if isinstance(err, (ToolTimeout, SpxError)) else SpxError(f"{type(err).__name__}: {err}"))
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        send.send((out, peak))

    proc = ctx.Process(target=target)
    proc.start()
    try:
        (status, value), peak = recv.recv()
    except EOFError:
        proc.join()
        raise SpxError(f"child process died (exit {proc.exitcode}; out of memory?)") from None
    proc.join()
    if status == "err":
        raise value
    return value, round(peak)


def _xls_build(module):
    return rtl_emit.build(module)["meta"]


def _op_synth(ir: str, fname: str, clock_ns: float, delay_model: str, timeout: float):
    times = {}
    t0 = time.time()
    _, verilog = rtl_emit.codegen(ir, fname, fname, clock_ns, None, delay_model, times)
    xls_s = time.time() - t0
    res, secs = yosys(verilog, fname, timeout, depth=False, cached=True)
    return {"xls_s": round(xls_s, 1), "stages": pipeline_stages(verilog), "yosys_s": round(secs, 1), **res}


def measure(size: int, n_max: int, timeout: float, whole_yosys: bool, log) -> dict:
    module = neutrino(size, n_max)
    _, est = estimate(module)
    row = {"size": size, "n": n_max, "hw": size * size, "estimate": est.as_dict(), "timeouts": [], "ops": {}}
    log(f"  XLS (whole model) ...")
    try:
        meta, row["xls_mb"] = in_child(_xls_build, module)
    except SpxError as err:
        row["error"] = f"XLS: {err}"
        return row
    row["xls_s"] = meta["xls_seconds"]
    row["xls_phases"] = meta.get("xls_phase_seconds")
    result = rtl_emit.build(module)  # cached now
    files = result["files"]
    row["stages"] = pipeline_stages(files[f"{meta['module']}.v"])
    row["verilog_mb"] = round(len(files[f"{meta['module']}.v"]) / 1e6, 2)
    log(f"  Verilator (build + 256 events) ... XLS took {row['xls_s']} s, {row['xls_mb']} MB")
    try:
        (timing, secs), row["verilator_mb"] = in_child(verilator_timing, files, meta, 256, timeout)
        row.update(timing)
        row["verilator_s"] = round(secs, 1)
    except ToolTimeout as err:
        row["timeouts"].append(str(err))
    except SpxError as err:
        row["timeouts"].append(f"verilator: {err}")
    ir = files[f"{meta['module']}.ir"]
    ysec, ymb, oxls = 0.0, 0, 0.0
    for f in meta["functions"]:
        fname = f["function"]
        log(f"  Yosys per op: {fname} ...")
        try:
            op, mb = in_child(_op_synth, ir, fname, meta["clock_ns"], meta["delay_model"], timeout)
        except (ToolTimeout, SpxError) as err:
            row["timeouts"].append(f"{fname}: {err}")
            continue
        op["peak_mb"] = mb
        row["ops"][fname] = op
        ysec += op["yosys_s"]
        ymb = max(ymb, mb)
        oxls += op["xls_s"]
    if len(row["ops"]) == len(meta["functions"]):
        for k in RES:
            row[k] = sum(o[k] for o in row["ops"].values())
        row["yosys_s"], row["yosys_mb"], row["op_xls_s"] = round(ysec, 1), ymb, round(oxls, 1)
    if whole_yosys:
        log("  Yosys whole top ...")
        try:
            (res, secs), mb = in_child(yosys, files[f"{meta['module']}.v"], meta["module"], timeout, False)
            row["whole"] = {**{k: res[k] for k in RES}, "yosys_s": round(secs, 1), "yosys_mb": mb}
        except (ToolTimeout, SpxError) as err:
            row["timeouts"].append(f"whole top: {err}")
    return row


def fit(rows: list[dict], key: str):
    """Power law key ~ a * (H*W)^alpha * N^beta over the rows that have it: (a, alpha, beta or None)."""
    pts = [r for r in rows if r.get(key)]
    if len(pts) < 2 or len({r["hw"] for r in pts}) < 2:
        return None
    ns = {r["n"] for r in pts}
    cols = [np.ones(len(pts)), np.log([r["hw"] for r in pts])] + ([np.log([r["n"] for r in pts])] if len(ns) > 1 else [])
    coef, *_ = np.linalg.lstsq(np.stack(cols, 1), np.log([r[key] for r in pts]), rcond=None)
    return float(np.exp(coef[0])), float(coef[1]), (float(coef[2]) if len(ns) > 1 else None)


def predict(f, hw: int, n: int, n_ref: int = 8):
    a, alpha, beta = f
    return a * hw ** alpha * (n ** beta if beta is not None else 1)


def table(rows: list[dict], versions: str, load: str) -> str:
    fmt = lambda v: "-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))  # noqa: E731
    out = [f"# Neutrino sparse model, 8 bit, rtl target at 5 ns", "",
           f"Measured with {versions}. Machine: 2 cores shared with other jobs; `uptime` at the start: {load}.",
           "meas = measured (latency/II: Verilator on the whole model; LUT/FF/DSP/CARRY: Yosys "
           "`synth_xilinx -family xcup`, SUM OF THE OPS each scheduled by XLS and synthesized alone); "
           "rtl est = spx's estimate of this rtl design (passes/rtl_cost_model.py, fitted on bench/rtl_calibration.py's "
           "small ops, not on these rows); vitis est = spx's estimate of its Vitis design (passes/cost_model.py); "
           "pub = published Vitis HLS csynth "
           "latency/II and Vivado post-synthesis LUT/FF/DSP (../shared/calibration/neutrino.csv, 63x63 only). "
           "Yosys and Vivado count LUTs differently (Yosys maps wide muxes to LUT+MUXF7/8, no cross-boundary "
           "optimisation between ops here). Tool columns: seconds / peak MB.", "",
           "| HxW | N | lat meas | rtl est | vitis est | pub | II meas | vitis est | pub | LUT meas | rtl est | vitis est "
           "| pub | FF meas | rtl est | vitis est | pub | DSP meas | rtl est | vitis est | pub | CARRY | XLS s / MB "
           "| Verilator s / MB | Yosys s / MB |",
           "|---|---:|" + "---:|" * 23]
    for r in rows:
        e = r["estimate"]
        q = rtl_estimate(neutrino(r["size"], r["n"]))[1].as_dict()
        p = published(r["n"]) if r["size"] == 63 else {}
        cs, vs = p.get("csynth", {}), p.get("vivado_synth", {})
        tool = lambda t: "-" if r.get(f"{t}_s") is None else f"{fmt(r[f'{t}_s'])} / {fmt(r.get(f'{t}_mb'))}"  # noqa: E731
        out.append(f"| {r['size']}x{r['size']} | {r['n']} | {fmt(r.get('latency_cycles'))} | {q['latency']} | "
                   f"{e['latency']} | {cs.get('latency_max', '-')} | {fmt(r.get('ii_cycles'))} | {e['ii']} | "
                   f"{cs.get('ii', '-')} | {fmt(r.get('lut'))} | {q['lut']} | {e['lut']} | {vs.get('lut', '-')} | "
                   f"{fmt(r.get('ff'))} | {q['ff']} | {e['ff']} | {vs.get('ff', '-')} | {fmt(r.get('dsp'))} | "
                   f"{q['dsp']} | {e['dsp']} | {vs.get('dsp', '-')} | {fmt(r.get('carry'))} | "
                   f"{tool('xls')} | {tool('verilator')} | {tool('yosys')} |")
        for t in r["timeouts"] + ([r["error"]] if r.get("error") else []):
            out.append(f"|  | | NOT MEASURED: {t} |" + " |" * 22)
    for n in (8, 20):  # the published designs: estimate, published, and the measured fit's extrapolation
        if any(r["size"] == 63 and r["n"] == n and r.get("lut") for r in rows):
            continue
        model = neutrino(63, n)
        e, q = estimate(model)[1].as_dict(), rtl_estimate(model)[1].as_dict()
        p = published(n)
        cs, vs = p.get("csynth", {}), p.get("vivado_synth", {})
        ex = {k: (fit(rows, k), k) for k in ("lut", "ff")}
        x = {k: ("-" if f is None or (f[2] is None and n != 8) else f"~{predict(f, 63 * 63, n):.3g} (fit)")
             for k, (f, _) in ex.items()}
        out.append(f"| 63x63 | {n} | not measured | {q['latency']} | {e['latency']} | {cs.get('latency_max', '-')} | - | "
                   f"{e['ii']} | {cs.get('ii', '-')} | {x['lut']} | {q['lut']} | {e['lut']} | {vs.get('lut', '-')} | "
                   f"{x['ff']} | {q['ff']} | {e['ff']} | {vs.get('ff', '-')} | - | {q['dsp']} | {e['dsp']} | "
                   f"{vs.get('dsp', '-')} | - | - | - | - |")
    whole = [r for r in rows if r.get("whole")]
    if whole:
        out += ["", "Whole top through Yosys (check of the per-op sum; pipeline registers between ops included):", "",
                "| HxW | N | LUT whole | LUT per-op sum | FF whole | FF per-op sum | DSP whole | DSP sum | Yosys s / MB |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in whole:
            w = r["whole"]
            out.append(f"| {r['size']}x{r['size']} | {r['n']} | {w['lut']} | {fmt(r.get('lut'))} | {w['ff']} | "
                       f"{fmt(r.get('ff'))} | {w['dsp']} | {fmt(r.get('dsp'))} | {w['yosys_s']} / {w['yosys_mb']} |")
    ops = sorted({k for r in rows for k in r["ops"]})
    if ops:
        out += ["", "Per op LUT / FF (Yosys, each op alone; scheduled stages in brackets):", "",
                "| HxW | N | " + " | ".join(o.removeprefix("op_") for o in ops) + " |",
                "|---|---:|" + "---:|" * len(ops)]
        for r in rows:
            cells = [(f"{r['ops'][o]['lut']} / {r['ops'][o]['ff']} ({r['ops'][o]['stages']})" if o in r["ops"] else "-")
                     for o in ops]
            out.append(f"| {r['size']}x{r['size']} | {r['n']} | " + " | ".join(cells) + " |")
    keys = [("lut", "LUT"), ("ff", "FF"), ("xls_s", "XLS s"), ("xls_mb", "XLS MB"), ("verilator_s", "Verilator s"),
            ("verilator_mb", "Verilator MB"), ("yosys_s", "Yosys s (per-op sum)"), ("yosys_mb", "Yosys MB (max op)")]
    fits = [(label, key, fit(rows, key)) for key, label in keys]
    fits = [x for x in fits if x[2]]
    if fits:
        out += ["", "Measured scaling (least-squares power law over the measured rows; exponents of H*W and N) and "
                "its EXTRAPOLATION to 63x63 (not a measurement):", "",
                "| figure | ~ (H*W)^a | ~ N^b | 63x63 N=8 (extrapolated) | 63x63 N=20 (extrapolated) |",
                "|---|---:|---:|---:|---:|"]
        for label, key, f in fits:
            out.append(f"| {label} | {f[1]:.2f} | {fmt(None if f[2] is None else round(f[2], 2))} | "
                       f"{predict(f, 63 * 63, 8):.3g} | {'-' if f[2] is None else f'{predict(f, 63 * 63, 20):.3g}'} |")
    return "\n".join(out) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    grid = np.geomspace(100, 63 * 63, 30)
    marker = {8: "o", 20: "s"}
    panels = [(axes[0, 0], [("xls_s", "XLS"), ("verilator_s", "Verilator"), ("yosys_s", "Yosys (per-op sum)")],
               "tool time (s)"),
              (axes[0, 1], [("xls_mb", "XLS"), ("verilator_mb", "Verilator"), ("yosys_mb", "Yosys (max op)")],
               "peak memory (MB)"),
              (axes[1, 0], [("lut", "LUT (Yosys)"), ("ff", "FF (Yosys)")], "resources")]
    for ax, series, title in panels:
        for k, (key, label) in enumerate(series):
            color = f"C{k}"
            for n in sorted({r["n"] for r in rows}):
                pts = [r for r in rows if r["n"] == n and r.get(key)]
                ax.plot([r["hw"] for r in pts], [r[key] for r in pts], marker[n] if n in marker else "^",
                        color=color, label=f"{label} N={n}", ls="none")
                f = fit(rows, key)
                if f:
                    ax.plot(grid, [predict(f, g, n) for g in grid], "--" if n == 8 else ":", color=color, lw=0.8)
        if title == "resources":
            for n, m in ((8, "*"), (20, "P")):
                vs = published(n).get("vivado_synth", {})
                if vs:
                    ax.plot([63 * 63], [float(vs["lut"])], m, color="k", ms=10, label=f"published LUT (Vivado) N={n}")
                    ax.plot([63 * 63], [float(vs["ff"])], m, color="grey", ms=10, label=f"published FF (Vivado) N={n}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("H*W (pixels)")
        ax.set_title(f"{title}: measured (markers), power-law fit (lines)", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3, which="both")
    ax = axes[1, 1]
    ops = sorted({k for r in rows for k in r["ops"]})
    measured = [r for r in rows if r["ops"]]
    bottom = np.zeros(len(measured))
    for k, o in enumerate(ops):
        vals = np.array([r["ops"].get(o, {}).get("lut", 0) for r in measured], float)
        ax.bar(range(len(measured)), vals, bottom=bottom, label=o.removeprefix("op_"), color=f"C{k % 10}")
        bottom += vals
    ax.set_xticks(range(len(measured)), [f"{r['size']}x{r['size']}\nN={r['n']}" for r in measured], fontsize=7)
    ax.set_title("LUT per op (Yosys, each op alone)", fontsize=9)
    ax.legend(fontsize=6)
    fig.suptitle("rtl target, neutrino 8 bit: measured tool cost and resources vs image size", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    from codegen.rtl.sim import tool_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="14,21", help="image sizes (63 = the published model)")
    ap.add_argument("--n", default="8", help="N values for every size (8 = sparse_t, 20 = sparse_l)")
    ap.add_argument("--extra", default="", help="more SIZE:N configurations, e.g. 14:20,21:20")
    ap.add_argument("--whole-yosys", default="", help="SIZE:N configurations whose whole top is synthesized too")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per tool run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rtl_seed_models"))
    ap.add_argument("--from-json", help="only re-render the table and PNG from a previous run's JSON")
    args = ap.parse_args(argv)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        text = table(data["rows"], data["versions"], data["uptime"]) + f"\n`uptime` at the end: {data.get('end', '-')}.\n"
        Path(args.out + ".md").write_text(text)
        plot(data["rows"], Path(args.out + ".png"))
        print(text)
        return 0
    versions = f"{tool_version('verilator')}, {tool_version('yosys')}, xls-python {rtl_emit._xls_version()}"
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    configs = [(int(s), int(n)) for s in args.sizes.split(",") for n in args.n.split(",")]
    configs += [tuple(int(v) for v in c.split(":")) for c in args.extra.split(",") if c]
    rows = []
    for k, (size, n) in enumerate(configs):
        print(f"[{k + 1}/{len(configs)}] {size}x{size} N={n} ({time.strftime('%H:%M:%S')}, load "
              f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.split('average:')[-1].strip()})",
              file=sys.stderr, flush=True)
        rows.append(measure(size, n, args.timeout, f"{size}:{n}" in args.whole_yosys.split(","),
                            lambda m: print(m, file=sys.stderr, flush=True)))
        Path(args.out + ".json").write_text(json.dumps({"versions": versions, "uptime": load, "rows": rows},
                                                       indent=1, default=str) + "\n")
        Path(args.out + ".md").write_text(table(rows, versions, load))
    end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = table(rows, versions, load) + f"\n`uptime` at the end: {end}.\n"
    Path(args.out + ".md").write_text(text)
    plot(rows, Path(args.out + ".png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
