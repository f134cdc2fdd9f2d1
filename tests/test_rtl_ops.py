"""rtl target: each op alone == NumPy reference, bit for bit (hypothesis over shapes, types, modes).

Each example is a one-op model (input -> input_reduce -> op, or input -> op for dense ops) of small
random size with random fixed types (every quantization and overflow mode, narrow explicit
accumulators that force the sequential accumulation), run on random events (empty, crowded beyond N,
negative, saturating). The op's XLS IR is optimised by XLS and run by XLS's JIT (the IR the Verilog
is generated from); tests/test_rtl_models.py simulates the Verilog itself with Verilator.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from codegen.numpy.emit import load as numpy_load
from codegen.rtl.sim import XlsJit
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import OVERFLOW_MODES, QUANT_MODES, FixedType
from spx_ir.text import SpxError
from tests.test_vitis_equivalence import events, rand_const, rand_type

EVENTS = 300


def _image(rng, name, input_t=None):
    shape = [int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 3))]
    b = ModelBuilder(name, shape, input_t or rand_type(rng, (6, 10), (1, 4), modes=rng.random() < 0.5))
    return b, shape


def _sparse(b, rng, shape, feat_t=None):
    n = int(rng.integers(1, min(shape[0] * shape[1] + 2, 7)))
    if feat_t is None and rng.random() < 0.5:
        feat_t = rand_type(rng, (4, 10), (1, 4))
    feat, hash_ = b.input_reduce(b.input, n_max=n, threshold=float(rng.choice([0.0, -0.3, 0.25])), feat_t=feat_t)
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


OPS = [input_reduce, sparse_conv2d, sparse_activation, sparse_pool2d, sparse_flatten, dense, activation]


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


@pytest.mark.parametrize("make", OPS, ids=[f.__name__ for f in OPS])
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 2**20))
def test_op_alone_matches_numpy(make, seed):
    check(make, seed)


@pytest.mark.slow
@pytest.mark.parametrize("make", OPS, ids=[f.__name__ for f in OPS])
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**30))
def test_op_alone_matches_numpy_sweep(make, seed):
    check(make, seed)
