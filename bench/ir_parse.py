"""Parse time and peak memory of large IR files (issue 13 finding 11: a 50 MB file took ~150 s).

A model whose size is its dense weights (64x64 image, flatten, dense of 4096 x U int8 weights) is printed
by spx, then parsed in a fresh process per measurement, side by side:
  xdsl  the anchor: xDSL 0.74's token-by-token integer list parser, which spx.const used before
        (the child switches spx's numpy reader off; or, with --before-root DIR, runs the spx code in DIR,
        e.g. a checkout of main before the change);
  spx   spx.const's numpy reader for long lists (spx_ir/dialect.py `_parse_values`).
`peak MB` is the child's maximum resident set (interpreter, xDSL and the text included); `round trip` says
whether print(parse(text)) == text, checked in the spx child after its peak was taken (`spx print s`: the
time of that print).

    PYTHONPATH=. python bench/ir_parse.py [--sizes 1,5,50] [--skip-anchor-above 50] [--before-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_ir(megabytes: float, seed: int = 0) -> tuple[str, int]:
    """The text of a model holding about `megabytes` of int8 weights, and its number of weights."""
    import numpy as np

    from spx_ir.builder import ModelBuilder
    from spx_ir.fixed import FixedType
    from spx_ir.text import print_module

    units = max(1, round(megabytes * 1e6 / 4.76 / 4096))  # "-123, ": ~4.76 characters a value
    rng = np.random.default_rng(seed)
    b = ModelBuilder("big", [64, 64, 1], FixedType(8, 1, signed=False))
    feat, hash = b.input_reduce(b.input, n_max=8, threshold=0.1)
    x = b.sparse_flatten(feat, hash, 64, 64)
    w_t = FixedType(8, 3)
    y = b.dense(x, b.const(rng.integers(-128, 128, (4096, units)), w_t), b.const(rng.integers(-128, 128, units), w_t),
                FixedType(16, 6))
    return print_module(b.finish([y])), 4097 * units


def child(path: str, mode: str) -> None:
    from spx_ir import dialect
    from spx_ir.text import parse_module, print_module

    if mode == "xdsl":
        dialect._FAST_LIST = 1 << 62
    text = Path(path).read_text()
    start = time.perf_counter()
    module = parse_module(text, path)
    seconds = time.perf_counter() - start
    peak = _peak_mb()
    start = time.perf_counter()
    same = print_module(module) == text if mode == "spx" else None
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "round_trip": same, "print": time.perf_counter() - start}))


def _peak_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, mode: str, root: Path = ROOT) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, "--child", str(path), mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,5,50", help="IR sizes in MB")
    ap.add_argument("--skip-anchor-above", type=float, default=1e9, help="no xdsl run above this size (MB)")
    ap.add_argument("--before-root", type=Path, default=ROOT, help="spx source tree for the anchor run")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    print(f"{'MB':>6} {'values':>10} | {'xdsl s':>8} {'spx s':>7} {'speed-up':>9} | "
          f"{'xdsl peak MB':>12} {'spx peak MB':>11} | round trip {'spx print s':>11}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for mb in map(float, args.sizes.split(",")):
            text, values = make_ir(mb)
            path = Path(tmp) / f"ir_{mb:g}.mlir"
            path.write_text(text)
            new = measure(path, "spx")
            old = measure(path, "xdsl", args.before_root) if mb <= args.skip_anchor_above else None
            o_s = f"{old['seconds']:8.2f}" if old else f"{'-':>8}"
            o_m = f"{old['peak_mb']:12.0f}" if old else f"{'-':>12}"
            ratio = f"{old['seconds'] / new['seconds']:8.0f}x" if old else f"{'-':>9}"
            print(f"{len(text) / 1e6:6.1f} {values:>10} | {o_s} {new['seconds']:7.2f} {ratio} | "
                  f"{o_m} {new['peak_mb']:11.0f} | {'exact' if new['round_trip'] else 'DIFFERS':>10} {new['print']:11.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
