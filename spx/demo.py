"""`spx demo`: train, compile, C-simulate and compare SparsePixels models on real data, end to end.

On sparsified MNIST (default) it trains the standard CNN and the sparse models with N = 8/12/16/20
(t/s/m/l) at 8 and 16 bit, compiles each through the default pipeline into a NumPy reference and a
Vitis HLS project, runs the C simulation on the test set, counts mismatches against the reference
(must be 0), and prints one table: accuracy / AUC, estimated latency, II and resources. Plots go to
`<out>/*.png`. Latency and resource figures are estimates of the vitis cost model.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from passes.cost_model import CLOCK_NS

SIZES = {"t": 8, "s": 12, "m": 16, "l": 20}
DATASETS = {
    # dataset: (model builder name, classes, input threshold for the sparse models)
    "mnist": ("mnist_model", 10, 0.5),
    "lartpc": ("neutrino_model", 2, 0.0),
    "jets": ("jet_model", 5, 0.0),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def auc_one_vs_rest(scores: np.ndarray, labels: np.ndarray, cls: int) -> float:
    """ROC AUC of `scores` for class `cls` vs the rest (rank statistic, ties averaged)."""
    pos = labels == cls
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def class_scores(y: np.ndarray, classes: int) -> np.ndarray:
    """[B, classes] scores from a softmax output or a single sigmoid output."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return np.concatenate([1 - y, y], axis=1) if y.shape[1] == 1 and classes == 2 else y


@dataclass
class Row:
    model: str
    bits: str
    n_max: str
    accuracy: float
    auc: float
    latency: str = "-"
    latency_us: str = "-"
    ii: str = "-"
    dsp: str = "-"
    lut: str = "-"
    ff: str = "-"
    mismatches: str = "-"
    per_layer: dict = field(default_factory=dict)


def train(model, x, y, classes, epochs, lr=3e-3, verbose=2, batch_size=64):
    """Adam, XLA-compiled steps; Keras prints one progress line per epoch (verbose=2).

    Binary cross-entropy for a single sigmoid output, sparse categorical cross-entropy otherwise."""
    import tf_keras as keras

    binary = classes == 2 and int(model.output_shape[-1]) == 1
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(lr), loss, metrics=["accuracy"], jit_compile=True)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model


def evaluate(y_pred, labels, classes) -> tuple[float, float]:
    scores = class_scores(y_pred, classes)
    acc = float((scores.argmax(axis=1) == labels).mean())
    aucs = [auc_one_vs_rest(scores[:, c], labels, c) for c in range(scores.shape[1])]
    return acc, float(np.nanmean(aucs))


def compile_and_check(model, x_test, labels, classes, out_dir: Path, row: Row) -> Row:
    """spx-compile a Keras model, write its projects, C-simulate, count mismatches, estimate cost."""
    import spx

    cm = spx.compile(model)
    cm.write(out_dir, force=True)
    t = time.perf_counter()
    row.mismatches = str(csim_mismatches(cm, x_test))
    log(f"    C simulation of {len(x_test)} events: {time.perf_counter() - t:.1f} s")
    row.accuracy, row.auc = evaluate(cm.predict(x_test), labels, classes)
    total, per_layer = estimated_cost(cm)
    row.latency, row.latency_us = str(total.latency), f"{total.latency * CLOCK_NS / 1000:.3f}"
    row.ii, row.dsp, row.lut, row.ff = str(total.ii), str(total.dsp), str(total.lut), str(total.ff)
    row.per_layer = {name: (c.latency, c.lut) for name, c in per_layer.items()}
    return row


def csim_mismatches(cm, x) -> int:
    """Events whose C-simulation output differs (in any raw bit) from the NumPy reference's."""
    ref = np.asarray(cm.predict_raw(x))
    csim = np.asarray(cm.predict_raw(x, backend="csim"))
    return int(np.any(ref != csim, axis=tuple(range(1, ref.ndim))).sum())


def estimated_cost(cm, clock_ns: float = CLOCK_NS):
    """(model total, {layer: cost}) from the vitis cost model."""
    from passes.cost_model import estimate

    per_op, total = estimate(cm.module, clock_ns)
    names = {op: op.attributes["layer"].data for op in per_op if "layer" in op.attributes}
    return total, {names.get(op, op.name): c for op, c in per_op.items()}


def table(rows: list[Row]) -> str:
    head = "| model | bits | N | accuracy | mean AUC | latency (cycles) | latency (µs) | II | DSP | LUT | FF | csim mismatches |"
    lines = [head, "|" + " --- |" * 12]
    for r in rows:
        lines.append(f"| {r.model} | {r.bits} | {r.n_max} | {r.accuracy:.3f} | {r.auc:.3f} | {r.latency} | {r.latency_us} | "
                     f"{r.ii} | {r.dsp} | {r.lut} | {r.ff} | {r.mismatches} |")
    lines.append("\nLatency/II/DSP/LUT/FF: source=estimate (vitis cost model, 5 ns clock); accuracy/AUC of the sparse "
                 "models: spx NumPy reference (bit-exact with the C simulation); standard CNN: Keras float.")
    return "\n".join(lines)


def plots(rows: list[Row], out: Path, dataset: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    sparse = [r for r in rows if r.n_max != "-"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for bits in sorted({r.bits for r in sparse}):
        pts = [(int(r.n_max), r.accuracy) for r in sparse if r.bits == bits]
        ax.plot(*zip(*pts), marker="o", label=f"sparse, {bits} bit")
    for r in rows:
        if r.n_max == "-":
            ax.axhline(r.accuracy, color="gray", ls="--", label="standard CNN (float)")
    ax.set_xlabel("N (active pixels kept)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{dataset}: accuracy vs N")
    ax.legend()
    fig.tight_layout()
    written.append(out / "accuracy_vs_n.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{r.bits}b N={r.n_max}" for r in sparse]
    axes[0].bar(labels, [int(r.latency) for r in sparse])
    axes[0].set_ylabel("latency (cycles, estimate)")
    axes[1].bar(labels, [int(r.lut) for r in sparse], color="tab:orange")
    axes[1].set_ylabel("LUT (estimate)")
    for a in axes:
        a.tick_params(axis="x", rotation=60)
    fig.suptitle("latency and resources per model (vitis cost model estimate)")
    fig.tight_layout()
    written.append(out / "latency_resources.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    largest = max(sparse, key=lambda r: (int(r.n_max), r.bits))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    layers = list(largest.per_layer)
    axes[0].bar(layers, [largest.per_layer[k][0] for k in layers])
    axes[0].set_ylabel("latency (cycles, estimate)")
    axes[1].bar(layers, [largest.per_layer[k][1] for k in layers], color="tab:orange")
    axes[1].set_ylabel("LUT (estimate)")
    for a in axes:
        a.tick_params(axis="x", rotation=60)
    fig.suptitle(f"per layer: sparse N={largest.n_max}, {largest.bits} bit (vitis cost model estimate)")
    fig.tight_layout()
    written.append(out / "per_layer.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def main(args) -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    import tf_keras as keras

    import frontends.keras as fk
    from spx import datasets

    keras.utils.set_random_seed(0)
    builder_name, classes, threshold = DATASETS[args.dataset]
    build = getattr(fk, builder_name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"[data] loading {args.dataset}")
    x_train, y_train, x_test, y_test = datasets.load(args.dataset)
    sizes = {"l": 20} if args.quick else SIZES
    bit_widths = (16,) if args.quick else (8, 16)
    epochs = 2 if args.quick else int(os.environ.get("SPX_DEMO_EPOCHS", "12"))
    tune_epochs = 1 if args.quick else max(1, epochs // 4)
    rows: list[Row] = []

    log(f"[train] standard CNN (float), {epochs} epochs")
    standard = train(build(sparse=False), x_train, y_train, classes, epochs)
    acc, auc = evaluate(standard.predict(x_test, verbose=0), y_test, classes)
    rows.append(Row("standard CNN", "float", "-", acc, auc))

    # N changes no weight shape: one float sparse model (largest N) seeds every quantized variant
    n_float = max(sizes.values())
    log(f"[train] sparse float model (N={n_float}, threshold {threshold}), {epochs} epochs")
    float_model = train(build(n_max=n_float, threshold=threshold), x_train, y_train, classes, epochs)
    for tag, n in sizes.items():
        for bits in bit_widths:
            log(f"[train] sparse-{tag} (N={n}) {bits} bit: QKeras fine-tune from the float weights, {tune_epochs} epochs")
            q = build(n_max=n, bits=bits, threshold=threshold)
            for layer in q.layers:
                if layer.get_weights():
                    layer.set_weights(float_model.get_layer(layer.name).get_weights())
            q = train(q, x_train, y_train, classes, tune_epochs, lr=1e-3)
            log(f"[compile] sparse-{tag} {bits} bit -> {out / f'sparse_{tag}_{bits}b'}")
            row = Row(f"sparse-{tag}", str(bits), str(n), 0.0, 0.0)
            rows.append(compile_and_check(q, x_test, y_test, classes, out / f"sparse_{tag}_{bits}b", row))

    text = table(rows)
    print(text)
    (out / "results.md").write_text(text + "\n")
    for p in plots(rows, out, args.dataset):
        log(f"[plot] {p}")
    bad = [r for r in rows if r.mismatches not in ("-", "0")]
    log(f"[done] {time.perf_counter() - start:.0f} s; table in {out / 'results.md'}")
    if bad:
        log(f"error: C simulation disagrees with the NumPy reference for {', '.join(r.model + ' ' + r.bits for r in bad)}")
        return 1
    return 0
