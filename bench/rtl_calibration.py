"""Calibration of the rtl cost model (passes/rtl_cost_model.py) against measured RTL.

Sweeps single ops (sparse_conv2d over N, channels, kernel, bits; sparse_pool2d over pool size and
mode; input_reduce and sparse_flatten over image size and N; dense over sizes and bits; activations)
and a few small whole models through the rtl target: each op is lowered to its XLS function
(codegen/rtl/lower.py), optimised, scheduled at 5 ns and synthesized ALONE by Yosys
(`synth_xilinx -family xcup`, codegen/rtl/synth.py: the same functions `spx synth` runs per op);
whole models go through `codegen.rtl.synth.synth` (Verilator latency/II + Yosys on the top).
Each Yosys run has --timeout; a point past it is reported, never recorded as a figure.

    python bench/rtl_calibration.py                 # measure (incremental), fit, evaluate
    python bench/rtl_calibration.py --evaluate-only # refit and evaluate the stored table
Results: bench/results/rtl_calibration.{json,md,png}.

The fit (passes/rtl_cost_model.py: fit) uses the points whose `split` is "fit"; the evaluation
reports estimate vs measured on the points held out of it ("heldout"), per figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.rtl.emit import DEFAULT_CLOCK_NS, DEFAULT_DELAY_MODEL, _xls_version, codegen  # noqa: E402
from codegen.rtl.lower import lower  # noqa: E402
from codegen.rtl.synth import ToolTimeout, pipeline_stages, yosys  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import FixedType  # noqa: E402

OUT = ROOT / "bench" / "results" / "rtl_calibration"


def _t(bits: int, int_bits: int, signed: bool = True) -> FixedType:
    return FixedType(bits, int_bits, signed=signed)


def _weights(b, rng, shape, t: FixedType, zero_frac: float = 0.0):
    raw = rng.integers(t.min_raw, t.max_raw + 1, size=shape)
    raw = raw * (rng.random(shape) >= zero_frac)
    return b.const(raw, t)


def conv(h: int, n: int, ci: int, co: int, k: int, bits: int, seed: int = 0):
    """input_reduce -> sparse_conv2d (k x k, ci -> co) on an h x h image; bits: input/weight width."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder("conv", [h, h, ci], _t(bits, 1, False))
    feat, hash_ = b.input_reduce(b.input, n_max=n)
    y = b.sparse_conv2d(feat, hash_, _weights(b, rng, (k, k, ci, co), _t(bits, 2)),
                        _weights(b, rng, (co,), _t(bits, 2)), _t(bits, 3))
    return b.finish([y])


def pool(h: int, n: int, c: int, p: int, mode: str, bits: int):
    b = ModelBuilder("pool", [h, h, c], _t(bits, 1, False))
    feat, hash_ = b.input_reduce(b.input, n_max=n)
    y, _ = b.sparse_pool2d(feat, hash_, p, mode, h, h, _t(bits, 2, False))
    return b.finish([y])


def flatten(h: int, n: int, c: int, bits: int):
    b = ModelBuilder("flatten", [h, h, c], _t(bits, 1, False))
    feat, hash_ = b.input_reduce(b.input, n_max=n)
    return b.finish([b.sparse_flatten(feat, hash_, h, h)])


def sact(h: int, n: int, c: int, kind: str, bits: int):
    b = ModelBuilder("sact", [h, h, c], _t(bits, 2))
    feat, hash_ = b.input_reduce(b.input, n_max=n)
    return b.finish([b.sparse_activation(feat, hash_, kind, _t(bits, 2, kind != "relu"))])


def dense(n_in: int, n_out: int, bits: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = ModelBuilder("dense", [n_in], _t(bits, 2))
    y = b.dense(b.input, _weights(b, rng, (n_in, n_out), _t(bits, 2)), _weights(b, rng, (n_out,), _t(bits, 2)),
                _t(bits, 4))
    return b.finish([y])


def act(n: int, kind: str, bits: int):
    b = ModelBuilder("act", [n], _t(bits, 3))
    out_t = _t(bits, 0, False) if kind in ("sigmoid", "softmax") else _t(bits, 3)
    return b.finish([b.activation(b.input, kind, out_t)])


def tiny_model(h: int, n: int, bits: int, seed: int = 0):
    """A small neutrino-like model: conv3x3(2) relu maxpool2 flatten dense(4) relu dense(1) sigmoid."""
    rng = np.random.default_rng(seed)
    w_t, a_t = _t(bits, 2), _t(bits, 2, False)
    b = ModelBuilder("tiny", [h, h, 1], _t(bits, 1, False))
    feat, hash_ = b.input_reduce(b.input, n_max=n)
    y = b.sparse_conv2d(feat, hash_, _weights(b, rng, (3, 3, 1, 2), w_t), _weights(b, rng, (2,), w_t), _t(bits, 3))
    y = b.sparse_activation(y, hash_, "relu", a_t)
    y, hash_ = b.sparse_pool2d(y, hash_, 2, "max", h, h, a_t)
    x = b.sparse_flatten(y, hash_, h // 2, h // 2)
    x = b.activation(b.dense(x, _weights(b, rng, ((h // 2) ** 2 * 2, 4), w_t), _weights(b, rng, (4,), w_t),
                             _t(bits, 4)), "relu", a_t)
    x = b.dense(x, _weights(b, rng, (4, 1), w_t), _weights(b, rng, (1,), w_t), _t(bits, 4))
    return b.finish([b.activation(x, "sigmoid", _t(bits, 0, False))])


BUILDERS = {"conv": conv, "pool": pool, "flatten": flatten, "sact": sact, "dense": dense, "act": act,
            "tiny_model": tiny_model}


def points() -> list[dict]:
    """The sweep: {name, builder, kwargs, ops (functions to synthesize, or ["model"]), split}. Every
    4th configuration of each op family (and the last model) is held out of the fit."""
    pts = []

    def family(builder, ops, configs, name):
        for i, kw in enumerate(configs):
            pts.append({"name": name(**kw), "builder": builder, "kwargs": kw, "ops": ops,
                        "split": "heldout" if i % 4 == 3 else "fit"})

    family("conv", ["sparse_conv2d"],
           [dict(h=6, n=n, ci=ci, co=co, k=k, bits=b) for n, ci, co, k, b in
            [(2, 1, 1, 3, 8), (4, 1, 1, 3, 8), (3, 1, 2, 3, 8), (3, 2, 1, 3, 8), (2, 1, 1, 3, 4), (2, 1, 1, 3, 12),
             (2, 1, 1, 5, 8), (4, 1, 2, 3, 6), (3, 2, 1, 3, 10), (2, 1, 1, 1, 8), (5, 1, 1, 3, 8), (3, 1, 1, 5, 6),
             (2, 2, 2, 3, 8), (6, 1, 1, 3, 8), (4, 2, 1, 3, 4), (3, 1, 1, 3, 16)]],
           lambda h, n, ci, co, k, bits: f"conv_n{n}_c{ci}x{co}_k{k}_b{bits}")
    family("flatten", ["input_reduce", "sparse_flatten"],
           [dict(h=h, n=n, c=c, bits=b) for h, n, c, b in
            [(4, 2, 1, 8), (6, 4, 1, 8), (8, 4, 1, 8), (6, 2, 2, 8), (6, 4, 1, 4), (8, 8, 1, 8), (5, 3, 2, 6),
             (10, 4, 1, 8), (6, 6, 1, 8), (7, 3, 1, 12), (4, 4, 3, 8), (12, 4, 1, 8)]],
           lambda h, n, c, bits: f"reduce_flatten_{h}x{h}x{c}_n{n}_b{bits}")
    family("pool", ["sparse_pool2d"],
           [dict(h=6, n=n, c=c, p=p, mode=m, bits=b) for n, c, p, m, b in
            [(4, 1, 2, "max", 8), (4, 2, 2, "max", 8), (4, 1, 2, "avg", 8), (4, 1, 3, "avg", 8), (2, 1, 2, "avg", 8),
             (6, 1, 2, "max", 8), (4, 1, 2, "avg", 12), (5, 1, 3, "max", 10), (3, 2, 3, "avg", 6), (6, 1, 2, "avg", 8),
             (3, 1, 3, "max", 4), (4, 2, 2, "avg", 8)]],
           lambda h, n, c, p, mode, bits: f"pool_{mode}{p}_n{n}_c{c}_b{bits}")
    family("dense", ["dense"],
           [dict(n_in=i, n_out=o, bits=b) for i, o, b in
            [(4, 2, 8), (8, 2, 8), (8, 4, 8), (16, 2, 8), (8, 2, 4), (8, 2, 12), (8, 2, 16), (12, 3, 6), (6, 4, 10),
             (32, 2, 8), (16, 4, 6), (24, 1, 10)]],
           lambda n_in, n_out, bits: f"dense_{n_in}x{n_out}_b{bits}")
    family("act", ["activation"],
           [dict(n=n, kind=k, bits=b) for n, k, b in
            [(4, "relu", 8), (8, "relu", 8), (4, "sigmoid", 8), (6, "relu", 6), (2, "sigmoid", 12), (4, "softmax", 8),
             (2, "tanh", 8), (3, "sigmoid", 8), (4, "tanh", 8), (16, "relu", 4)]],
           lambda n, kind, bits: f"act_{kind}{n}_b{bits}")
    family("sact", ["sparse_activation"],
           [dict(h=4, n=n, c=c, kind=k, bits=b) for n, c, k, b in
            [(4, 1, "relu", 8), (3, 1, "sigmoid", 8), (4, 2, "relu", 6), (2, 2, "relu", 8)]],
           lambda h, n, c, kind, bits: f"sact_{kind}_n{n}_c{c}_b{bits}")
    family("tiny_model", ["model"],  # the 4th (held out) whole model
           [dict(h=h, n=n, bits=b) for h, n, b in [(4, 2, 6), (4, 3, 8), (6, 2, 8), (6, 3, 6)]],
           lambda h, n, bits: f"model_tiny_{h}x{h}_n{n}_b{bits}")
    return pts


def build_point(point: dict):
    return BUILDERS[point["builder"]](**point["kwargs"])


def critical_path_ps(opt_ir: str, top: str, hi: int = 40000) -> int:
    """The combinational delay of function `top` under XLS's delay model (DEFAULT_DELAY_MODEL), in ps
    to 10 ps: the shortest clock period at which XLS's scheduler fits it in one stage."""
    import xls

    def one_stage(period: int) -> bool:
        try:
            v = xls.Package.parse_ir(opt_ir).schedule_and_codegen(generator="pipeline", top=top, module_name=top, delay_model=DEFAULT_DELAY_MODEL,
                                         clock_period_ps=period, flop_inputs=True, flop_outputs=True,
                                         reset="rst", input_valid_signal="in_valid", output_valid_signal="out_valid",
                                         add_invariant_assertions=False).get_verilog_text()
        except RuntimeError:
            return False
        return pipeline_stages(v) <= 2

    lo = 0
    while hi - lo > 10:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if one_stage(mid) else (mid, hi)
    return hi


def measure_ops(module, wanted: list[str], timeout: float, log) -> dict:
    """{function: figures} of the op functions of `module` whose op is in `wanted`, each alone:
    XLS (optimise, schedule at the clock: pipeline stages; critical path delay), Yosys resources."""
    low = lower(module)
    out = {}
    for f in low.functions:
        if f.op_name.removeprefix("spx.") not in wanted:
            continue
        t0 = time.time()
        opt, verilog = codegen(low.ir, f.name, f.name, DEFAULT_CLOCK_NS, None, DEFAULT_DELAY_MODEL)
        entry = {"op": f.op_name, "layer": f.layer, "pipeline_stages": pipeline_stages(verilog),
                 "delay_ps": critical_path_ps(opt, f.name), "xls_seconds": round(time.time() - t0, 2)}
        log(f"  {f.name}: {entry['pipeline_stages']} stages, {entry['delay_ps']} ps (XLS {entry['xls_seconds']} s); yosys ...")
        try:
            res, secs = yosys(verilog, f.name, timeout)
            entry.update(res)
            entry["yosys_seconds"] = round(secs, 2)
        except ToolTimeout as err:
            entry["timeout"] = str(err)
            log(f"  TIMEOUT: {err} (not recorded)")
        out[f.name] = entry
    return out


def measure_model(module, timeout: float, log) -> dict:
    """`codegen.rtl.synth.synth` on the whole model: Verilator latency/II and Yosys on the top."""
    import tempfile

    from codegen.rtl.emit import emit
    from codegen.rtl.synth import synth

    with tempfile.TemporaryDirectory(prefix="spx-rtlcal-") as tmp:
        emit(module, Path(tmp) / "rtl")
        report = synth(Path(tmp) / "rtl", module, timeout=timeout, per_op=False, events=64, log=lambda m: log("  " + m))
    return {"model": report["model_figures"], "timeouts": report["timeouts"], "seconds": report["seconds"]}


def versions() -> dict:
    from codegen.rtl.sim import tool_version

    return {"verilator": tool_version("verilator"), "yosys": tool_version("yosys"), "xls": f"xls-{_xls_version()}",
            "clock_ns": DEFAULT_CLOCK_NS, "delay_model": DEFAULT_DELAY_MODEL}


def measure(timeout: float, only: str | None, log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Measures every point not in the stored table yet (same name and kwargs); saves after each."""
    path = OUT.with_suffix(".json")
    table = json.loads(path.read_text()) if path.is_file() else {}
    if table.get("tools") != versions():
        table = {"tools": versions(), "points": {}}
    todo = [p for p in points() if (only is None or only in p["name"])
            and table["points"].get(p["name"], {}).get("kwargs") != p["kwargs"]]
    t_start = time.time()
    for i, p in enumerate(todo):
        done = time.time() - t_start
        eta = f", ~{done / i * (len(todo) - i) / 60:.1f} min left" if i else ""
        log(f"[{i + 1}/{len(todo)}] {p['name']} ({done / 60:.1f} min{eta})")
        t0 = time.time()
        module = build_point(p)
        row = dict(p)
        if p["ops"] == ["model"]:
            row.update(measure_model(module, timeout, log))
        else:
            row["functions"] = measure_ops(module, p["ops"], timeout, log)
        row["seconds"] = round(time.time() - t0, 1) if p["ops"] != ["model"] else row["seconds"]
        row["wall_seconds"] = round(time.time() - t0, 1)
        table["points"][p["name"]] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=1) + "\n")
    table["sweep_seconds"] = round(sum(r["wall_seconds"] for r in table["points"].values()), 1)
    path.write_text(json.dumps(table, indent=1) + "\n")
    return table


# ------------------------------------------------------------------------------ fit and evaluation

FIGURES = ("latency", "dsp", "lut", "ff")


def op_records(table: dict) -> list[dict]:
    """One record per measured op function: its Structure (from the rebuilt point) and its figures."""
    from passes.rtl_cost_model import op_labels, structure

    records = []
    for p in points():
        row = table["points"].get(p["name"])
        if row is None or p["ops"] == ["model"]:
            continue
        labels = {label: op for op, label in op_labels(build_point(p)).items()}
        for fname, f in row["functions"].items():
            if "timeout" in f:
                continue
            st = structure(labels[f["layer"]])
            records.append({"point": p["name"], "split": p["split"], "function": fname, "st": st,
                            "measured": {"latency": f["pipeline_stages"], "dsp": f["dsp"], "lut": f["lut"],
                                         "ff": f["ff"], "delay_ps": f["delay_ps"]}})
    return records


def fit(records: list[dict]) -> dict:
    """Constants of passes/rtl_cost_model.py from the records of the fit split."""
    from passes.rtl_cost_model import mult_figures

    k = {"soft_mul": 0.6}
    kinds = sorted({r["st"].kind for r in records})
    for kind in kinds:
        rs = [r for r in records if r["st"].kind == kind]
        d = np.array([r["measured"]["delay_ps"] for r in rs], dtype=float)
        regs = {"d1": [r["st"].levels for r in rs], "d2": [r["st"].width for r in rs]}
        names = [n for n, v in regs.items() if len(set(v)) > 1]
        a = np.array([[1.0] * len(rs)] + [regs[n] for n in names], dtype=float).T
        coef = np.linalg.lstsq(a, d, rcond=None)[0]
        k[f"{kind}:d0"] = round(float(coef[0]), 1)
        for n in regs:
            k[f"{kind}:{n}"] = round(float(dict(zip(names, coef[1:])).get(n, 0.0)), 1)
        # LUT = a * arith + b * mux + c * DSP (+ multiplier LUTs), least squares on the relative error;
        # a feature that is absent, or whose coefficient comes out negative, is dropped
        feats = {"arith": [r["st"].arith for r in rs], "mux": [r["st"].mux for r in rs],
                 "dsp": [mult_figures(r["st"], k)[0] for r in rs]}
        y = np.array([max(1.0, r["measured"]["lut"] - mult_figures(r["st"], k)[1]) for r in rs])
        names = [f for f, v in feats.items() if any(v)]
        while True:
            a = np.array([feats[f] for f in names], dtype=float).T / y[:, None]
            coef = np.linalg.lstsq(a, np.ones(len(y)), rcond=None)[0] if names else []
            neg = [f for f, c in zip(names, coef) if c < 0 and f != "dsp"]
            if not neg:
                break
            names.remove(neg[0])
        for f in feats:
            k[f"{kind}:{f}"] = round(float(dict(zip(names, coef)).get(f, 0.0)), 4)
    # FF beyond the registered ports, per extra pipeline stage, per bit of st.cut_width (per kind, and overall)
    multi = [r for r in records if r["measured"]["latency"] > 2]
    ratio = lambda rs: round(sum(r["measured"]["ff"] - r["st"].in_bits - r["st"].out_bits - 2 for r in rs)  # noqa: E731
                             / sum((r["measured"]["latency"] - 2) * r["st"].cut_width for r in rs), 4)
    per_out = [r for r in multi if not r["st"].cut_base]  # the default for other kinds: per output bit
    k["cut"] = ratio(per_out) if per_out else 1.0
    for kind in sorted({r["st"].kind for r in multi}):
        k[f"{kind}:cut"] = ratio([r for r in multi if r["st"].kind == kind])
    return k


def fit_models(table: dict, k: dict) -> None:
    """K[model_cut] from the whole models of the fit split: register bits per stage boundary, per
    output bit of the op the boundary falls in (passes/rtl_cost_model.py: model_cost)."""
    from passes.rtl_cost_model import model_cost

    extra = per_bit = 0.0
    for p in points():
        row = table["points"].get(p["name"])
        if row is None or p["ops"] != ["model"] or p["split"] != "fit" or "ff" not in row["model"]:
            continue
        module = build_point(p)
        base = model_cost(module, DEFAULT_CLOCK_NS, {**k, "model_cut": 0.0})[1].ff
        unit = model_cost(module, DEFAULT_CLOCK_NS, {**k, "model_cut": 1.0})[1].ff - base
        extra, per_bit = extra + row["model"]["ff"] - base, per_bit + unit
    k["model_cut"] = round(extra / per_bit, 4) if per_bit else 1.0


def estimates(records: list[dict], table: dict, k: dict) -> list[dict]:
    """(point, function, split, figure, measured, estimate) rows for ops and whole models."""
    from passes.rtl_cost_model import cost_of, model_cost

    rows = []
    for r in records:
        est = cost_of(r["st"], DEFAULT_CLOCK_NS, k).as_dict()
        for fig in FIGURES:
            rows.append({"point": r["point"], "function": r["function"], "kind": r["st"].kind, "split": r["split"],
                         "figure": fig, "measured": r["measured"][fig], "estimate": est[fig]})
    for p in points():
        row = table["points"].get(p["name"])
        if row is None or p["ops"] != ["model"]:
            continue
        _, total = model_cost(build_point(p), DEFAULT_CLOCK_NS, k)
        m = row["model"]
        meas = {"latency": m.get("latency_cycles"), "dsp": m.get("dsp"), "lut": m.get("lut"), "ff": m.get("ff")}
        for fig in FIGURES:
            if meas[fig] is not None:
                rows.append({"point": p["name"], "function": "(model)", "kind": "model", "split": p["split"],
                             "figure": fig, "measured": meas[fig], "estimate": getattr(total, fig)})
    return rows


def summary(rows: list[dict], split: str) -> dict:
    """Per figure: n, exact matches, mean and max |estimate - measured| / measured."""
    out = {}
    for fig in FIGURES:
        rs = [r for r in rows if r["split"] == split and r["figure"] == fig]
        if not rs:
            continue
        rel = [abs(r["estimate"] - r["measured"]) / max(r["measured"], 1) for r in rs]
        out[fig] = {"n": len(rs), "exact": sum(r["estimate"] == r["measured"] for r in rs),
                    "mean_rel_err": round(float(np.mean(rel)), 4), "max_rel_err": round(float(np.max(rel)), 4)}
    return out


def report(table: dict, k: dict, rows: list[dict]) -> str:
    t = table["tools"]
    n_pts = len(table["points"])
    n_fns = len({(r["point"], r["function"]) for r in rows})
    lines = [f"# rtl cost model calibration (measured: {t['verilator']}, {t['yosys']} synth_xilinx -family xcup, "
             f"{t['xls']} at {t['clock_ns']:g} ns, delay model {t['delay_model']})", "",
             f"Table: {n_pts} configurations, {n_fns} measured functions (ops alone + whole models), sweep "
             f"{table.get('sweep_seconds', 0) / 60:.1f} min on a loaded 2-core machine. Estimate = "
             "passes/rtl_cost_model.py with the constants fitted on the `fit` split; errors below are on the "
             "configurations HELD OUT of the fit. Goals: LUT, FF <= 25 %; DSP, latency exact.", "",
             "| split | figure | n | exact | mean abs. rel. error | max abs. rel. error |", "|---|---|---:|---:|---:|---:|"]
    for split in ("heldout", "fit"):
        for fig, s in summary(rows, split).items():
            lines.append(f"| {split} | {fig} | {s['n']} | {s['exact']} | {100 * s['mean_rel_err']:.1f} % | "
                         f"{100 * s['max_rel_err']:.1f} % |")
    lines += ["", "Held-out configurations, measured vs estimate (latency in cycles = pipeline stages of the op "
              "alone; for models: Verilator):", "",
              "| configuration | function | latency | est | DSP | est | LUT | est | FF | est |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    keyed = {}
    for r in rows:
        keyed.setdefault((r["split"], r["point"], r["function"]), {})[r["figure"]] = r
    for (split, point, fn), figs in keyed.items():
        if split != "heldout":
            continue
        cell = lambda f: (f"{figs[f]['measured']} | {figs[f]['estimate']}" if f in figs else "- | -")  # noqa: E731
        lines.append(f"| {point} | {fn} | {cell('latency')} | {cell('dsp')} | {cell('lut')} | {cell('ff')} |")
    timeouts = [f"{name}: {f['timeout']}" for name, row in table["points"].items()
                for f in row.get("functions", {}).values() if "timeout" in f]
    timeouts += [f"{name}: {t}" for name, row in table["points"].items() for t in row.get("timeouts", [])]
    if timeouts:
        lines += ["", "Stopped at the timeout (no figure recorded): " + "; ".join(timeouts) + "."]
    lines += ["", "Fitted constants (paste into passes/rtl_cost_model.py K when refitted):", "", "```",
              json.dumps(k, sort_keys=True), "```", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, figure in zip(axes, ("lut", "ff", "dsp", "latency")):
        for split, marker, colour in (("fit", "o", "tab:blue"), ("heldout", "s", "tab:red")):
            rs = [r for r in rows if r["figure"] == figure and r["split"] == split]
            ax.scatter([r["measured"] for r in rs], [r["estimate"] for r in rs], marker=marker, c=colour,
                       s=18, alpha=0.7, label=split)
        vals = [max(r["measured"], r["estimate"]) for r in rows if r["figure"] == figure] or [1]
        top = max(vals) * 1.1 + 1
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        if figure in ("lut", "ff") and min(r["measured"] for r in rows if r["figure"] == figure) > 0:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("measured (Yosys / XLS / Verilator)")
        ax.set_ylabel("estimate (rtl cost model)")
        ax.set_title(figure.upper() if figure != "latency" else "latency (cycles)")
        ax.legend(fontsize=7)
    fig.suptitle("rtl cost model vs measured RTL (fit and held-out configurations)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(table: dict) -> dict:
    from passes import rtl_cost_model

    records = op_records(table)
    k = fit([r for r in records if r["split"] == "fit"])
    fit_models(table, k)
    rows = estimates(records, table, k)
    text = report(table, k, rows)
    OUT.with_suffix(".md").write_text(text)
    plot(rows, OUT.with_suffix(".png"))
    table["fit"] = {"constants": k, "heldout": summary(rows, "heldout"), "fit": summary(rows, "fit")}
    OUT.with_suffix(".json").write_text(json.dumps(table, indent=1) + "\n")
    print(text)
    stale = {key: (rtl_cost_model.K.get(key), v) for key, v in k.items() if rtl_cost_model.K.get(key) != v}
    if stale:
        print(f"warning: passes/rtl_cost_model.py K differs from this fit in {len(stale)} constants "
              f"(e.g. {next(iter(stale))}: {next(iter(stale.values()))}); paste the constants above", file=sys.stderr)
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=300, help="seconds per Yosys / Verilator run (default 300)")
    ap.add_argument("--only", help="measure only the points whose name contains this")
    ap.add_argument("--evaluate-only", action="store_true", help="no measurement: fit and evaluate the stored table")
    args = ap.parse_args(argv)
    table = measure(args.timeout, args.only) if not args.evaluate_only else json.loads(OUT.with_suffix(".json").read_text())
    evaluate(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
