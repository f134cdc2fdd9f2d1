"""Cost model vs the published SparsePixels neutrino designs (shared/calibration/neutrino.csv).

Builds the neutrino architecture (63x63x1 -> input_reduce N -> conv 7x7 1->1 -> relu -> conv 7x7 1->3
-> relu -> avg pool 7 -> flatten 243 -> dense 16 -> relu -> dense 1 -> sigmoid) for N = 8/12/16/20
(t/s/m/l) at the published 8- and 16-bit precisions, runs `spx-unroll,spx-estimate` (the published
schedule: serial input search, everything else fully parallel, reuse 1) and prints published vs
estimated figures. Latency/II are compared with csynth, LUT/FF with Vivado post-synthesis, DSP with
csynth. Weights are seeded random, trained-like (normal, Glorot scale) values, not the published ones.

Then the leave-one-out check of the fit: for each of the 8 configurations, the fitted constants
(FIT below) are re-fitted on the other 7 (coordinate search on a multiplicative grid, minimising the
squared log errors of latency, II, LUT and FF) and the held-out configuration is predicted; the
table prints the published figure, the in-sample estimate (constants as shipped) and the held-out
prediction with their errors, and the mean absolute errors per figure. DSP has no fitted constant
(multiplier widths only), so its held-out error is its plain error.

    python bench/cost_model_calibration.py [--csv shared/calibration/neutrino.csv] [--modules] [--no-loo]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import StringAttr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import passes.cost_model as cost_model  # noqa: E402
from passes import run_pipeline  # noqa: E402
from passes.cost_model import estimate, op_labels  # noqa: E402
from spx_ir.accum import conv_terms, exact_sum_type  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import FixedType  # noqa: E402

CSV = ROOT.parent / "shared" / "calibration" / "neutrino.csv"
CONFIGS = {"sparse_t": 8, "sparse_s": 12, "sparse_m": 16, "sparse_l": 20}
# calibration README: input, weight/bias, activation types
PRECISION = {
    8: (FixedType(8, 1, signed=False), FixedType(8, 3), FixedType(8, 2, False, "RND_CONV", "SAT")),
    16: (FixedType(16, 6), FixedType(16, 7), FixedType(16, 6, False, "RND_CONV", "SAT")),
}
# published top-level csynth latency (cycles) per (model, bits), from neutrino.csv
PUBLISHED_LATENCY = {("sparse_t", 8): 69, ("sparse_s", 8): 90, ("sparse_m", 8): 111, ("sparse_l", 8): 133,
                     ("sparse_t", 16): 71, ("sparse_s", 16): 94, ("sparse_m", 16): 116, ("sparse_l", 16): 136}


def neutrino_ir(n_max: int, bits: int, seed: int = 0):
    """The neutrino sparse model at the published precision; ops carry the published module names."""
    in_t, w_t, act_t = PRECISION[bits]
    rng = np.random.default_rng(seed)
    b = ModelBuilder(f"neutrino_n{n_max}_{bits}b", [63, 63, 1], in_t)
    # trained-like weights: normal with the Glorot scale sqrt(2 / (fan_in + fan_out))
    def weights(*shape):
        fan_in, fan_out = (np.prod(shape[:-1]), shape[-1]) if len(shape) > 1 else (shape[0], shape[0])
        return b.const_float(np.clip(rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), shape), -2, 2), w_t)

    named = []
    feat, hash = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    named.append("input_reduce")
    x_t = in_t
    for k, co in ((1, 1), (2, 3)):
        conv_t = exact_sum_type(x_t, w_t, w_t, conv_terms(n_max, 7, 7, 1))
        y = b.sparse_conv2d(feat, hash, weights(7, 7, 1, co), weights(co), conv_t)
        feat, x_t = b.sparse_activation(y, hash, "relu", act_t), act_t
        named += [f"conv{k}", f"relu{k}"]
    feat, hash = b.sparse_pool2d(feat, hash, 7, "avg", 63, 63, act_t)
    x = b.sparse_flatten(feat, hash, 9, 9)
    x = b.dense(x, weights(243, 16), weights(16), exact_sum_type(act_t, w_t, w_t, 243))
    x = b.activation(x, "relu", act_t)
    x = b.dense(x, weights(16, 1), weights(1), exact_sum_type(act_t, w_t, w_t, 16))
    module = b.finish([b.activation(x, "sigmoid", FixedType(16, 0, signed=False))])
    named += ["pool1", "flatten", "dense1", "relu3", "dense2", "sigmoid"]
    ops = [op for op in module.walk() if op.name.startswith("spx.") and op.name != "spx.const"]
    for op, name in zip(ops, named, strict=True):
        op.attributes["layer"] = StringAttr(name)
    return module


def published(path: Path = CSV) -> dict[tuple[str, int, str, str], dict[str, str]]:
    """(model, bits, module, source) -> CSV row."""
    with open(path) as f:
        return {(r["model"], int(r["bits"]), r["module"], r["source"]): r for r in csv.DictReader(f)}


def estimates(model: str, bits: int):
    """(per-layer costs, total) of the estimate for one published configuration."""
    module = run_pipeline(neutrino_ir(CONFIGS[model], bits), "spx-unroll")
    costs, total = estimate(module)
    labels = op_labels(module)
    return {labels[op]: c for op, c in costs.items()}, total


def _err(est: float, pub: str) -> str:
    if pub in ("", None):
        return "-"
    pub = float(pub)
    return "n/a" if pub == 0 else f"{100 * (est - pub) / pub:+.0f}%"


# constants re-fitted by the leave-one-out check (the others are derived from the emitted structure)
FIT = ("T_LEVEL", "T_CHAIN", "T_CHAIN_BIT", "K_IR_LUT", "K_IR_FF", "K_GLUE_FF", "K_MUL_LUT")
FIGURES = ("latency", "ii", "lut", "ff", "dsp")
GRID = (0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.4)


def _published_figures(pub, model: str, bits: int) -> dict[str, float]:
    cs, vv = pub[(model, bits, "top", "csynth")], pub[(model, bits, "top", "vivado_synth")]
    return {"latency": float(cs["latency_max"]), "ii": float(cs["ii"]), "lut": float(vv["lut"]),
            "ff": float(vv["ff"]), "dsp": float(cs["dsp"])}


def _predict(modules, constants: dict[str, float]) -> dict:
    saved = {k: getattr(cost_model, k) for k in constants}
    try:
        for k, v in constants.items():
            setattr(cost_model, k, v)
        return {key: estimate(m)[1] for key, m in modules.items()}
    finally:
        for k, v in saved.items():
            setattr(cost_model, k, v)


def _loss(predicted, targets, keys) -> float:
    return sum(math.log(max(getattr(predicted[k], f), 1) / max(targets[k][f], 1)) ** 2
               for k in keys for f in ("latency", "ii", "lut", "ff"))


def fit(modules, targets, keys, start: dict[str, float], rounds: int = 2) -> dict[str, float]:
    """Coordinate search of the FIT constants minimising the squared log errors on `keys`."""
    best = dict(start)
    sub = {k: modules[k] for k in keys}
    best_loss = _loss(_predict(sub, best), targets, keys)
    for _ in range(rounds):
        for name in FIT:
            for factor in GRID:
                trial = {**best, name: best[name] * factor}
                loss = _loss(_predict(sub, trial), targets, keys)
                if loss < best_loss - 1e-12:
                    best, best_loss = trial, loss
    return best


def leave_one_out(pub) -> str:
    keys = [(m, b) for b in (8, 16) for m in CONFIGS]
    modules = {k: run_pipeline(neutrino_ir(CONFIGS[k[0]], k[1]), "spx-unroll") for k in keys}
    targets = {k: _published_figures(pub, *k) for k in keys}
    shipped = {name: getattr(cost_model, name) for name in FIT}
    in_sample = _predict(modules, shipped)
    rows, errors = [], {f: ([], []) for f in FIGURES}
    for i, held in enumerate(keys):
        print(f"[calibration] leave-one-out {i + 1}/{len(keys)}: fit without {held[0]} {held[1]}b", file=sys.stderr, flush=True)
        constants = fit(modules, targets, [k for k in keys if k != held], shipped)
        predicted = _predict({held: modules[held]}, constants)[held]
        cells = []
        for f in FIGURES:
            pub_v, ins, loo = targets[held][f], getattr(in_sample[held], f), getattr(predicted, f)
            for store, v in zip(errors[f], (ins, loo)):
                store.append(abs(v - pub_v) / pub_v * 100 if pub_v else 0.0)
            cells.append(f"{pub_v:.0f} | {ins} | {loo} | {_err(loo, str(pub_v))}")
        rows.append(f"| {held[0]} {held[1]}b | " + " | ".join(cells) + " |")
    head = "| held out | " + " | ".join(f"pub {f} | in-sample | held-out | err" for f in FIGURES) + " |"
    mean = "| **mean abs err** | " + " | ".join(
        f" | {sum(errors[f][0]) / len(keys):.1f}% | {sum(errors[f][1]) / len(keys):.1f}% | " for f in FIGURES) + " |"
    return "\n".join(["\n## leave-one-out (fit on 7 configurations, predict the 8th; source=estimate)\n", head,
                      "|---|" + "---:|" * (4 * len(FIGURES)), *rows, mean])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--modules", action="store_true", help="also print per-module errors")
    ap.add_argument("--no-loo", action="store_true", help="skip the leave-one-out check")
    args = ap.parse_args(argv)
    pub = published(args.csv)
    print("# spx cost model vs published neutrino designs (source=estimate; published: csynth latency/II/DSP, Vivado LUT/FF)\n")
    print("| config | pub latency | est latency | err | pub II | est II | err | pub DSP | est DSP | err | pub LUT (Vivado) | est LUT | err | pub FF (Vivado) | est FF | err |")
    print("|---|" + "---:|" * 15)
    per_module = []
    for bits in (8, 16):
        for model in CONFIGS:
            layers, total = estimates(model, bits)
            cs, vv = pub[(model, bits, "top", "csynth")], pub[(model, bits, "top", "vivado_synth")]
            print(f"| {model} {bits}b | {cs['latency_max']} | {total.latency} | {_err(total.latency, cs['latency_max'])} "
                  f"| {cs['ii']} | {total.ii} | {_err(total.ii, cs['ii'])} | {cs['dsp']} | {total.dsp} | {_err(total.dsp, cs['dsp'])} "
                  f"| {vv['lut']} | {total.lut} | {_err(total.lut, vv['lut'])} | {vv['ff']} | {total.ff} | {_err(total.ff, vv['ff'])} |")
            for layer, c in layers.items():
                if (model, bits, layer, "csynth") in pub:
                    mc, mv = pub[(model, bits, layer, "csynth")], pub[(model, bits, layer, "vivado_synth")]
                    per_module.append(f"| {model} {bits}b | {layer} | {mc['latency_max']} | {c.latency} | {mc['dsp']} | {c.dsp} "
                                      f"| {mv['lut']} | {c.lut} | {_err(c.lut, mv['lut'])} | {mv['ff']} | {c.ff} | {_err(c.ff, mv['ff'])} |")
    if args.modules:
        print("\n## per module (source=estimate)\n")
        print("| config | module | pub latency | est latency | pub DSP | est DSP | pub LUT (Vivado) | est LUT | err | pub FF (Vivado) | est FF | err |")
        print("|---|---|" + "---:|" * 10)
        print("\n".join(per_module))
    if not args.no_loo:
        print(leave_one_out(pub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
