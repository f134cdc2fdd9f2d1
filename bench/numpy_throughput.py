"""NumPy reference throughput vs Keras predict on the neutrino sparse-l model (63x63, N=20, 8 bit).

Prints a markdown table: events/s of the spx NumPy reference (in-process and standalone file) and
of Keras `model.predict` on the same events, plus whether the reference equals Keras before the
final sigmoid. Usage: python bench/numpy_throughput.py [--events 20000]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def neutrino_like_events(n, seed=0, mean_active=27):
    """Sparse 63x63 images with ~mean_active active pixels (published test bench: mean 26.9)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 63 * 63), dtype=np.float32)
    counts = rng.poisson(mean_active, n)
    for i, c in enumerate(counts):
        x[i, rng.choice(63 * 63, size=min(c, 63 * 63), replace=False)] = rng.uniform(0.05, 1.5, min(c, 63 * 63))
    return x.reshape(n, 63, 63, 1)


def best_rate(fn, x, repeats=3):
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        best = max(best, len(x) / (time.perf_counter() - t))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    args = ap.parse_args()

    import tf_keras as keras

    import frontends.keras as fk
    from codegen.numpy.emit import emit, load
    from frontends.keras.lower import from_keras

    model = fk.neutrino_model(n_max=20, bits=8)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()])
    module = from_keras(model)
    ref = load(module)
    x = neutrino_like_events(args.events)
    print(f"neutrino sparse-l (N=20, 8 bit), {args.events} events, {os.cpu_count()} cores", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        emit(module, tmp, name="bench_neutrino")
        import bench_neutrino  # the standalone file: numpy only

        rows = [
            ("spx NumPy reference (in-process)", best_rate(ref.predict, x)),
            ("spx NumPy reference (standalone file)", best_rate(bench_neutrino.predict, x)),
            ("Keras model.predict (tf-keras 2.21, CPU)", best_rate(lambda v: model.predict(v, batch_size=1024, verbose=0), x)),
        ]
    pre = keras.Model(model.input, model.get_layer("dense2").output).predict(x[:2000], verbose=0)
    same = np.array_equal(ref.trace(x[:2000])["dense2"], pre.astype(np.float64))
    print("| implementation | events/s |")
    print("| --- | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"\ngoal: >= 20,000 events/s and not slower than Keras; reference == Keras before the sigmoid on 2,000 events: {same}")


if __name__ == "__main__":
    main()
