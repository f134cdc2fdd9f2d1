"""Measured RTL of the neutrino seed model (8 bit) through the rtl target, next to the published Vitis
design and spx's estimate, with each tool's run time.

For each (image size S, N): builds the neutrino sparse model on an S x S image (layers as published:
conv7x7(1) relu conv7x7(3) relu avgpool7 flatten dense16 relu dense1 sigmoid), runs XLS (lower, optimise,
pipeline at 5 ns), Verilator (build + stream 256 events: latency, II) and Yosys (synth_xilinx -family
xcup: LUT, FF, DSP, CARRY, depth). Published Vitis figures exist for S = 63 only (N = 8 -> sparse_t,
N = 20 -> sparse_l). A configuration past --timeout (per tool) is reported as such, never as a figure;
the largest measured size and the measured scaling with H*W and N are then what this bench gives.

    python bench/rtl_seed_models.py --sizes 14,21,28 --n 8,20 --timeout 1800
Results: bench/results/rtl_seed_models.{md,json}.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codegen.rtl import emit as rtl_emit  # noqa: E402
from codegen.rtl.synth import ToolTimeout, verilator_timing, yosys  # noqa: E402
from passes.cost_model import estimate  # noqa: E402
from spx_ir.accum import conv_terms, exact_sum_type  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import FixedType  # noqa: E402
from spx_ir.text import SpxError  # noqa: E402

CSV = ROOT.parent / "shared" / "calibration" / "neutrino.csv"
PUBLISHED_NAME = {8: "sparse_t", 12: "sparse_s", 16: "sparse_m", 20: "sparse_l"}
IN_T, W_T, ACT_T = FixedType(8, 1, signed=False), FixedType(8, 3), FixedType(8, 2, False, "RND_CONV", "SAT")


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


def measure(size: int, n_max: int, timeout: float) -> dict:
    module = neutrino(size, n_max)
    _, est = estimate(module)
    row = {"size": size, "n": n_max, "estimate": est.as_dict(), "timeouts": []}
    t0 = time.time()
    try:
        result = rtl_emit.build(module)
    except SpxError as err:
        row["error"] = str(err)
        return row
    row["xls_s"] = round(time.time() - t0, 1)
    meta, files = result["meta"], result["files"]
    row["xls_s_uncached"] = meta["xls_seconds"]
    try:
        timing, secs = verilator_timing(files, meta, 256, timeout)
        row.update(timing)
        row["verilator_s"] = round(secs, 1)
    except ToolTimeout as err:
        row["timeouts"].append(str(err))
    try:
        res, secs = yosys(files[f"{meta['module']}.v"], meta["module"], timeout)
        row.update(res)
        row["yosys_s"] = round(secs, 1)
    except ToolTimeout as err:
        row["timeouts"].append(str(err))
    return row


def table(rows: list[dict], versions: str) -> str:
    f = lambda v: "-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))  # noqa: E731
    out = [f"Neutrino sparse model, 8 bit, rtl target at 5 ns (measured: {versions}; est = spx estimate of the "
           "Vitis design; pub = published Vitis HLS csynth latency/II, Vivado post-synthesis LUT/FF/DSP; "
           "Yosys and Vivado count LUTs differently).", "",
           "| HxW | N | latency (cyc) | est | pub | II | est | pub | LUT | est | pub | FF | est | pub | DSP | est | pub "
           "| CARRY | XLS s | Verilator s | Yosys s |",
           "|---|---:|" + "---:|" * 19]
    for r in rows:
        e = r["estimate"]
        p = published(r["n"]) if r["size"] == 63 else {}
        cs, vs = p.get("csynth", {}), p.get("vivado_synth", {})
        out.append(f"| {r['size']}x{r['size']} | {r['n']} | {f(r.get('latency_cycles'))} | {e['latency']} | "
                   f"{cs.get('latency_max', '-')} | {f(r.get('ii_cycles'))} | {e['ii']} | {cs.get('ii', '-')} | "
                   f"{f(r.get('lut'))} | {e['lut']} | {vs.get('lut', '-')} | {f(r.get('ff'))} | {e['ff']} | "
                   f"{vs.get('ff', '-')} | {f(r.get('dsp'))} | {e['dsp']} | {vs.get('dsp', '-')} | {f(r.get('carry'))} | "
                   f"{f(r.get('xls_s_uncached'))} | {f(r.get('verilator_s'))} | {f(r.get('yosys_s'))} |")
        for t in r["timeouts"]:
            out.append(f"|  | | TIMEOUT: {t} |" + " |" * 18)
    measured = [r for r in rows if r.get("lut")]
    if len(measured) >= 2:
        hw = np.log([r["size"] ** 2 * r["n"] for r in measured])
        for key in ("lut", "ff"):
            slope = np.polyfit(hw, np.log([r[key] for r in measured]), 1)[0]
            out.append(f"\nMeasured scaling: {key.upper()} ~ (H*W*N)^{slope:.2f} over {len(measured)} sizes")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from codegen.rtl.sim import tool_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="14,21", help="image sizes (63 = the published model)")
    ap.add_argument("--n", default="8", help="N values (8 = sparse_t, 20 = sparse_l)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per tool run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rtl_seed_models"))
    args = ap.parse_args(argv)
    versions = f"{tool_version('verilator')}, {tool_version('yosys')}, xls-python {rtl_emit._xls_version()}"
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for n in [int(s) for s in args.n.split(",")]:
            print(f"measuring {size}x{size} N={n} ...", file=sys.stderr, flush=True)
            rows.append(measure(size, n, args.timeout))
            Path(args.out + ".json").write_text(json.dumps(rows, indent=1) + "\n")
    text = table(rows, versions)
    Path(args.out + ".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
