"""Import time of a neutrino-sized sparsepixels (Keras 3 + HGQ2) model vs spx compile of the QKeras model.

The sparsepixels model (tests/fixtures/sparsepixels/neutrino_sized.keras: 63x63x1, N from training,
conv 1@7x7 and 3@7x7, pool 7, dense 16, dense 1) is read with json + h5py, no TensorFlow; the anchor
is `spx.compile` of the seed's QKeras neutrino sparse-l model (8 bit, N=20) in the same process.
Prints a markdown table (best of --repeats). Usage: python bench/sparsepixels_import.py
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "fixtures" / "sparsepixels" / "neutrino_sized.keras"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    code = ("import sys, time; t = time.perf_counter(); import spx; spx.compile(sys.argv[1]); "
            "print(time.perf_counter() - t, 'tensorflow' in sys.modules)")
    fresh = [subprocess.run([sys.executable, "-c", code, str(MODEL)], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout.split()
             for _ in range(args.repeats)]
    fresh_s, tf_loaded = min(float(f[0]) for f in fresh), fresh[0][1]

    import frontends.sparsepixels as sparsepixels
    import spx

    load_s = best(lambda: sparsepixels.load(MODEL), args.repeats)
    compile_s = best(lambda: spx.compile(MODEL), args.repeats)

    import frontends.keras as fk  # TensorFlow + QKeras (the anchor)

    qkeras_model = fk.neutrino_model(n_max=20, bits=8)
    qkeras_s = best(lambda: spx.compile(qkeras_model), args.repeats)

    print(f"| what (best of {args.repeats}, 2-core machine) | seconds |")
    print("| --- | --- |")
    print(f"| sparsepixels .keras -> spx IR (json + h5py read and lowering) | {load_s:.3f} |")
    print(f"| spx.compile(sparsepixels .keras) (read + default pipeline) | {compile_s:.3f} |")
    print(f"| fresh process: import spx + spx.compile(.keras) (TensorFlow imported: {tf_loaded}) | {fresh_s:.3f} |")
    print(f"| anchor: spx.compile(QKeras neutrino sparse-l, 8 bit, N=20), model already built | {qkeras_s:.3f} |")


if __name__ == "__main__":
    main()
