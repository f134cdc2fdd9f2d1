"""spx-fixed-point: exact accumulator types, the width cap and profiled narrowing."""

import warnings

import numpy as np
import pytest

from codegen.numpy.emit import load
from spx_ir.graph import layer_names
from passes import run_pipeline
from passes.fixed_point import AccumulatorWarning, assign_accumulators, exact_accum_type
from spx_ir import dialect as spx
from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder, model_function
from spx_ir.fixed import FixedType
from spx_ir.text import SpxError, parse_module, print_module

IN_T = FixedType(4, 1, signed=False)
W_T = FixedType(4, 2)
ACT_T = FixedType(4, 2, signed=False, quant="RND_CONV", overflow="SAT")


def tiny_model():
    """6x6x1 -> input_reduce N=4 -> conv 3x3 1->2 -> relu -> max pool 2 -> flatten 18 -> dense 2."""
    b = ModelBuilder("tiny", [6, 6, 1], IN_T)
    feat, hash = b.input_reduce(b.input, n_max=4)
    y = b.sparse_conv2d(feat, hash, b.const(np.full((3, 3, 1, 2), -8), W_T), b.const(np.array([7, -8]), W_T), FixedType(12, 6))
    y = b.sparse_activation(y, hash, "relu", ACT_T)
    y, hash = b.sparse_pool2d(y, hash, 2, "max", 6, 6, ACT_T)
    x = b.sparse_flatten(y, hash, 3, 3)
    return b.finish([b.dense(x, b.const(np.full((18, 2), 7), W_T), b.const(np.array([1, 2]), W_T), FixedType(16, 8))])


def _accums(text: str) -> list[str]:
    return [line.split("accum_type = ")[1].split("}")[0].split(",  ")[0] for line in text.splitlines() if "accum_type" in line]


def test_exact_types_are_set_and_printed():
    before = print_module(tiny_model())
    assert "accum_type" not in before
    after = print_module(run_pipeline(tiny_model(), "spx-fixed-point"))
    # conv: ufixed<4,1> x fixed<4,2> = fixed<8,3>; min(N=4, 3*3)*Ci = 4 terms -> fixed<10,5>; + bias fixed<4,2> -> fixed<11,6>
    assert "spx.sparse_conv2d %1, %2, %3, %4 {accum_type = !spx.fixed<11, 6>}" in after
    # dense: ufixed<4,2> x fixed<4,2> = fixed<8,4>; 18 terms -> fixed<13,9>; + bias -> fixed<14,10>
    assert "spx.dense %9, %10, %11 {accum_type = !spx.fixed<14, 10>}" in after
    assert after.replace(" {accum_type = !spx.fixed<11, 6>}", "").replace(" {accum_type = !spx.fixed<14, 10>}", "") == before
    assert print_module(run_pipeline(parse_module(after), "spx-fixed-point")) == after  # idempotent


def test_existing_accumulators_are_kept():
    from tests.ir_samples import every_op_model

    text = print_module(every_op_model())
    assert print_module(run_pipeline(every_op_model(), "spx-fixed-point")) == text


def test_cap_warns_per_op_and_is_idempotent():
    with pytest.warns(AccumulatorWarning) as record:
        module = run_pipeline(tiny_model(), "spx-fixed-point{max-accum-width=12}")
    messages = [str(w.message) for w in record]
    assert messages == ["spx.dense 'dense_1': accumulator capped at 12 bits (fixed<12,8>) can overflow: the exact sum needs fixed<14,10>"]
    text = print_module(module)
    assert _accums(text) == ["!spx.fixed<11, 6>", "!spx.fixed<12, 8>"]  # conv fits in 12 bits: not capped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert print_module(run_pipeline(module, "spx-fixed-point{max-accum-width=12}")) == text


@pytest.mark.parametrize("pipeline,message", [
    ("spx-fixed-point{max-accum-width=1}", "option max-accum-width=1 must be an integer in [2, 1024]"),
    ("spx-fixed-point{max-accum-width=2000}", "option max-accum-width=2000 must be an integer in [2, 1024]"),
    ("spx-fixed-point{max-accum-width=wide}", "pass 'spx-fixed-point'"),
    ('spx-fixed-point{profile="/no/such.npy"}', "pass 'spx-fixed-point': option profile=/no/such.npy: no such file"),
])
def test_bad_options_name_pass_and_option(pipeline, message):
    with pytest.raises(SpxError) as err:
        run_pipeline(tiny_model(), pipeline)
    assert message in str(err.value)


# ---------------------------------------------------------------------------------- exactness


def _random_type(rng, signed=None) -> FixedType:
    width = int(rng.integers(3, 11))
    signed = bool(rng.integers(0, 2)) if signed is None else signed
    return FixedType(width, int(rng.integers(-2, width + 2)), signed)


def _weights(rng, shape, t: FixedType, extreme: bool):
    if extreme:  # the worst case for the accumulator: all at the type's most negative / largest value
        return np.full(shape, t.min_raw if t.signed else t.max_raw)
    return rng.integers(t.min_raw, t.max_raw + 1, size=shape)


def random_model(seed: int, extreme: bool = False):
    """A random sparse CNN: random types, kernel sizes, channels, N; conv/dense results typed to hold
    their exact sums, so any saturation reported comes from an accumulator."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 9, size=2))
    c = int(rng.integers(1, 3))
    in_t = _random_type(rng)
    b = ModelBuilder(f"random{seed}", [h, w, c], in_t)
    n = int(rng.integers(1, h * w + 1))
    feat, hash = b.input_reduce(b.input, n_max=n, threshold=float(rng.choice([0.0, -1.0])) if in_t.signed else 0.0)
    x_t, ci = in_t, c
    for _ in range(int(rng.integers(1, 3))):
        kh, kw, co = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
        w_t, b_t = _random_type(rng), _random_type(rng)
        weight, bias = b.const(_weights(rng, (kh, kw, ci, co), w_t, extreme), w_t), b.const(_weights(rng, (co,), b_t, extreme), b_t)
        exact = exact_sum_type(x_t, w_t, b_t, conv_terms(n, kh, kw, ci))
        y = b.sparse_conv2d(feat, hash, weight, bias, exact)
        x_t = _random_type(rng)
        feat, ci = b.sparse_activation(y, hash, str(rng.choice(["relu", "linear"])), x_t), co
    flat = b.sparse_flatten(feat, hash, h, w)
    w_t, b_t = _random_type(rng), _random_type(rng)
    weight, bias = b.const(_weights(rng, (h * w * ci, 3), w_t, extreme), w_t), b.const(_weights(rng, (3,), b_t, extreme), b_t)
    y = b.dense(flat, weight, bias, exact_sum_type(x_t, w_t, b_t, h * w * ci))
    return b.finish([y]), in_t


def random_inputs(rng, module, in_t: FixedType, events: int = 24):
    shape = model_function(module).function_type.inputs.data[0].get_shape()
    lo, hi = in_t.min_raw * 2.0 ** -in_t.frac_bits, in_t.max_raw * 2.0 ** -in_t.frac_bits
    x = rng.uniform(lo, hi, size=(events, *shape))
    x[rng.random(x.shape) < rng.random((events, 1, 1, 1))] = 0.0  # random sparsity per event
    x[0] = hi if in_t.max_raw else 0.0  # one event with every pixel at the largest value
    if in_t.signed:
        x[1] = lo
    return x


def _accumulator_saturations(module, x) -> int:
    sat = load(module).diagnostics(x)["saturations"]
    return sum(int(sat[name].sum()) for op, name in layer_names(module).items() if isinstance(op, spx.SparseConv2DOp | spx.DenseOp))


@pytest.mark.parametrize("seed", range(12))
def test_exact_typing_never_saturates_on_random_models(seed):
    rng = np.random.default_rng(1000 + seed)
    module, in_t = random_model(seed, extreme=seed % 3 == 0)
    run_pipeline(module, "spx-fixed-point")
    x = random_inputs(rng, module, in_t)
    assert _accumulator_saturations(module, x) == 0


def test_capped_accumulator_reports_saturations():
    module, in_t = random_model(3, extreme=True)
    exact = [exact_accum_type(op) for op in module.walk() if isinstance(op, spx.SparseConv2DOp | spx.DenseOp)]
    cap = min(t.width for t in exact) - 3
    x = random_inputs(np.random.default_rng(0), module, in_t)
    with pytest.warns(AccumulatorWarning):
        run_pipeline(module, f"spx-fixed-point{{max-accum-width={cap}}}")
    assert _accumulator_saturations(module, x) > 0


# ---------------------------------------------------------------------------------- profiling


def test_profile_narrows_without_changing_results_on_the_profile_data(tmp_path):
    text = open("examples/neutrino_sparse_l.mlir").read()
    rng = np.random.default_rng(5)
    x = np.zeros((32, 63, 63, 1))
    for event in x:
        event.reshape(-1)[rng.choice(63 * 63, 30, replace=False)] = rng.uniform(0, 1, 30)
    np.save(tmp_path / "calib.npy", x)
    reference = load(parse_module(text)).predict_raw(x)
    pipeline = f'spx-fixed-point{{profile="{tmp_path / "calib.npy"}"}}'
    with pytest.warns(AccumulatorWarning, match="by profile data") as record:
        module = run_pipeline(parse_module(text), pipeline)
    assert len(record) == 4  # two convs, two denses
    exact = [exact_accum_type(op) for op in module.walk() if isinstance(op, spx.SparseConv2DOp | spx.DenseOp)]
    narrowed = [op.accum_type.spec for op in module.walk() if isinstance(op, spx.SparseConv2DOp | spx.DenseOp)]
    assert all(n.width < e.width and n.frac_bits == e.frac_bits for n, e in zip(narrowed, exact))
    assert np.array_equal(load(module).predict_raw(x), reference)
    assert _accumulator_saturations(module, x) == 0
    once = print_module(module)
    assert print_module(run_pipeline(module, pipeline)) == once


def test_assign_accumulators_returns_the_warnings():
    assert assign_accumulators(tiny_model()) == []
    assert len(assign_accumulators(tiny_model(), max_width=8)) == 2
