"""`spx sweep` scaling: one 16-point sweep (MNIST, N x bits, 1 epoch) on a LocalCluster with 1 and 2 workers.

Both runs compute the same points from scratch, each with an empty SPX_CACHE (otherwise the second run
would reuse the first one's compiled C simulations). Printed side by side:
- wall: the whole `spx.sweep` call (checks, cluster start, TensorFlow import in every worker, points, report);
- startup: from the call to the first point starting (checks + cluster + worker warm-up);
- span: first point start to last point end; busy: the sum of the points' own run times;
- speed-up: 1-worker wall / 2-worker wall (goal >= 1.7 on 2 cores), and the same for span;
- overhead/point: on each worker, the gap between one point ending and its next point starting (result
  hand-back, scheduling, dispatch), averaged (goal < 0.2 s).
TensorFlow's import cost per process is measured separately; workers import it once, before any point.

    python bench/sweep_scaling.py [--train-events N] [--test-events N] [--epochs 1] [--no-csim]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tf_import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import frontends.keras; print(time.perf_counter() - t)"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(spec: dict, workers: int, work: Path) -> dict:
    import spx

    os.environ["SPX_CACHE"] = str(work / f"cache-{workers}")  # fresh caches: no reuse between the runs
    out = work / f"sweep-{workers}"
    start = time.time()
    rows = spx.sweep(spec, out, workers=workers, progress=False)
    wall = time.time() - start
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    spans = [(r["worker"]["pid"], r["worker"]["started"], r["worker"]["finished"]) for r in records]
    gaps = []
    for pid in {s[0] for s in spans}:
        mine = sorted((a, b) for p, a, b in spans if p == pid)
        gaps += [nxt[0] - prev[1] for prev, nxt in zip(mine, mine[1:])]
    first, last = min(s[1] for s in spans), max(s[2] for s in spans)
    return {"workers": workers, "points": len(rows), "ok": sum(r["status"] == "ok" for r in rows), "wall": wall,
            "startup": first - start, "span": last - first, "busy": sum(b - a for _, a, b in spans),
            "overhead": sum(gaps) / len(gaps) if gaps else float("nan"), "pids": len({s[0] for s in spans})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-events", type=int, default=None, help="training events per point (default: all 4,000)")
    ap.add_argument("--test-events", type=int, default=None, help="test events per point (default: all 1,000)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--no-csim", action="store_true", help="skip the C-simulation check (g++ per point)")
    args = ap.parse_args()
    spec = {"dataset": "mnist", "model": "mnist",
            "axes": {"n_max": {"from": 4, "to": 32, "step": 4}, "bits": [8, 16]},
            "steps": {"train_epochs": args.epochs, "train_events": args.train_events, "test_events": args.test_events,
                      "compile": True, "csim_check": not args.no_csim, "estimate": True}}
    tf_import = tf_import_seconds()
    with tempfile.TemporaryDirectory(prefix="spx-sweep-bench-") as tmp:
        results = [run(spec, w, Path(tmp)) for w in (1, 2)]
    one, two = results
    print(f"16-point sweep (MNIST, N = 4..32 x bits 8/16, {args.epochs} training epoch(s), train events: "
          f"{args.train_events or 'all'}, test events: {args.test_events or 'all'}; steps: train, compile, "
          f"{'' if args.no_csim else 'csim check, '}estimate) on a LocalCluster, {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}")
    print(f"TensorFlow import per process: {tf_import:.1f} s (paid once per worker, before its first point)\n")
    print("| workers | points ok | wall (s) | startup (s) | span (s) | busy (s) | speed-up wall | speed-up span | overhead/point (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['workers']} ({r['pids']} used) | {r['ok']}/{r['points']} | {r['wall']:.1f} | {r['startup']:.1f} | "
              f"{r['span']:.1f} | {r['busy']:.1f} | {one['wall'] / r['wall']:.2f}x | {one['span'] / r['span']:.2f}x | "
              f"{r['overhead']:.3f} |")
    print("\ngoals: speed-up >= 1.7x with 2 workers on 2 cores; scheduling overhead < 0.2 s per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
