"""The summary of a sweep: one flat row per point, `results.csv`, `results.md` and Pareto plots.

Accuracy/AUC are the spx NumPy reference's on the test events (Keras's when the point is not compiled).
`latency`...`bram` are estimates of the vitis cost model (5 ns clock); `measured_*` come from the
rtl target's synthesis and name their tools in `measured_source`. The Pareto front (highest accuracy for
at most that cost) is computed over the points that are ok, separately for latency and for LUT.
"""

from __future__ import annotations

import csv
import io
import json

ESTIMATE = ("latency", "latency_us", "ii", "lut", "ff", "dsp", "bram")
MEASURED = ("latency", "ii", "lut", "ff", "dsp")


def columns(axes: list[str]) -> list[str]:
    return (["id", *axes, "status", "accuracy", "auc", "csim_mismatches", "test_events", *ESTIMATE,
             *(f"measured_{k}" for k in MEASURED), "measured_source", "seconds", "front", "error"])


def rows(tasks: list[dict], records: dict, axes: list[str]) -> list[dict]:
    """One dict per task, in sweep order (pandas-free; every value a str, number, bool or None)."""
    result = []
    for task in tasks:
        r = records.get(task["id"]) or {"status": "missing", "error": "no record (the sweep was interrupted)"}
        est, meas = r.get("estimate") or {}, r.get("measured") or {}
        row = {"id": task["id"], **{a: task["values"][a] for a in axes}, "status": r["status"],
               "accuracy": r.get("accuracy"), "auc": r.get("auc"), "csim_mismatches": r.get("csim_mismatches"),
               "test_events": r.get("test_events"), **{k: est.get(k) for k in ESTIMATE},
               **{f"measured_{k}": meas.get(k) for k in MEASURED},
               "measured_source": json.dumps(meas["source"]) if isinstance(meas.get("source"), dict) else meas.get("source"),
               "seconds": (r.get("seconds") or {}).get("total"), "front": "", "error": r.get("error")}
        result.append(row)
    for cost in ("latency", "lut"):
        for i in pareto_front(result, cost):
            result[i]["front"] = "+".join(filter(None, [result[i]["front"], cost]))
    return result


def pareto_front(table: list[dict], cost: str) -> list[int]:
    """Indices of the ok rows that no other row beats (lower `cost` with at least the same accuracy)."""
    candidates = [(r[cost], -r["accuracy"], i) for i, r in enumerate(table)
                  if r["status"] == "ok" and r.get(cost) is not None and r.get("accuracy") is not None]
    front, best = [], -1.0
    for c, neg_acc, i in sorted(candidates):
        if -neg_acc > best:
            front.append(i)
            best = -neg_acc
    return front


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v).replace("|", "/")


def markdown(table: list[dict], axes: list[str]) -> str:
    cols = [c for c in columns(axes) if c not in ("test_events",) and any(r.get(c) not in (None, "") for r in table)]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in table]
    ok = sum(r["status"] == "ok" for r in table)
    lines.append(f"\n{len(table)} points, {ok} ok, {len(table) - ok} failed. latency (cycles), latency_us, ii, lut, ff, "
                 "dsp, bram: source=estimate (vitis cost model, 5 ns clock); measured_*: the tools in measured_source. "
                 "accuracy/auc: spx NumPy reference (bit-exact with the C simulation when csim_mismatches is 0). "
                 "front: on the Pareto front of accuracy vs latency / LUT.")
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict], axes: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(axes), lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buffer.getvalue()


def _order(encoded: str):
    v = json.loads(encoded)
    return (v is None, v if isinstance(v, (int, float)) else 0, str(v))


def plot(table: list[dict], axis: str | None) -> bytes:
    """Accuracy vs latency and vs LUT (estimates), coloured by `axis`, Pareto front marked; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, 2, figsize=(10, 4))
    ok = [r for r in table if r["status"] == "ok" and r.get("accuracy") is not None]
    groups = sorted({json.dumps(r[axis]) for r in ok}, key=_order) if axis else ["all"]
    for ax, cost, label in zip(panels, ("latency", "lut"), ("latency (cycles, estimate)", "LUT (estimate)")):
        for g in groups:
            pts = [(r[cost], r["accuracy"]) for r in ok if r.get(cost) is not None and (not axis or json.dumps(r[axis]) == g)]
            if pts:
                ax.scatter(*zip(*pts), label=f"{axis} = {json.loads(g)}" if axis else None, s=28)
        front = [table[i] for i in pareto_front(table, cost)]
        if front:
            ax.step([r[cost] for r in front], [r["accuracy"] for r in front], where="post", color="black", lw=1,
                    label="Pareto front")
            ax.scatter([r[cost] for r in front], [r["accuracy"] for r in front], s=90, facecolors="none",
                       edgecolors="black")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    fig.suptitle(f"sweep: accuracy vs cost{f', by {axis}' if axis else ''}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write(out, table: list[dict], axes: list[str]) -> list:
    """results.csv, results.md and pareto_<axis>.png (per axis with several values) through `out` (OutputDir)."""
    from codegen.names import safe_identifier

    written = [out.write_text("results.csv", to_csv(table, axes)), out.write_text("results.md", markdown(table, axes))]
    varied = [a for a in axes if len({json.dumps(r[a]) for r in table}) > 1]
    if not any(r["status"] == "ok" and r.get("latency") is not None for r in table):
        return written
    for axis in varied or [None]:
        name = "pareto" + (f"_{safe_identifier(axis.replace('.', '_'), 'axis')}" if axis else "")
        written.append(out.write_bytes(f"{name}.png", plot(table, axis)))
    return written
