"""The sparsepixels semantic variants and the per-element quantize ops, on every target.

* spx.quantize's integer kernel == ap_fixed<k+i+f, k+i> conversion (spx_ir.fixed, conformance-tested
  against the real headers) on every element that has such a type, and == HGQ2's float formula;
* each variant (input_reduce activity=channel0, sparse_conv2d bias_mode=nonzero, sparse_pool2d
  inactive=zero) does what upstream does, on hand-made cases;
* NumPy == C simulation on random models using every variant and both quantize ops.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

from codegen.numpy import kernels
from codegen.numpy.emit import load as numpy_load
from frontends.sparsepixels.hgq import Quantizer
from spx_ir import dialect as spx
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import QUANT_MODES, FixedType, convert_counting
from tests.test_vitis_equivalence import assert_equal, events

HGQ_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")


def random_kif(rng, shape, max_bits=8):
    k = rng.integers(0, 2, size=shape)
    f = rng.integers(-2, 7, size=shape)
    i = rng.integers(-3, max_bits - 3, size=shape)
    i = np.maximum(i, -f)  # i + f >= 0; some elements have k + i + f = 0 (always 0)
    return np.stack([k, i, f], axis=-1)


@pytest.mark.parametrize("quant", QUANT_MODES)
@pytest.mark.parametrize("overflow", HGQ_OVERFLOW)
def test_quantize_equals_ap_fixed_conversion_per_element(quant, overflow):
    rng = np.random.default_rng(hash((quant, overflow)) % 2**32)
    in_t = FixedType(14, 6)
    kif = random_kif(rng, (500,))
    x = rng.integers(in_t.min_raw, in_t.max_raw + 1, size=(4, 500))
    q = Quantizer(kif[..., 0], kif[..., 1], kif[..., 2], quant, overflow, False)
    out_t = q.covering_type()
    y, _ = kernels.quantize_elements(x, in_t, kif, quant, overflow, out_t)
    checked = 0
    for e, (k, i, f) in enumerate(kif):
        width = k + i + f
        if width == 0:
            assert not y[:, e].any()
            continue
        if overflow == "SAT_SYM" and k == 1 and width == 1:  # HGQ2: [-0, 0]; ap_fixed keeps -1
            assert not y[:, e].any()
            continue
        t = FixedType(int(width), int(k + i), bool(k), quant, overflow)
        try:
            want, _ = convert_counting(x[:, e], in_t, t)
        except Exception:  # an assignment ap_fixed's C simulation refuses: nothing to compare with
            continue
        np.testing.assert_array_equal(y[:, e], want << (out_t.frac_bits - t.frac_bits), err_msg=f"element {e} {t}")
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("overflow", HGQ_OVERFLOW)
@pytest.mark.parametrize("quant", ("TRN", "RND", "RND_CONV"))
def test_quantize_equals_hgq2_float_formula(quant, overflow):
    rng = np.random.default_rng(7)
    in_t = FixedType(12, 5)
    kif = random_kif(rng, (300,), max_bits=7)
    q = Quantizer(kif[..., 0].astype(np.float32), kif[..., 1].astype(np.float32), kif[..., 2].astype(np.float32),
                  quant, overflow, False)
    x = rng.integers(in_t.min_raw, in_t.max_raw + 1, size=(6, 300))
    y, _ = kernels.quantize_elements(x, in_t, kif, quant, overflow, q.covering_type())
    hgq = q.apply_float32((x * 2.0 ** -in_t.frac_bits).astype(np.float32))
    np.testing.assert_array_equal(y * 2.0 ** -q.covering_type().frac_bits, hgq)


def test_activity_channel0_ignores_other_channels():
    t = FixedType(8, 4)
    x = np.zeros((1, 2, 2, 2), np.int64)
    x[0, 0, 1, 1] = 50  # only channel 1 above the threshold
    x[0, 1, 0, 0] = 30
    feat, hash_, _, _ = kernels.input_reduce(x, t, 16, 4, t, "channel0")
    assert hash_[0, :, 0].tolist() == [2, 0, 0, 0]
    feat, hash_, _, _ = kernels.input_reduce(x, t, 16, 4, t, "any")
    assert hash_[0, :, 0].tolist() == [1, 2, 0, 0]


def test_bias_nonzero_only_where_the_sum_is_nonzero():
    t = FixedType(8, 4)
    feat = np.array([[[16], [0]]])          # slot 0: 1.0, slot 1: 0.0 (active, value 0)
    hash_ = np.array([[[1, 1], [5, 5]]])    # far apart: each sees only itself
    w, b = np.ones((1, 1, 1, 1), np.int64) * 16, np.array([8])
    out_t = FixedType(20, 10)
    y, _ = kernels.sparse_conv2d(feat, hash_, t, w, t, b, t, None, out_t, "nonzero")
    assert (y[0, :, 0] * 2.0 ** -out_t.frac_bits).tolist() == [1.5, 0.0]
    y, _ = kernels.sparse_conv2d(feat, hash_, t, w, t, b, t, None, out_t, "active")
    assert (y[0, :, 0] * 2.0 ** -out_t.frac_bits).tolist() == [1.5, 0.5]


def test_max_pool_inactive_zero_counts_missing_pixels():
    t = FixedType(8, 4)
    feat = np.array([[[-16], [-32], [-8], [-4], [-2]]])
    hash_ = np.array([[[1, 1], [1, 2], [2, 1], [2, 2], [3, 3]]])  # a full 2x2 window, and a lone pixel
    for inactive, want in (("zero", [-4, 0]), ("skip", [-4, -2])):
        y, h, _ = kernels.sparse_pool2d(feat, hash_, t, 2, "max", 4, 4, t, inactive)
        assert y[0, [0, 4], 0].tolist() == want
        assert h[0, :, 0].tolist() == [1, 0, 0, 0, 2]


# ------------------------------------------------------------------------ numpy == csim


def variant_model(seed: int):
    """input_reduce(channel0) -> sparse_quantize -> conv(bias nonzero) -> relu? -> max pool(zero) /
    avg pool -> flatten -> quantize -> dense, with random tables, modes and weights (many zeros so
    that sums vanish)."""
    rng = np.random.default_rng(seed)
    h, w, c = 8, 6, 2
    in_t = FixedType(10, 3)
    b = ModelBuilder(f"variants{seed}", [h, w, c], in_t)
    n = int(rng.integers(3, 12))
    feat, hash_ = b.input_reduce(b.input, n, float(rng.choice([0.0, 0.3])))
    feat.owner.activity = StringAttr("channel0")
    outs = []
    for branch in range(3):
        quant, overflow = str(rng.choice(QUANT_MODES)), str(rng.choice(HGQ_OVERFLOW))
        kif = random_kif(rng, (h, w, c), max_bits=7)
        q = Quantizer(kif[..., 0], kif[..., 1], kif[..., 2], quant, overflow, False)
        op = spx.SparseQuantizeOp(feat, hash_, kif, quant, overflow, q.covering_type())
        b._add(op)
        x = op.result
        wt, bt = FixedType(6, 2), FixedType(6, 2)
        weights = rng.integers(-8, 8, size=(3, 3, c, 3)) * (rng.random((3, 3, c, 3)) < 0.5)
        from spx_ir.accum import conv_terms, exact_sum_type

        conv_t = exact_sum_type(q.covering_type(), wt, bt, conv_terms(n, 3, 3, c))
        y = b.sparse_conv2d(x, hash_, b.const(weights, wt), b.const(rng.integers(-8, 8, size=3), bt), conv_t)
        y.owner.bias_mode = StringAttr("nonzero")
        mode = "max" if branch < 2 else "avg"
        pool_t = conv_t if mode == "max" else FixedType(conv_t.width + 2, conv_t.int_bits)
        pf, ph = b.sparse_pool2d(y, hash_, 2, mode, h, w, pool_t)
        if mode == "max":
            pf.owner.inactive = StringAttr("zero")
        flat = b.sparse_flatten(pf, ph, h // 2, w // 2)
        size = (h // 2) * (w // 2) * 3
        dkif = random_kif(rng, (size,), max_bits=9)
        dq = Quantizer(dkif[..., 0], dkif[..., 1], dkif[..., 2], quant, overflow, False)
        qop = spx.QuantizeOp(flat, dkif, quant, overflow, dq.covering_type())
        b._add(qop)
        dw = FixedType(5, 1)
        from spx_ir.accum import exact_sum_type as est

        out_t = est(dq.covering_type(), dw, dw, size)
        outs.append(b.dense(qop.result, b.const(rng.integers(-16, 16, size=(size, 2)), dw),
                            b.const(rng.integers(-16, 16, size=2), dw), out_t))
    module = b.finish(outs)
    from spx_ir.text import verify

    verify(module, "variants")
    return module, rng


@pytest.mark.parametrize("seed", [1, 2])
def test_variants_and_quantize_numpy_equals_csim(seed):
    from codegen.vitis.csim import load as csim_load

    module, rng = variant_model(seed)
    x = events(rng, 400, (8, 6, 2), FixedType(10, 3), n_max=4)
    ref = numpy_load(module)
    outs = ref.predict_raw(x)
    assert all(len(np.unique(o)) > 5 for o in outs)  # informative
    assert_equal(csim_load(module), ref, x, f"variants seed {seed}")


@pytest.mark.parametrize("old,new,match", [
    ('activity = "channel0"', 'activity = "channel1"', r"unknown activity 'channel1', expected one of any, channel0"),
    ('bias_mode = "nonzero"', 'bias_mode = "always"', r"unknown bias_mode 'always'"),
    ('inactive = "zero"', 'inactive = "nan"', r"unknown inactive 'nan'"),
    ('overflow = "SAT"', 'overflow = "SAT_ZERO"', r"unknown overflow mode 'SAT_ZERO', expected one of WRAP, SAT, SAT_SYM"),
])
def test_verifier_rejects_unknown_variants_and_modes(old, new, match):
    from pathlib import Path

    import frontends.sparsepixels as sparsepixels
    from spx_ir.text import SpxError, parse_module, print_module

    text = print_module(sparsepixels.load(Path(__file__).parent / "fixtures" / "sparsepixels" / "max_2ch.keras"))
    assert old in text
    parse_module(text)  # the printed IR round-trips
    with pytest.raises(SpxError, match=match):
        parse_module(text.replace(old, new, 1))


def test_verifier_checks_the_kif_table_and_result_type():
    from spx_ir.text import SpxError, verify

    b = ModelBuilder("q", [4], FixedType(8, 4))
    kif = np.array([[1, 2, 3]] * 4)
    b._add(spx.QuantizeOp(b.input, kif, "RND", "SAT", FixedType(5, 3)))  # needs fixed<6,3>
    with pytest.raises(SpxError, match=r"does not hold every element's values \(needs 3 fraction bits, 3 integer bits, signed\)"):
        verify(b.finish([b.block.last_op.result]), "q")


def test_verifier_counts_the_sign_bit_for_unsigned_elements_in_a_signed_result():
    from spx_ir.text import SpxError, verify

    b = ModelBuilder("q", [2], FixedType(8, 4))
    kif = np.array([[1, 1, 2], [0, 2, 2]])  # [-2, 2) and [0, 4): a signed result needs 3 integer bits
    b._add(spx.QuantizeOp(b.input, kif, "TRN", "WRAP", FixedType(4, 2)))
    with pytest.raises(SpxError, match=r"needs 2 fraction bits, 3 integer bits, signed"):
        verify(b.finish([b.block.last_op.result]), "q")
    b = ModelBuilder("q", [2], FixedType(8, 4))
    b._add(spx.QuantizeOp(b.input, kif, "TRN", "WRAP", FixedType(5, 3)))
    verify(b.finish([b.block.last_op.result]), "q")
