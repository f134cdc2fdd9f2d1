"""rtl target: each op alone == NumPy reference, bit for bit (hypothesis over shapes, types, modes).

Each example is a one-op model (input -> input_reduce -> op, or input -> op for dense ops) of small
random size with random fixed types (every quantization and overflow mode, narrow explicit
accumulators that force the sequential accumulation), run on random events (empty, crowded beyond N,
negative, saturating). The op's XLS IR is optimised by XLS and run by XLS's JIT (the IR the Verilog
is generated from); tests/test_rtl_models.py simulates the Verilog itself with Verilator.

The sparsepixels variants (input_reduce activity=channel0, sparse_conv2d bias_mode=nonzero,
sparse_pool2d inactive=zero) and the per-element quantize ops have their own generators; each also
checks that its feature matters on the data (the reference without it gives other outputs), so an
rtl target that ignored it would fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import StringAttr

from codegen.numpy.emit import load as numpy_load
from codegen.rtl import ops as rtl_ops
from codegen.rtl.sim import XlsJit
from spx_ir import dialect as spx
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import OVERFLOW_MODES, QUANT_MODES, FixedType, accumulator_type, product_type, sum_type
from spx_ir.text import SpxError
from tests.test_vitis_equivalence import events, rand_const, rand_type

EVENTS = 300


def _image(rng, name, input_t=None, channels=(1, 2)):
    shape = [int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(channels[0], channels[1] + 1))]
    b = ModelBuilder(name, shape, input_t or rand_type(rng, (6, 10), (1, 4), modes=rng.random() < 0.5))
    return b, shape


def _sparse(b, rng, shape, feat_t=None, thresholds=(0.0, -0.3, 0.25)):
    n = int(rng.integers(1, min(shape[0] * shape[1] + 2, 7)))
    if feat_t is None and rng.random() < 0.5:
        feat_t = rand_type(rng, (4, 10), (1, 4))
    feat, hash_ = b.input_reduce(b.input, n_max=n, threshold=float(rng.choice(thresholds)), feat_t=feat_t)
    return feat, hash_


def input_reduce(rng):
    b, shape = _image(rng, "input_reduce")
    feat, hash_ = _sparse(b, rng, shape)
    return b.finish([feat, b.sparse_flatten(feat, hash_, shape[0], shape[1])])  # the flatten checks the hashes


def sparse_conv2d(rng):
    b, shape = _image(rng, "sparse_conv2d")
    feat, hash_ = _sparse(b, rng, shape)
    kh, kw, co = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 3))
    w_t, b_t = rand_type(rng, (2, 8), (0, 2), modes=False), rand_type(rng, (2, 8), (0, 3), modes=False)
    acc_t = rand_type(rng, (6, 16), (3, 8), signed=True) if rng.random() < 0.5 else None
    y = b.sparse_conv2d(feat, hash_, rand_const(b, rng, (kh, kw, shape[2], co), w_t), rand_const(b, rng, (co,), b_t),
                        rand_type(rng, (4, 14), (2, 8)), acc_t)
    return b.finish([y])


def sparse_activation(rng):
    b, shape = _image(rng, "sparse_activation", FixedType(10, 5))
    feat, hash_ = _sparse(b, rng, shape, FixedType(8, 4) if rng.random() < 0.3 else None)
    kind = str(rng.choice(["relu", "linear", "sigmoid", "tanh"]))
    y = b.sparse_activation(feat, hash_, kind, rand_type(rng, (3, 14), (-1, 4) if kind in ("sigmoid", "tanh") else (1, 5)))
    if kind in ("sigmoid", "tanh") and rng.random() < 0.5:
        y.owner.table_size = __import__("xdsl.dialects.builtin", fromlist=["IntegerAttr"]).IntegerAttr(
            int(2 ** rng.integers(3, 11)), 64)
    return b.finish([y])


def sparse_pool2d(rng):
    b, shape = _image(rng, "sparse_pool2d")
    h, w, _ = shape
    feat, hash_ = _sparse(b, rng, shape)
    p = int(rng.choice([1, 2, 3]))
    mode = str(rng.choice(["avg", "max"]))
    frac = feat.type.element_type.spec.frac_bits + int(rng.integers(-2, 2))
    int_bits = int(rng.integers(1, 6))
    out_t = FixedType(max(frac + int_bits, 2), max(frac + int_bits, 2) - frac, bool(rng.integers(2)),
                      str(rng.choice(QUANT_MODES)), str(rng.choice(OVERFLOW_MODES)))
    y, hash_out = b.sparse_pool2d(feat, hash_, p, mode, h, w, out_t)
    return b.finish([y, b.sparse_flatten(y, hash_out, h // p, w // p)])


def sparse_flatten(rng):
    b, shape = _image(rng, "sparse_flatten")
    feat, hash_ = _sparse(b, rng, shape)
    return b.finish([b.sparse_flatten(feat, hash_, shape[0], shape[1])])


def dense(rng):
    n_in, n_out = int(rng.integers(1, 12)), int(rng.integers(1, 4))
    b = ModelBuilder("dense", [n_in], rand_type(rng, (3, 12), (0, 4)))
    w_t, b_t = rand_type(rng, (2, 10), (0, 2), modes=False), rand_type(rng, (2, 10), (0, 3), modes=False)
    acc_t = rand_type(rng, (6, 20), (3, 9), signed=True) if rng.random() < 0.5 else None
    return b.finish([b.dense(b.input, rand_const(b, rng, (n_in, n_out), w_t), rand_const(b, rng, (n_out,), b_t),
                             rand_type(rng, (4, 16), (3, 9)), acc_t)])


def activation(rng):
    n = int(rng.integers(2, 9))
    b = ModelBuilder("activation", [n], rand_type(rng, (6, 14), (3, 6)))
    kind = str(rng.choice(["relu", "linear", "sigmoid", "tanh", "softmax", "softmax"]))
    return b.finish([b.activation(b.input, kind, rand_type(rng, (3, 16), (0, 2) if kind == "softmax" else (-1, 5)))])


# ------------------------------------------------------------ sparsepixels variants, quantize ops

def input_reduce_channel0(rng):
    """activity=channel0 on 2-3 channels (thresholds >= 0: with a negative one an unsigned image
    would make every pixel active under both rules)."""
    b, shape = _image(rng, "input_reduce_channel0", rand_type(rng, (6, 10), (1, 4), modes=False), channels=(2, 3))
    feat_t = None if rng.random() < 0.5 else FixedType(int(rng.integers(5, 11)), int(rng.integers(1, 5)), bool(rng.integers(2)),
                                                        str(rng.choice(QUANT_MODES)), str(rng.choice(OVERFLOW_MODES)))
    feat, hash_ = b.input_reduce(b.input, n_max=int(rng.integers(1, min(shape[0] * shape[1] + 2, 7))),
                                 threshold=float(rng.choice([0.25, 0.0])), feat_t=feat_t)
    feat.owner.activity = StringAttr("channel0")
    return b.finish([feat, b.sparse_flatten(feat, hash_, shape[0], shape[1])])


def sparse_conv2d_bias_nonzero(rng):
    """bias_mode=nonzero: exact accumulation (none, or an accumulator holding the exact sum); output 0
    has an all-zero kernel and a bias that shows in the result type, so every active slot's output 0
    tells the two bias modes apart; the other kernels have many zero weights."""
    b, shape = _image(rng, "sparse_conv2d_bias_nonzero", input_t=rand_type(rng, (6, 10), (1, 4), signed=True))
    feat, hash_ = _sparse(b, rng, shape)
    in_t = feat.type.element_type.spec
    kh, kw, co = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 4))
    w_t, b_t = rand_type(rng, (2, 8), (0, 2), modes=False), rand_type(rng, (2, 8), (0, 3), modes=False)
    w = rng.integers(w_t.min_raw, w_t.max_raw + 1, size=(kh, kw, shape[2], co)) * (rng.random((kh, kw, shape[2], co)) < 0.6)
    w[..., 0] = 0
    n = feat.type.get_shape()[0]
    exact_t = sum_type(accumulator_type(product_type(in_t, w_t), max(min(n, kh * kw) * shape[2], 1)), b_t)
    acc_t = None if rng.random() < 0.5 else FixedType(exact_t.width + 2, exact_t.int_bits + 1, True,
                                                      str(rng.choice(QUANT_MODES)), str(rng.choice(OVERFLOW_MODES)))
    out_t = rand_type(rng, (4, 14), (2, 8))
    shows = [v for v in range(b_t.min_raw, b_t.max_raw + 1) if v and _converts_nonzero(v, b_t, out_t)]
    if not shows:  # the result type swallows every bias value: use the exact type (random modes)
        out_t = FixedType(exact_t.width, exact_t.int_bits, exact_t.signed, out_t.quant, out_t.overflow)
        shows = [v for v in range(b_t.min_raw, b_t.max_raw + 1) if v]
    bias = rng.integers(b_t.min_raw, b_t.max_raw + 1, size=co)
    bias[0] = rng.choice(shows)
    y = b.sparse_conv2d(feat, hash_, b.const(w, w_t), b.const(bias, b_t), out_t, acc_t)
    y.owner.bias_mode = StringAttr("nonzero")
    return b.finish([y])


def _converts_nonzero(raw: int, src: FixedType, dst: FixedType) -> bool:
    from spx_ir.fixed import FixedPointError, convert

    try:
        return int(np.asarray(convert(np.array([raw]), src, dst))[0]) != 0
    except FixedPointError:
        return False


def sparse_pool2d_max_inactive_zero(rng):
    """Max pooling, inactive=zero: signed features on 2 channels, so a pixel active by one channel
    brings negative values in the other; P >= 2 (windows with fewer than P^2 members)."""
    in_t = rand_type(rng, (6, 10), (1, 4), signed=True)
    b, shape = _image(rng, "sparse_pool2d_inactive", input_t=in_t, channels=(2, 2))
    h, w, _ = shape
    feat_i = in_t.int_bits + int(rng.integers(0, 2))  # holds most of the input's negative values
    feat_t = FixedType(int(rng.integers(feat_i + 2, feat_i + 7)), feat_i, True, str(rng.choice(QUANT_MODES)),
                       str(rng.choice(OVERFLOW_MODES)))
    feat, hash_ = _sparse(b, rng, shape, feat_t=feat_t, thresholds=(0.0, 0.25))
    p = int(rng.choice([2, 3]))
    frac = feat.type.element_type.spec.frac_bits + int(rng.integers(-1, 2))
    int_bits = int(rng.integers(1, 6))
    out_t = FixedType(max(frac + int_bits, 2), max(frac + int_bits, 2) - frac, True,
                      str(rng.choice(QUANT_MODES)), str(rng.choice(OVERFLOW_MODES)))
    y, hash_out = b.sparse_pool2d(feat, hash_, p, "max", h, w, out_t)
    y.owner.inactive = StringAttr("zero")
    return b.finish([y, b.sparse_flatten(y, hash_out, h // p, w // p)])


def random_kif(rng, shape, distinct=None):
    """(k, i, f) per element, i + f >= 0; `distinct`: drawn from that many triples (a sparsepixels
    table has few distinct ones). Triple 0 (the first element, or the first of the pool) is
    (0, 0, 0), always 0, and triple 1 a fine one (i >= 1, f >= 2), so that the elements differ."""
    def draw(count):
        k, f = rng.integers(0, 2, size=count), rng.integers(-2, 7, size=count)
        i = np.maximum(rng.integers(-3, 6, size=count), -f)
        triples = np.stack([k, i, f], axis=-1)
        triples[0] = 0
        triples[1] = [rng.integers(0, 2), rng.integers(1, 5), rng.integers(2, 7)]
        return triples
    if distinct is None:
        return draw(int(np.prod(shape))).reshape(*shape, 3)
    pool = draw(distinct)
    return pool[rng.integers(0, distinct, size=shape)]


def kif_type(rng, kif) -> FixedType:
    """A result type holding every element's values (the covering type, sometimes wider)."""
    used = kif.sum(axis=-1) > 0
    k, i, f = (kif[..., j][used] for j in range(3))
    signed = bool(k.any()) or rng.random() < 0.2
    frac = int(f.max(initial=0)) + int(rng.integers(0, 2))
    int_bits = int(i.max(initial=0)) + int(signed) + int(rng.integers(0, 2))
    return FixedType(max(int_bits + frac, 1), int_bits, signed)


def quantize(rng):
    n = int(rng.integers(2, 24))
    in_t = rand_type(rng, (4, 14), (0, 6))
    b = ModelBuilder("quantize", [n], in_t)
    kif = random_kif(rng, (n,))
    quant, overflow = str(rng.choice(QUANT_MODES)), str(rng.choice(spx.HGQ_OVERFLOW_MODES))
    y = b._add(spx.QuantizeOp(b.input, kif, quant, overflow, kif_type(rng, kif))).result
    return b.finish([y])


def sparse_quantize(rng):
    b, shape = _image(rng, "sparse_quantize")
    feat, hash_ = _sparse(b, rng, shape)
    kif = random_kif(rng, tuple(shape), distinct=int(rng.choice([2, 3, 5, 64])))
    quant, overflow = str(rng.choice(QUANT_MODES)), str(rng.choice(spx.HGQ_OVERFLOW_MODES))
    y = b._add(spx.SparseQuantizeOp(feat, hash_, kif, quant, overflow, kif_type(rng, kif))).result
    return b.finish([y])


def _without_variants(module):
    """A copy with every semantic variant back at its default."""
    module = module.clone()
    for op in module.walk():
        for name in ("activity", "bias_mode", "inactive"):
            op.properties.pop(name, None)
    return module


def _one_kif(module):
    """A copy whose quantize tables use their first entry everywhere (per-element ignored)."""
    module = module.clone()
    for op in module.walk():
        if isinstance(op, (spx.QuantizeOp, spx.SparseQuantizeOp)):
            shape = op.kif.type.get_shape()
            kif = np.array(op.kif.get_values(), dtype=np.int64).reshape(-1, 3)
            op.properties["kif"] = spx._payload(shape, np.tile(kif[0], (len(kif), 1)))
    return module


# what each new generator's feature is; the reference without it must give other outputs
ABLATION = {input_reduce_channel0: _without_variants, sparse_conv2d_bias_nonzero: _without_variants,
            sparse_pool2d_max_inactive_zero: _without_variants, quantize: _one_kif, sparse_quantize: _one_kif}

OPS = [input_reduce, sparse_conv2d, sparse_activation, sparse_pool2d, sparse_flatten, dense, activation,
       *ABLATION]


def check(make, seed: int) -> None:
    print(f"{make.__name__} seed {seed}", flush=True)
    rng = np.random.default_rng(seed)
    module = make(rng)
    try:
        sim = XlsJit(module)
    except SpxError as err:  # a conversion both targets refuse (it aborts ap_fixed C simulation)
        assert "cannot assign" in str(err), err
        assume(False)
    ref = numpy_load(module)
    x = events(rng, EVENTS, ref.INPUT_SHAPE, sim.input_t, 1)
    got, expected = sim.predict_raw(x), ref.predict_raw(x)
    got, expected = (got, expected) if isinstance(got, list) else ([got], [expected])
    for k, (g, e) in enumerate(zip(got, expected)):
        bad = np.argwhere(g != e)
        assert not len(bad), (f"{make.__name__} seed {seed}: output {k}: {len(bad)} mismatches, first at "
                              f"{tuple(bad[0])}: rtl {g[tuple(bad[0])]} vs numpy {e[tuple(bad[0])]}")
    if make in ABLATION:  # the feature under test changes the outputs on these events
        without = numpy_load(ABLATION[make](module)).predict_raw(x)
        without = without if isinstance(without, list) else [without]
        assert any(not np.array_equal(w, e) for w, e in zip(without, expected)), \
            f"{make.__name__} seed {seed}: the outputs do not depend on the feature under test"


@pytest.mark.parametrize("make", OPS, ids=[f.__name__ for f in OPS])
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 2**20))
def test_op_alone_matches_numpy(make, seed):
    check(make, seed)


@pytest.mark.parametrize("make", [input_reduce, input_reduce_channel0], ids=["any", "channel0"])
def test_merge_tree_input_reduce_matches_numpy(make, monkeypatch):
    """The former merge-tree structure (kept to be measured by bench/input_reduce_structures.py) stays exact."""
    monkeypatch.setattr(rtl_ops, "input_reduce", rtl_ops.input_reduce_merge)
    for seed in (3, 4):
        check(make, seed)


@pytest.mark.slow
@pytest.mark.parametrize("make", OPS, ids=[f.__name__ for f in OPS])
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**30))
def test_op_alone_matches_numpy_sweep(make, seed):
    check(make, seed)
