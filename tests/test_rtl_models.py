"""rtl target, whole models through Verilator: RTL simulation == NumPy reference (== C simulation).

One Verilator build per model (cached by content in $SPX_CACHE); each streams >= 1,000 events one
per clock, including an empty image, one with more active pixels than N and values beyond the input
type (saturating). Seed architectures run at reduced image sizes (16x16, N = 4-8): XLS and Verilator
time grows with H*W*N. `spx synth` runs on the smallest model (Verilator + Yosys measured figures).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from xdsl.dialects.builtin import StringAttr

from codegen.numpy.emit import load as numpy_load
from codegen.rtl.sim import load as rtl_load
from spx_ir import dialect as spx
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedType
from spx_ir.text import SpxError, print_module
from tests.ir_samples import ACC_T, ACT_T, IN_T, W_T
from tests.ir_samples import every_op_model as shared_every_op_model
from tests.test_vitis_equivalence import _precisions, events

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")

EVENTS = 1000


def reduced_architecture(name: str, size: int, n_max: int, bits: int = 8, seed: int = 0):
    """The seed architectures (tests/test_vitis_equivalence.py) on a size x size image."""
    rng = np.random.default_rng(seed)
    in_t, w_t, act_t = _precisions(bits)
    layers, head, out_kind = {
        "neutrino": ([("conv", 7, 1), ("conv", 7, 3), ("pool", 7)], [16, 1], "sigmoid"),
        "jet": ([("conv", 9, 3), ("conv", 9, 1), ("pool", 4)], [20, 5], "softmax"),
        "mnist": ([("conv", 7, 1), ("pool", 4), ("conv", 5, 3), ("pool", 2)], [36, 10], "softmax"),
    }[name]
    lim = 2 ** (w_t.width - 2)

    def weights(*shape):
        return b.const(rng.integers(-lim, lim, size=shape), w_t)

    b = ModelBuilder(f"{name}_{size}px_{bits}b", [size, size, 1], in_t)
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


def every_op_model(n_max: int = 4, seed: int = 0):
    """An 8x8x1 model using every op of DESIGN.md section 3 (the sparsepixels variants and quantize
    ops: variants_model)."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.integers(-128, 128, size=s)  # noqa: E731
    b = ModelBuilder("every_op", [8, 8, 1], IN_T)
    feat, hash = b.input_reduce(b.input, n_max=n_max, threshold=0.25)
    y = b.sparse_conv2d(feat, hash, b.const(w(3, 3, 1, 2), W_T), b.const(w(2), W_T), FixedType(16, 6), ACC_T)
    y = b.sparse_activation(y, hash, "relu", ACT_T)
    y, hash = b.sparse_pool2d(y, hash, 2, "max", 8, 8, ACT_T)
    y = b.sparse_activation(y, hash, "sigmoid", FixedType(8, 0, signed=False))
    y, hash = b.sparse_pool2d(y, hash, 2, "avg", 4, 4, ACT_T)
    x = b.sparse_flatten(y, hash, 2, 2)
    x = b.dense(x, b.const(w(8, 5), W_T), b.const(w(5), W_T), FixedType(16, 6), ACC_T)
    x = b.activation(x, "relu", ACT_T)
    return b.finish([b.activation(x, "softmax", FixedType(16, 1, signed=False))])


def variants_model(n_max: int = 5, seed: int = 0):
    """An 8x8x2 model with every sparsepixels variant and both quantize ops: input_reduce
    (activity=channel0) -> sparse_quantize (per-pixel table) -> conv 3x3 (bias_mode=nonzero; output 0
    has a zero kernel: bias only) -> max pool 2 (inactive=zero) -> flatten -> quantize -> dense."""
    from tests.test_rtl_ops import kif_type, random_kif

    rng = np.random.default_rng(seed)
    in_t = FixedType(8, 3)  # signed: channel 1 brings negative values into active pixels
    b = ModelBuilder("variants", [8, 8, 2], in_t)
    feat, hash_ = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    feat.owner.activity = StringAttr("channel0")
    kif = random_kif(rng, (8, 8, 2), distinct=3)
    q_t = kif_type(rng, kif)
    x = b._add(spx.SparseQuantizeOp(feat, hash_, kif, "RND_CONV", "SAT", q_t)).result
    w_t, b_t = FixedType(6, 2), FixedType(6, 2)
    w = rng.integers(-32, 32, size=(3, 3, 2, 3)) * (rng.random((3, 3, 2, 3)) < 0.6)
    w[..., 0] = 0
    conv_t = exact_sum_type(q_t, w_t, b_t, conv_terms(n_max, 3, 3, 2))
    y = b.sparse_conv2d(x, hash_, b.const(w, w_t), b.const(np.array([24, -16, 12]), b_t), conv_t)
    y.owner.bias_mode = StringAttr("nonzero")
    y, hash_ = b.sparse_pool2d(y, hash_, 2, "max", 8, 8, conv_t)
    y.owner.inactive = StringAttr("zero")
    flat = b.sparse_flatten(y, hash_, 4, 4)
    dkif = random_kif(rng, (48,))
    dq_t = kif_type(rng, dkif)
    flat = b._add(spx.QuantizeOp(flat, dkif, "RND", "WRAP", dq_t)).result
    d_t = FixedType(6, 1)
    out = b.dense(flat, b.const(rng.integers(-32, 32, size=(48, 3)), d_t), b.const(rng.integers(-32, 32, size=3), d_t),
                  exact_sum_type(dq_t, d_t, d_t, 48))
    return b.finish([out])


def without(module, op_name: str, prop: str):
    """A copy of module with property `prop` of every `op_name` op removed (its default)."""
    module = module.clone()
    for op in module.walk():
        if op.name == op_name:
            op.properties.pop(prop)
    return module


def assert_same(got, expected, what):
    got, expected = (got, expected) if isinstance(got, list) else ([got], [expected])
    for k, (g, e) in enumerate(zip(got, expected)):
        bad = np.argwhere(g != e)
        assert not len(bad), (f"{what}: output {k}: {len(bad)} mismatches, first at {tuple(bad[0])}: "
                              f"{g[tuple(bad[0])]} vs {e[tuple(bad[0])]}")


def check_model(module, n_max, seed=0):
    sim, ref = rtl_load(module), numpy_load(module)
    x = events(np.random.default_rng(seed), EVENTS, ref.INPUT_SHAPE, sim.input_t, n_max)
    got, expected = sim.predict_raw(x), ref.predict_raw(x)
    assert_same(got, expected, "rtl vs numpy")
    assert len(np.unique(np.asarray(expected))) > 2, "degenerate model: outputs hardly vary"
    dropped = ref.diagnostics(x)["dropped"]
    assert dropped.max() > 0, "no event had more active pixels than N"
    assert sim.last_stats["ii_cycles"] == 1.0, sim.last_stats
    return sim, ref, x


def test_every_op_model_numpy_csim_rtl_agree():
    """numpy == csim == rtl on every output of 1,000 events (one model using every op)."""
    from codegen.vitis.csim import load as csim_load

    module = every_op_model(n_max=4)
    sim, ref, x = check_model(module, 4)
    assert_same(csim_load(module).predict_raw(x), ref.predict_raw(x), "csim vs numpy")
    assert sim.last_stats["latency_cycles"] >= 1


def test_variants_model_numpy_csim_rtl_agree():
    """numpy == csim == rtl on 1,000 events of a model using every sparsepixels variant and both
    quantize ops; each variant and the per-element tables change the outputs on these events."""
    from codegen.vitis.csim import load as csim_load
    from tests.test_rtl_ops import _one_kif

    module = variants_model()
    sim, ref, x = check_model(module, 5)
    expected = ref.predict_raw(x)
    assert_same(csim_load(module).predict_raw(x), expected, "csim vs numpy")
    in_t = sim.input_t
    assert (x > in_t.max_raw * 2.0 ** -in_t.frac_bits).any() and (x < in_t.min_raw * 2.0 ** -in_t.frac_bits).any()
    assert not x[0].any(), "event 0 is the empty image"
    for op_name, prop in (("spx.input_reduce", "activity"), ("spx.sparse_conv2d", "bias_mode"),
                          ("spx.sparse_pool2d", "inactive")):
        other = numpy_load(without(module, op_name, prop)).predict_raw(x)
        assert not np.array_equal(other, expected), f"{op_name} {prop} does not change the outputs"
    assert not np.array_equal(numpy_load(_one_kif(module)).predict_raw(x), expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["max_relu_5x5"])
def test_sparsepixels_fixture_numpy_csim_rtl_agree(name):
    """A trained sparsepixels model (channel0, sparse_quantize, bias nonzero, max pool inactive=zero,
    quantize) at its own size: numpy == csim == rtl on 1,000 events. ~1 min of XLS + Verilator
    (max_2ch, 12x12x2, N = 13: ~8 min and ~11 GB peak; not run here)."""
    from pathlib import Path

    import frontends.sparsepixels as sparsepixels
    from codegen.vitis.csim import load as csim_load

    module = sparsepixels.load(Path(__file__).parent / "fixtures" / "sparsepixels" / f"{name}.keras")
    n_max = next(op.n_max.value.data for op in module.walk() if op.name == "spx.input_reduce")
    sim, ref, x = check_model(module, n_max)
    assert_same(csim_load(module).predict_raw(x), ref.predict_raw(x), "csim vs numpy")
    for op_name, prop in (("spx.sparse_conv2d", "bias_mode"), ("spx.sparse_pool2d", "inactive")):
        other = numpy_load(without(module, op_name, prop)).predict_raw(x)
        assert not np.array_equal(other, ref.predict_raw(x)), f"{op_name} {prop} does not change the outputs"


@pytest.mark.parametrize("name,n_max", [("neutrino", 6)])
def test_reduced_architecture_matches_numpy(name, n_max):
    check_model(reduced_architecture(name, 16, n_max), n_max)


@pytest.mark.slow
@pytest.mark.parametrize("name,n_max", [("jet", 8), ("mnist", 8), ("neutrino", 4)])
def test_reduced_architecture_matches_numpy_slow(name, n_max):
    check_model(reduced_architecture(name, 16, n_max), n_max)


def test_unsupported_attribute_is_refused_naming_the_op():
    from xdsl.dialects.builtin import IntegerAttr, i64

    from codegen.rtl.lower import lower

    module = every_op_model()
    conv = next(op for op in module.walk() if op.name == "spx.sparse_conv2d")
    conv.properties["bias_where_nonzero"] = IntegerAttr(1, i64)
    with pytest.raises(SpxError) as err:
        lower(module)
    assert "bias_where_nonzero" in str(err.value) and "spx.sparse_conv2d" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    lower(shared_every_op_model())  # the quantize ops are implemented


def tiny_model():
    """A 4x4 image, N = 2: input_reduce, conv 3x3, relu, flatten, dense, relu (6 XLS functions)."""
    rng = np.random.default_rng(3)
    in_t, w_t, act_t = _precisions(8)
    b = ModelBuilder("tiny", [4, 4, 1], in_t)
    feat, hash_ = b.input_reduce(b.input, n_max=2, threshold=0.0)
    y = b.sparse_conv2d(feat, hash_, b.const(rng.integers(-64, 64, (3, 3, 1, 1)), w_t),
                        b.const(rng.integers(-64, 64, (1,)), w_t), FixedType(12, 6))
    y = b.sparse_activation(y, hash_, "relu", act_t)
    x = b.sparse_flatten(y, hash_, 4, 4)
    x = b.dense(x, b.const(rng.integers(-64, 64, (16, 2)), w_t), b.const(rng.integers(-64, 64, (2,)), w_t),
                FixedType(14, 8))
    return b.finish([b.activation(x, "relu", act_t)])


def test_spx_synth_measures_small_model(tmp_path, capsys):
    """compile --targets rtl, predict --backend rtl, synth: measured figures labelled by tool."""
    from spx.cli import spx

    mlir = tmp_path / "tiny.mlir"
    mlir.write_text(print_module(tiny_model()))
    out = tmp_path / "proj"
    assert spx(["compile", str(mlir), "-o", str(out), "--targets", "numpy,rtl"]) == 0
    rtl = out / "rtl"
    names = {p.name for p in rtl.iterdir()}
    assert {"tiny.v", "tiny.ir", "tiny.opt.ir", "tb.cpp", "synth.ys", "README.md", "rtl.json"} <= names
    x = events(np.random.default_rng(1), 50, (4, 4, 1), FixedType(8, 1, False), 2)
    np.save(tmp_path / "x.npy", x)
    for backend in ("numpy", "rtl"):
        assert spx(["predict", str(out), str(tmp_path / "x.npy"), "-o", str(tmp_path / f"{backend}.npy"),
                    "--backend", backend]) == 0
    assert np.array_equal(np.load(tmp_path / "numpy.npy"), np.load(tmp_path / "rtl.npy"))
    capsys.readouterr()
    assert spx(["synth", str(out), "--timeout", "600"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((rtl / "reports" / "synth.json").read_text())
    m = report["model_figures"]
    assert m["ii_cycles"] == 1.0 and m["latency_cycles"] >= 1 and m["lut"] > 0 and m["ff"] > 0
    assert report["sources"]["resources"].startswith("yosys-") and "verilator-" in printed
    assert len(report["ops"]) == 6 and all(o["lut"] is not None for o in report["ops"].values())
    assert (rtl / "reports" / "synth.png").stat().st_size > 1000
    assert spx(["report", str(out)]) == 0
    assert "yosys-" in capsys.readouterr().out
    # the hook `spx sweep` calls: the same measured model figures, named by tool
    from codegen import get_target

    hook = get_target("rtl").synth(out, timeout=600)
    assert (hook["latency"], hook["ii"], hook["lut"], hook["ff"], hook["dsp"]) == (
        m["latency_cycles"], m["ii_cycles"], m["lut"], m["ff"], m["dsp"])
    assert "verilator-" in hook["source"] and "yosys-" in hook["source"]
    # past --timeout: stopped, reported, and no figure recorded
    assert spx(["synth", str(out), "--timeout", "0.001", "--model-only"]) == 0
    assert "TIMEOUT" in capsys.readouterr().out
    report = json.loads((rtl / "reports" / "synth.json").read_text())
    # Yosys needs seconds: its figures are never recorded past the timeout (the cached Verilator
    # binary may finish a 64-event run inside 1 ms, so its figures may legitimately be present)
    assert any("yosys" in t for t in report["timeouts"]) and "lut" not in report["model_figures"]


def test_parse_yosys_counts_xilinx_cells():
    from codegen.rtl.synth import parse_yosys

    log = """
Printing statistics.
=== top ===
   Number of cells:                 10
     CARRY8                          2
     DSP48E2                         1
     FDRE                           30
     FDSE                            2
     LUT2                            5
     LUT6                            7
     RAMB18E2                        1
Longest topological path in top (length=9):
"""
    got = parse_yosys(log)
    assert (got["lut"], got["ff"], got["dsp"], got["carry"], got["bram"], got["logic_depth"]) == (12, 32, 1, 2, 1, 9)


SMALL_XLS_IR = """package p

top fn spx_top(x: bits[8]) -> bits[8] {
  one: bits[8] = literal(value=1)
  ret r: bits[8] = add(x, one)
}
"""


def _abort_child(ir, top, conn):
    import faulthandler
    import os

    faulthandler.disable()
    os.abort()          # what XLS's optimiser does past its memory cap


def _slow_child(ir, top, conn):
    import time

    time.sleep(60)


def test_xls_optimiser_crash_is_noticed_at_once_and_falls_back(monkeypatch):
    import time

    from codegen.rtl import emit as rtl_emit

    opt, note = rtl_emit.optimize(SMALL_XLS_IR, "spx_top", timeout=60)
    assert note is None and opt != SMALL_XLS_IR          # the real optimiser ran in the child
    monkeypatch.setattr(rtl_emit, "_optimize_child", _abort_child)
    t0 = time.monotonic()
    opt, note = rtl_emit.optimize(SMALL_XLS_IR, "spx_top", timeout=60)
    assert opt == SMALL_XLS_IR and "died" in note
    assert time.monotonic() - t0 < 20                     # not the 60 s timeout
    monkeypatch.setattr(rtl_emit, "_optimize_child", _slow_child)
    t0 = time.monotonic()
    opt, note = rtl_emit.optimize(SMALL_XLS_IR, "spx_top", timeout=1)
    assert opt == SMALL_XLS_IR and "stopped after 1 s" in note
    assert time.monotonic() - t0 < 20
