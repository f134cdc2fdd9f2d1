"""C-simulation throughput of the current Vitis kernels vs a baseline revision, the NumPy reference and
hls4ml (neutrino sparse-l, N = 20, 8 bit, the calibration architecture of cost_model_calibration.py).

The baseline (default: 33d1d7e, the last main commit with the kernels before issue 11) is exported with `git archive` into a temporary directory and timed
in a child process on the same IR builder, weights and events, so old and new kernels run the same
model. hls4ml's figures are read from bench/results/vs_hls4ml.md (measured by bench/vs_hls4ml.py on
this machine; hls4ml takes minutes, so it is not re-run here). Median of 3 runs of 10,000 neutrino-
like events (Poisson mean 27 active pixels). Requirement >= 4,000 events/s, goal >= 14,000.

    python bench/csim_throughput.py [--baseline REV] [--events 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, statistics, sys, time
import numpy as np
sys.path.insert(0, os.getcwd())
from bench.cost_model_calibration import neutrino_ir
from codegen.vitis.csim import load

events, variant = int(sys.argv[1]), sys.argv[2]
module = neutrino_ir(20, 8)
if variant != "tree":
    from xdsl.dialects.builtin import StringAttr
    next(op for op in module.walk() if op.name == "spx.input_reduce").search = StringAttr(variant)
rng = np.random.default_rng(2024)
x = np.zeros((events, 63 * 63))
for i, count in enumerate(np.minimum(rng.poisson(27, events), 63 * 63)):
    x[i, rng.choice(63 * 63, size=count, replace=False)] = rng.uniform(0.05, 1.5, count)
x = x.reshape(events, 63, 63, 1)
t = time.perf_counter(); sim = load(module); build = time.perf_counter() - t
def rate(fn):
    runs = []
    for _ in range(3):
        t = time.perf_counter(); fn(x); runs.append(events / (time.perf_counter() - t))
    return statistics.median(runs)
out = {"build_s": build, "csim": rate(sim.predict_raw), "raw": sim.predict_raw(x[:2000]).tolist()}
if variant == "tree" and "--numpy" in sys.argv:
    from codegen.numpy.emit import load as numpy_load
    ref = numpy_load(module)
    out["numpy"] = rate(ref.predict_raw)
    out["equal"] = bool(np.array_equal(ref.predict_raw(x), sim.predict_raw(x)))
print(json.dumps(out))
"""


def run(tree: Path, events: int, variant: str = "tree", numpy: bool = False) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(events), variant] + (["--numpy"] if numpy else [])
    with tempfile.TemporaryDirectory(prefix="spx-bench-") as cache:  # a fresh build, removed after
        env = {**os.environ, "PYTHONPATH": str(tree), "SPX_CACHE": cache}
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"error: timing {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def hls4ml_rows() -> list[str]:
    path = ROOT / "bench" / "results" / "vs_hls4ml.md"
    if not path.is_file():
        return []
    return [r for r in path.read_text().splitlines() if r.startswith("| hls4ml")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="33d1d7e", help="git revision of the old kernels")
    ap.add_argument("--events", type=int, default=10000)
    args = ap.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"[csim_throughput] new kernels (HEAD {head}) ...", file=sys.stderr, flush=True)
    new = run(ROOT, args.events, numpy=True)
    print("[csim_throughput] stream variant ...", file=sys.stderr, flush=True)
    stream = run(ROOT, args.events, "stream")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[csim_throughput] baseline {args.baseline} ({rev}) ...", file=sys.stderr, flush=True)
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = run(Path(tmp), args.events)
    same = new["raw"] == old["raw"] == stream["raw"]
    one, five, _ = os.getloadavg()
    print(f"# C-simulation throughput, neutrino sparse-l (N=20), 8 bit, {args.events:,} events, 2 threads, median of 3\n")
    print(f"Load average at end: {one:.2f} / {five:.2f} (1/5 min); other jobs may share the 2 cores.\n")
    print("| what | events/s | build (s) | notes |")
    print("| --- | ---: | ---: | --- |")
    print(f"| spx csim, new kernels (HEAD {head}, search=tree) | {new['csim']:,.0f} | {new['build_s']:.1f} | "
          f"g++ -O2 -std=c++14; == NumPy on all events: {new['equal']} |")
    print(f"| spx csim, new kernels, search=stream | {stream['csim']:,.0f} | {stream['build_s']:.1f} | raster-scan input_reduce |")
    print(f"| spx csim, old kernels ({args.baseline} {rev}) | {old['csim']:,.0f} | {old['build_s']:.1f} | "
          f"outputs of 2,000 events identical to new (tree, stream): {same} |")
    print(f"| spx NumPy reference | {new['numpy']:,.0f} | - | bit-exact oracle |")
    for row in hls4ml_rows():
        cells = [c.strip() for c in row.strip("|").split("|")]
        print(f"| {cells[0]}: {cells[1]} | {cells[4]} | {cells[3]} | from bench/results/vs_hls4ml.md (bench/vs_hls4ml.py) |")
    verdict = "met" if new["csim"] >= 4000 else "NOT met"
    print(f"\nRequirement >= 4,000 events/s: {verdict}; goal >= 14,000: {'met' if new['csim'] >= 14000 else 'not met'}. "
          f"New / old: {new['csim'] / old['csim']:.2f}x.")
    return 0 if new["csim"] >= 4000 and same and new["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
