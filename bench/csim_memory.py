"""Memory of C-simulation predict vs batch size (issue 13 finding 10): peak Python/NumPy allocations
during `predict` (tracemalloc) beside the input and output sizes, for the neutrino example (63x63x1).
The anchor is the input itself: converting the whole batch at once costs about 2x it on top.

    PYTHONPATH=. python bench/csim_memory.py [--events 1000,10000,40000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

import spx

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "neutrino_sparse_l.mlir"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", default="1000,10000,40000")
    args = ap.parse_args()
    cm = spx.compile(EXAMPLE)
    sim = cm.backend("csim")
    rng = np.random.default_rng(0)
    print(f"{'events':>8} {'input MB':>9} {'output MB':>10} {'peak extra MB':>14} {'peak/input':>11} {'s':>6}")
    for n in map(int, args.events.split(",")):
        x = (rng.random((n, 63, 63, 1), dtype=np.float32) < 0.01) * rng.random((n, 63, 63, 1), dtype=np.float32)
        tracemalloc.start()
        start = time.perf_counter()
        y = sim.predict(x)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        mb = 1 << 20
        print(f"{n:>8} {x.nbytes / mb:>9.1f} {np.asarray(y).nbytes / mb:>10.2f} {peak / mb:>14.1f} "
              f"{peak / x.nbytes:>11.3f} {seconds:>6.1f}")


if __name__ == "__main__":
    main()
