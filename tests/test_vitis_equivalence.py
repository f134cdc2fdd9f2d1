"""Vitis target C simulation == NumPy reference, bit for bit, on every output and every layer.

Models are compiled once each (in parallel, cached by content hash in $SPX_CACHE):
  * per-op models: one op kind per model, each output an independent branch `input_reduce -> op`
    (or `input -> op` for dense ops) with its own random shapes, N, kernel / pool sizes, channels,
    fixed types (narrow, explicit accumulators, every quantization and overflow mode) and schedule
    attributes, so one g++ run covers many configurations;
  * the neutrino example, every_op_model(), and the seed's three architectures at 8 and 16 bit.
Events are random sparse images including empty ones, more than N active pixels, negative and
saturating values. A mismatch is a bug, never a tolerance. `-m slow` sweeps more seeds.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

from codegen.numpy.emit import load as numpy_load
from codegen.vitis.csim import load as csim_load
from codegen.vitis.model import Model
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import OVERFLOW_MODES, QUANT_MODES, FixedType
from spx_ir.text import SpxError, parse_module
from tests.ir_samples import every_op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


# ------------------------------------------------------------------------------------ random IR


def rand_type(rng, width=(4, 16), int_bits=(0, 6), modes=True, signed=None) -> FixedType:
    """A random fixed type, mostly sized for the values at hand; one in eight is extreme (integer
    bits below 0 or beyond the width) so that rounding and overflow corners come up too."""
    w = int(rng.integers(width[0], width[1] + 1))
    i = int(rng.integers(int_bits[0], int_bits[1] + 1)) if rng.random() > 0.125 else int(rng.integers(-2, w + 4))
    signed = bool(rng.integers(2)) if signed is None else signed
    quant = str(rng.choice(QUANT_MODES)) if modes else "TRN"
    overflow = str(rng.choice(OVERFLOW_MODES)) if modes else "WRAP"
    return FixedType(w, i, signed, quant, overflow)


def rand_const(b: ModelBuilder, rng, shape, t: FixedType):
    return b.const(rng.integers(t.min_raw, t.max_raw + 1, size=shape), t)


def divisor(rng, n: int) -> int:
    return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))


def set_attr(value, name: str, factor: int) -> None:
    setattr(value.owner, name, IntegerAttr(factor, i64))


def sparse_input(b: ModelBuilder, rng, image_shape, feat_t: FixedType | None = None):
    """input_reduce with a random N (sometimes more than the pixels), threshold and feature type."""
    h, w, _ = image_shape
    n = int(rng.integers(1, min(h * w + 3, 24)))
    if feat_t is None and rng.random() < 0.5:
        feat_t = rand_type(rng, (4, 12), (1, 4))
    feat, hash_ = b.input_reduce(b.input, n_max=n, threshold=float(rng.choice([0.0, -0.3, 0.25])), feat_t=feat_t)
    if rng.random() < 0.5:
        set_attr(feat, "pixel_parallel", divisor(rng, n))
    return feat, hash_, n


def image_builder(rng, name: str, input_t: FixedType | None = None):
    shape = [int(rng.integers(4, 15)), int(rng.integers(4, 15)), int(rng.integers(1, 4))]
    input_t = input_t or rand_type(rng, (6, 12), (1, 4), modes=rng.random() < 0.5)
    return ModelBuilder(name, shape, input_t), shape


def input_reduce_model(rng):
    """Four input_reduce ops, each as a priority tree or a raster scan (the `search` property)."""
    b, shape = image_builder(rng, "op_input_reduce")
    feats = [sparse_input(b, rng, shape)[0] for _ in range(4)]
    for feat, search in zip(feats, rng.permutation(["tree", "stream", "tree", "stream"])):
        feat.owner.search = StringAttr(str(search))
    return b.finish(feats)


def conv_model(rng):
    b, shape = image_builder(rng, "op_sparse_conv2d")
    outs = []
    for _ in range(4):
        feat, hash_, n = sparse_input(b, rng, shape)
        ci = shape[2]
        kh, kw, co = int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 4))
        w_t, b_t = rand_type(rng, (2, 10), (0, 2), modes=False), rand_type(rng, (2, 10), (0, 3), modes=False)
        acc_t = rand_type(rng, (6, 20), (3, 8), signed=True) if rng.random() < 0.5 else None  # narrow: sequential
        out_t = rand_type(rng, (4, 16), (2, 8))
        y = b.sparse_conv2d(feat, hash_, rand_const(b, rng, (kh, kw, ci, co), w_t), rand_const(b, rng, (co,), b_t),
                            out_t, acc_t)
        for attr, trip in (("pixel_parallel", n), ("filter_parallel", co), ("channel_parallel", ci)):
            if rng.random() < 0.5:
                set_attr(y, attr, divisor(rng, trip))
        outs.append(y)
    return b.finish(outs)


def sparse_activation_model(rng):
    b, shape = image_builder(rng, "op_sparse_activation", FixedType(10, 5))  # values up to +-16
    outs = []
    wide = FixedType(8, 4)  # wraps values >= 8 to negative ones: the table's first and last bins
    for kind, feat_t, size in [("relu", None, None), ("linear", None, None), ("sigmoid", None, None),
                               ("tanh", None, None), ("sigmoid", wide, 8), ("tanh", wide, 16),
                               (str(rng.choice(["relu", "sigmoid", "tanh"])), None, None)]:
        feat, hash_, n = sparse_input(b, rng, shape, feat_t)
        out_t = rand_type(rng, (3, 16), (-1, 4) if kind in ("sigmoid", "tanh") else (1, 5))
        y = b.sparse_activation(feat, hash_, kind, FixedType(16, 1, kind == "tanh") if size else out_t)
        if size or (kind in ("sigmoid", "tanh") and rng.random() < 0.5):
            set_attr(y, "table_size", size or int(2 ** rng.integers(3, 12)))
        if rng.random() < 0.5:
            set_attr(y, "pixel_parallel", divisor(rng, n))
        outs.append(y)
    return b.finish(outs)


def pool_model(rng):
    """Average pooling rounds once into the result type: one branch per quantization mode, with
    fraction bits near the input's so that exact ties occur; plus max pooling."""
    b, shape = image_builder(rng, "op_sparse_pool2d")
    h, w, _ = shape
    outs = []
    for mode, quant in [("avg", q) for q in QUANT_MODES] + [("max", None), ("max", None)]:
        feat, hash_, n = sparse_input(b, rng, shape)
        p = int(rng.choice([1, *range(2, min(h, w, 4) + 1)]))
        if quant is None:
            out_t = rand_type(rng, (3, 14), (0, 5))
        else:
            frac = feat.type.element_type.spec.frac_bits + int(rng.integers(-2, 2))
            int_bits = int(rng.integers(1, 6))
            out_t = FixedType(max(frac + int_bits, 2), max(frac + int_bits, 2) - frac, bool(rng.integers(2)), quant,
                              str(rng.choice(OVERFLOW_MODES)))
        y, hash_out = b.sparse_pool2d(feat, hash_, p, mode, h, w, out_t)
        if rng.random() < 0.5:
            set_attr(y, "pixel_parallel", divisor(rng, n))
        outs += [y, b.sparse_flatten(y, hash_out, h // p, w // p)]
    return b.finish(outs)


def flatten_model(rng):
    b, shape = image_builder(rng, "op_sparse_flatten")
    outs = []
    for _ in range(3):
        feat, hash_, n = sparse_input(b, rng, shape)
        x = b.sparse_flatten(feat, hash_, shape[0], shape[1])
        if rng.random() < 0.5:
            set_attr(x, "pixel_parallel", divisor(rng, n))
        outs.append(x)
    return b.finish(outs)


def dense_model(rng):
    n_in = int(rng.integers(1, 40))
    b = ModelBuilder("op_dense", [n_in], rand_type(rng, (3, 14), (0, 4)))
    outs = []
    for _ in range(4):
        n_out = int(rng.integers(1, 12))
        w_t, b_t = rand_type(rng, (2, 12), (0, 2), modes=False), rand_type(rng, (2, 12), (0, 3), modes=False)
        acc_t = rand_type(rng, (6, 24), (3, 9), signed=True) if rng.random() < 0.5 else None
        y = b.dense(b.input, rand_const(b, rng, (n_in, n_out), w_t), rand_const(b, rng, (n_out,), b_t),
                    rand_type(rng, (4, 18), (3, 9)), acc_t)
        if rng.random() < 0.6:
            set_attr(y, "reuse_factor", divisor(rng, n_in * n_out))
        outs.append(y)
    return b.finish(outs)


def activation_model(rng):
    n = int(rng.integers(2, 13))
    b = ModelBuilder("op_activation", [n], rand_type(rng, (6, 16), (3, 6)))  # reaches beyond +-8
    outs = []
    for kind in ("relu", "linear", "sigmoid", "tanh", "softmax", "softmax", "sigmoid", "tanh"):
        y = b.activation(b.input, kind, rand_type(rng, (3, 16), (0, 2) if kind == "softmax" else (-1, 5)))
        if rng.random() < 0.5:  # table_size reaches both targets (softmax: both of its tables)
            set_attr(y, "table_size", int(2 ** rng.integers(3, 12)))
        outs.append(y)
    return b.finish(outs)


def op_model(kind: str, seed: int):
    """A random model of one op kind; draws again while it holds a conversion that both targets
    refuse (a rounding assignment that aborts ap_fixed's C simulation)."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        module = OP_MODELS[kind](rng)
        try:
            Model(module)
            return module
        except SpxError:
            continue
    raise AssertionError(f"no valid random {kind} model for seed {seed}")


OP_MODELS = {"input_reduce": input_reduce_model, "sparse_conv2d": conv_model,
             "sparse_activation": sparse_activation_model, "sparse_pool2d": pool_model,
             "sparse_flatten": flatten_model, "dense": dense_model, "activation": activation_model}


# ------------------------------------------------------------------------- seed architectures

def _precisions(bits: int):
    if bits == 8:
        return FixedType(8, 1, False), FixedType(8, 3), FixedType(8, 2, False, "RND_CONV", "SAT")
    return FixedType(16, 6), FixedType(16, 7), FixedType(16, 6, False, "RND_CONV", "SAT")


def architecture(name: str, bits: int, seed: int = 0):
    """The seed's three sparse CNNs (DESIGN brief) with random weights of the published precisions."""
    rng = np.random.default_rng(seed)
    in_t, w_t, act_t = _precisions(bits)
    size, n_max, layers, head, out_kind = {
        "neutrino": (63, 20, [("conv", 7, 1), ("conv", 7, 3), ("pool", 7)], [16, 1], "sigmoid"),
        "jet": (56, 24, [("conv", 9, 3), ("conv", 9, 1), ("pool", 4)], [20, 5], "softmax"),
        "mnist": (48, 32, [("conv", 7, 1), ("pool", 4), ("conv", 5, 3), ("pool", 2)], [36, 10], "softmax"),
    }[name]
    lim = 2 ** (w_t.width - 2)  # weights in [-2^(I-2), 2^(I-2)): realistic, activations stay in range

    def weights(*shape):
        return b.const(rng.integers(-lim, lim, size=shape), w_t)

    b = ModelBuilder(f"{name}_{bits}b", [size, size, 1], in_t)
    feat, hash_ = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    t, ch, hw = in_t, 1, size
    for kind, k, *co in layers:
        if kind == "conv":
            conv_t = exact_sum_type(t, w_t, w_t, conv_terms(n_max, k, k, ch))
            y = b.sparse_conv2d(feat, hash_, weights(k, k, ch, co[0]), weights(co[0]), conv_t)
            feat, t, ch = b.sparse_activation(y, hash_, "relu", act_t), act_t, co[0]
        else:
            feat, hash_ = b.sparse_pool2d(feat, hash_, k, "avg", hw, hw, act_t)
            hw //= k
    x = b.sparse_flatten(feat, hash_, hw, hw)
    n_in = hw * hw * ch
    for i, n_out in enumerate(head):
        x = b.dense(x, weights(n_in, n_out), weights(n_out), exact_sum_type(t, w_t, w_t, n_in))
        if i < len(head) - 1:
            x, t, n_in = b.activation(x, "relu", act_t), act_t, n_out
    return b.finish([b.activation(x, out_kind, FixedType(16, 0 if out_kind == "sigmoid" else 1, False))])


ARCHITECTURES = [(a, bits) for a in ("neutrino", "jet", "mnist") for bits in (8, 16)]


# ------------------------------------------------------------------------------------ events


def events(rng, n: int, shape, input_t: FixedType, n_max: int | None = None) -> np.ndarray:
    """Random events over (and beyond) the input type's range: empty, sparse, and crowded images."""
    lo, hi = input_t.min_raw * 2.0 ** -input_t.frac_bits, input_t.max_raw * 2.0 ** -input_t.frac_bits
    span = max(hi - lo, 1.0)
    x = rng.uniform(min(lo, 0) - 0.2 * span, hi + 0.2 * span, size=(n, *shape))  # negative + saturating
    if len(shape) == 1:  # dense inputs: some constant vectors and coarse values (softmax sums, ties)
        x[rng.random(n) < 0.1] = rng.uniform(lo, hi)
        coarse = rng.random(n) < 0.2
        x[coarse] = np.round(x[coarse])
        x[0] = 0.0
    if len(shape) == 3:
        density = rng.choice([0.0, 0.01, 0.03, 0.1, 0.4, 1.0], size=(n, 1, 1, 1), p=[0.05, 0.3, 0.3, 0.2, 0.1, 0.05])
        x *= rng.random(x.shape) < density
        x[0] = 0.0  # an empty image
        if n_max is not None and n > 1:  # more than N active pixels
            x[1] = np.abs(x[1]) + 1.0
    return x


def assert_equal(sim, ref, x, what: str) -> None:
    got, expected = sim.predict_raw(x), ref.predict_raw(x)
    got, expected = (got, expected) if isinstance(got, list) else ([got], [expected])
    for k, (g, e) in enumerate(zip(got, expected)):
        bad = np.argwhere(g != e)
        assert not len(bad), (f"{what}: output {k}: {len(bad)} mismatches, first at {tuple(bad[0])}: "
                              f"C++ {g[tuple(bad[0])]} vs NumPy {e[tuple(bad[0])]}")


def assert_informative(outputs, what: str) -> None:
    """Guards the tests themselves: most outputs must take several values over the events."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    varied = [len(np.unique(o)) > 2 for o in outputs]
    assert 3 * sum(varied) >= 2 * len(varied), f"{what}: degenerate random model ({varied})"


def assert_trace_equal(sim, ref, x, what: str) -> None:
    got, expected = sim.trace(x), ref.trace(x)
    assert sorted(got) == sorted(expected)
    for layer, e in expected.items():
        bad = np.argwhere(got[layer] != e)
        assert not len(bad), f"{what}: layer {layer}: {len(bad)} mismatches, first at event {bad[0][0]}"


def compile_all(modules: dict) -> dict:
    """{key: (module, C simulation)}, compiled in parallel (g++ runs outside the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sims = dict(zip(modules, pool.map(csim_load, modules.values())))
    return {k: (modules[k], sims[k]) for k in modules}


@pytest.fixture(scope="module")
def op_models():
    return compile_all({(kind, 0): op_model(kind, 1000 + i) for i, kind in enumerate(OP_MODELS)})


@pytest.fixture(scope="module")
def arch_models():
    modules = {(a, bits): architecture(a, bits) for a, bits in ARCHITECTURES}
    modules["example"] = parse_module(EXAMPLE.read_text())
    modules["every_op"] = every_op_model()
    return compile_all(modules)


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", list(OP_MODELS))
def test_each_op_alone_matches_numpy(op_models, kind):
    module, sim = op_models[(kind, 0)]
    ref = numpy_load(module)
    rng = np.random.default_rng(7)
    x = events(rng, 2000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=1)
    assert_informative(ref.predict_raw(x), kind)
    assert_equal(sim, ref, x, kind)
    assert_trace_equal(sim, ref, x[:300], kind)


@pytest.mark.parametrize("key", [*ARCHITECTURES, "every_op"], ids=str)
def test_architectures_match_numpy(arch_models, key):
    module, sim = arch_models[key]
    ref = numpy_load(module)
    x = events(np.random.default_rng(11), 2000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=1)
    assert_equal(sim, ref, x, str(key))
    assert_trace_equal(sim, ref, x[:200], str(key))


def test_neutrino_example_10k_events_and_every_layer(arch_models):
    module, sim = arch_models["example"]
    ref = numpy_load(module)
    x = events(np.random.default_rng(5), 10_000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=20)
    active = (x > 0).reshape(len(x), -1).sum(axis=1)
    assert (active == 0).any() and (active > 20).any()  # empty and truncated events are covered
    assert_equal(sim, ref, x, "neutrino example")
    assert_trace_equal(sim, ref, x[:1000], "neutrino example")


def test_every_op_model_10k_events(arch_models):
    module, sim = arch_models["every_op"]
    x = events(np.random.default_rng(6), 10_000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=4)
    assert_equal(sim, numpy_load(module), x, "every_op")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_each_op_alone_sweep(seed):
    modules = {kind: op_model(kind, seed * 100 + i) for i, kind in enumerate(OP_MODELS)}
    for kind, (module, sim) in compile_all(modules).items():
        x = events(np.random.default_rng(seed), 3000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=1)
        assert_equal(sim, numpy_load(module), x, f"{kind} seed {seed}")


@pytest.mark.slow
def test_architectures_10k_events(arch_models):
    for key, (module, sim) in arch_models.items():
        x = events(np.random.default_rng(12), 10_000, sim.INPUT_SHAPE, sim.model.input_spec, n_max=1)
        assert_equal(sim, numpy_load(module), x, str(key))
