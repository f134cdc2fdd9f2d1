"""Unit tests of spx_ir.fixed: type syntax, validation, every rounding and overflow mode by hand,
exact result types, divide_round, the int64 limits, and an exact-rational reference model."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_ir.fixed import (MAX_WIDTH, raw_dtype, OVERFLOW_MODES, QUANT_MODES, FixedPointError, FixedType,
                          accumulator_type, convert, convert_counting, divide_round, product_type,
                          quantize, sum_type, to_float)

# ---------------------------------------------------------------------------------------------------
# Exact-rational reference model (Python ints and Fractions, no int64 anywhere)


def round_fraction(value: Fraction, quant: str) -> int:
    floor = math.floor(value)
    rest = value - floor  # in [0, 1)
    if rest == 0 or quant == "TRN":
        return floor
    tie, negative = rest == Fraction(1, 2), value < 0
    up = {
        "TRN_ZERO": negative,
        "RND": rest >= Fraction(1, 2),
        "RND_ZERO": rest > Fraction(1, 2) or (tie and negative),
        "RND_INF": rest > Fraction(1, 2) or (tie and not negative),
        "RND_MIN_INF": rest > Fraction(1, 2),
        "RND_CONV": rest > Fraction(1, 2) or (tie and floor % 2 == 1),
    }[quant]
    return floor + up


def reference_assign(value: Fraction, t: FixedType) -> int:
    """Raw integer of t for an exact value, by ap_fixed's rules as documented in fixed.py."""
    n = round_fraction(value * Fraction(2) ** t.frac_bits, t.quant)
    lo, hi = t.min_raw, t.max_raw
    if t.overflow == "SAT_SYM" and t.signed and t.width > 1:
        lo += 1
    if lo <= n <= hi:
        return n
    if t.overflow == "WRAP":
        n %= 1 << t.width
        return n - (1 << t.width) if t.signed and n > t.max_raw else n
    if t.overflow == "SAT_ZERO":
        return 0
    return hi if n > hi else lo


def value_of(raw: int, t: FixedType) -> Fraction:
    return Fraction(int(raw)) / Fraction(2) ** t.frac_bits


# ---------------------------------------------------------------------------------------------------
# Type syntax and validation


@pytest.mark.parametrize("t, text, cpp", [
    (FixedType(8, 3), "fixed<8,3>", "ap_fixed<8,3>"),
    (FixedType(8, 2, False, "RND_CONV", "SAT"), "ufixed<8,2,RND_CONV,SAT>", "ap_ufixed<8,2,AP_RND_CONV,AP_SAT>"),
    (FixedType(8, 3, quant="RND"), "fixed<8,3,RND>", "ap_fixed<8,3,AP_RND>"),
    (FixedType(8, 3, overflow="SAT_SYM"), "fixed<8,3,TRN,SAT_SYM>", "ap_fixed<8,3,AP_TRN,AP_SAT_SYM>"),
    (FixedType(1, -4, False), "ufixed<1,-4>", "ap_ufixed<1,-4>"),
])
def test_str_and_cpp(t, text, cpp):
    assert str(t) == text
    assert t.cpp() == cpp
    assert FixedType.parse(text) == t
    assert FixedType.parse(cpp) == t


@pytest.mark.parametrize("text, t", [
    ("fixed<16,6>", FixedType(16, 6)),
    ("ap_fixed<16,6,AP_RND,AP_SAT>", FixedType(16, 6, True, "RND", "SAT")),
    ("ufixed<8,0>", FixedType(8, 0, False)),
    ("fixed<16,6,RND_CONV,SAT,0>", FixedType(16, 6, True, "RND_CONV", "SAT")),  # hls4ml str() form
    (" ap_ufixed< 10 , -2 , AP_TRN_ZERO > ", FixedType(10, -2, False, "TRN_ZERO")),
    ("ap_int<8>", FixedType(8, 8)),
    ("uint<4>", FixedType(4, 4, False)),
])
def test_parse_hls4ml_strings(text, t):
    assert FixedType.parse(text) == t


def test_round_trip_every_mode():
    for quant in QUANT_MODES:
        for overflow in OVERFLOW_MODES:
            for t in (FixedType(12, -3, True, quant, overflow), FixedType(5, 9, False, quant, overflow)):
                assert FixedType.parse(str(t)) == t
                assert FixedType.parse(t.cpp()) == t


def test_properties():
    t = FixedType(8, 3)
    assert (t.frac_bits, t.min_raw, t.max_raw) == (5, -128, 127)
    u = FixedType(8, 10, False)
    assert (u.frac_bits, u.min_raw, u.max_raw) == (-2, 0, 255)
    assert FixedType(8, 3, quant="ap_rnd").quant == "RND"  # AP_ prefix and case are normalised


@pytest.mark.parametrize("make, message", [
    (lambda: FixedType(0, 0), "fixed-point width must be >= 1, got 0"),
    (lambda: FixedType(MAX_WIDTH + 1, 0), f"fixed-point width {MAX_WIDTH + 1} exceeds MAX_WIDTH={MAX_WIDTH}"),
    (lambda: FixedType(8.0, 3), "fixed-point width must be an integer, got 8.0"),
    (lambda: FixedType(8, "3"), "fixed-point int_bits must be an integer, got '3'"),
    (lambda: FixedType(8, 3, quant="ROUND"), "unknown quantization mode 'ROUND' (valid: TRN, TRN_ZERO,"),
    (lambda: FixedType(8, 3, overflow="WRAP_SM"), "unknown overflow mode 'WRAP_SM' (valid: WRAP, SAT,"),
    (lambda: FixedType.parse("float"), "cannot parse fixed-point type 'float'"),
    (lambda: FixedType.parse("fixed<8>"), "cannot parse fixed-point type 'fixed<8>': wrong number"),
    (lambda: FixedType.parse("fixed<a,3>"), "cannot parse fixed-point type 'fixed<a,3>': numeric parameters"),
    (lambda: FixedType.parse("fixed<8,3,RND,SAT,2>"), "saturation bits N != 0 are not supported"),
    (lambda: FixedType.parse("fixed<8,3,FOO>"), "bad fixed-point type 'fixed<8,3,FOO>': unknown quantization"),
    (lambda: FixedType.parse("fixed<0,3>"), "bad fixed-point type 'fixed<0,3>': fixed-point width must be"),
])
def test_validation_messages(make, message):
    with pytest.raises(FixedPointError) as info:
        make()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------
# Quantization and overflow modes, by hand

TIES = [2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 2.25, -2.75, 0.0]
ROUNDED = {
    "TRN":         [2, -3, 3, -4, 0, -1, 2, -3, 0],
    "TRN_ZERO":    [2, -2, 3, -3, 0, 0, 2, -2, 0],
    "RND":         [3, -2, 4, -3, 1, 0, 2, -3, 0],
    "RND_ZERO":    [2, -2, 3, -3, 0, 0, 2, -3, 0],
    "RND_INF":     [3, -3, 4, -4, 1, -1, 2, -3, 0],
    "RND_MIN_INF": [2, -3, 3, -4, 0, -1, 2, -3, 0],
    "RND_CONV":    [2, -2, 4, -4, 0, 0, 2, -3, 0],
}


@pytest.mark.parametrize("quant", QUANT_MODES)
@pytest.mark.parametrize("int_bits", [8, 3, -2])
def test_quantization_modes(quant, int_bits):
    """Values in units of the LSB: from doubles and from a source with two more fraction bits."""
    t = FixedType(8, int_bits, True, quant)
    values = np.ldexp(np.array(TIES), -t.frac_bits)
    assert quantize(values, t).tolist() == ROUNDED[quant]
    src = FixedType(10, int_bits)
    assert convert((np.array(TIES) * 4).astype(np.int64), src, t).tolist() == ROUNDED[quant]


def test_rounding_next_to_ties_is_exact():
    t = FixedType(8, 8, quant="RND_ZERO")
    assert quantize([np.nextafter(2.5, 3), np.nextafter(-2.5, -3)], t).tolist() == [3, -3]
    t = FixedType(8, 8, quant="RND")
    assert quantize([np.nextafter(2.5, 2), np.nextafter(-0.5, 0)], t).tolist() == [2, 0]
    t = FixedType(40, 40, quant="RND_CONV")  # ties above 2**33 still exact
    assert quantize([2.0**33 + 0.5, 2.0**33 + 1.5], t).tolist() == [2**33, 2**33 + 2]


OVERFLOWS = {  # fixed<4,4> holds -8..7; ufixed<4,4> holds 0..15
    (True, "WRAP"):      ([7, 8, 9, -8, -9, 20, -20, 16], [7, -8, -7, -8, 7, 4, -4, 0]),
    (True, "SAT"):       ([7, 8, 9, -8, -9, 20, -20, 16], [7, 7, 7, -8, -8, 7, -8, 7]),
    (True, "SAT_ZERO"):  ([7, 8, 9, -8, -9, 20, -20, 16], [7, 0, 0, -8, 0, 0, 0, 0]),
    (True, "SAT_SYM"):   ([7, 8, 9, -8, -9, 20, -20, 16], [7, 7, 7, -7, -7, 7, -7, 7]),
    (False, "WRAP"):     ([15, 16, -1, 17, -16], [15, 0, 15, 1, 0]),
    (False, "SAT"):      ([15, 16, -1, 17, -16], [15, 15, 0, 15, 0]),
    (False, "SAT_ZERO"): ([15, 16, -1, 17, -16], [15, 0, 0, 0, 0]),
    (False, "SAT_SYM"):  ([15, 16, -1, 17, -16], [15, 15, 0, 15, 0]),
}


@pytest.mark.parametrize("signed, overflow", OVERFLOWS)
def test_overflow_modes(signed, overflow):
    values, want = OVERFLOWS[signed, overflow]
    t = FixedType(4, 4, signed, "TRN", overflow)
    assert quantize(values, t).tolist() == want
    got, changed = convert_counting(np.array(values) * 2, FixedType(8, 7), t)
    assert got.tolist() == want
    assert changed.tolist() == [v != w for v, w in zip(values, want)]


def test_overflow_corner_cases():
    # SAT_SYM on a 1-bit signed type saturates like SAT (the ap_fixed headers keep -1, not 0).
    assert quantize([-3.0, -1.0, 3.0], FixedType(1, 1, overflow="SAT_SYM")).tolist() == [-1, -1, 0]
    # Rounding that carries past the maximum overflows.
    assert quantize([7.5], FixedType(4, 4, quant="RND", overflow="SAT")).tolist() == [7]
    assert quantize([7.5], FixedType(4, 4, quant="RND")).tolist() == [-8]
    assert quantize([15.5], FixedType(4, 4, False, "RND_INF", "SAT_ZERO")).tolist() == [0]
    # I < 0 and I > W.
    assert quantize([0.01, -0.01, 1.0], FixedType(4, -3, quant="RND", overflow="SAT")).tolist() == [1, -1, 7]
    assert quantize([500.0, 1000.0, 1024.0], FixedType(3, 10, False, "RND")).tolist() == [4, 0, 0]
    # Huge doubles wrap exactly; tiny ones round by sign alone.
    assert quantize([2.0**70, 2.0**70 + 2.0**20 * 3, -(2.0**61)], FixedType(8, 22)).tolist() == [0, -64, 0]
    assert quantize([5e-324, -5e-324], FixedType(8, 0, quant="TRN")).tolist() == [0, -1]
    assert quantize([5e-324, -5e-324], FixedType(8, 0, quant="RND_INF")).tolist() == [0, 0]


def test_to_float():
    t = FixedType(8, 3)
    assert to_float([-128, 1, 127], t).tolist() == [-4.0, 1 / 32, 127 / 32]
    assert to_float(quantize([1.25, -0.75], t), t).tolist() == [1.25, -0.75]


# ---------------------------------------------------------------------------------------------------
# Reference model (random types, including the int64 extremes)

# widths around the int64 path's limit (INT64_WIDTH) are drawn most often; wide ones use Python ints
types = st.builds(FixedType, st.integers(1, 70) | st.integers(1, MAX_WIDTH), st.integers(-80, 80), st.booleans(),
                  st.sampled_from(QUANT_MODES), st.sampled_from(OVERFLOW_MODES))


@settings(max_examples=200, deadline=None)
@given(src=types, dst=types, data=st.data())
def test_convert_matches_reference(src, dst, data):
    drop = src.frac_bits - dst.frac_bits
    raws = data.draw(st.lists(st.integers(src.min_raw, src.max_raw), min_size=1, max_size=8))
    raws += [src.min_raw, src.max_raw]
    rounds = dst.quant != "TRN" and not (dst.quant == "TRN_ZERO" and not src.signed)
    if rounds and drop > src.width:
        with pytest.raises(FixedPointError, match="aborts ap_fixed C simulation"):
            convert(raws, src, dst)
        return
    got = convert(np.array(raws, raw_dtype(src)), src, dst)
    assert got.dtype == raw_dtype(dst)
    assert got.tolist() == [reference_assign(value_of(r, src), dst) for r in raws]


@settings(max_examples=150, deadline=None)
@given(t=types, xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_quantize_matches_reference(t, xs):
    assert quantize(xs, t).tolist() == [reference_assign(Fraction(x), t) for x in xs]


# ---------------------------------------------------------------------------------------------------
# Exact result types

small_types = st.builds(FixedType, st.integers(1, 24), st.integers(-10, 30), st.booleans())


@settings(max_examples=100, deadline=None)
@given(a=small_types, b=small_types, data=st.data())
def test_product_and_sum_types_are_exact(a, b, data):
    ra = data.draw(st.lists(st.integers(a.min_raw, a.max_raw), min_size=1, max_size=6)) + [a.min_raw, a.max_raw]
    rb = data.draw(st.lists(st.integers(b.min_raw, b.max_raw), min_size=1, max_size=6)) + [b.max_raw, b.min_raw]
    for kind, result in (("mul", product_type(a, b)), ("add", sum_type(a, b))):
        for x, y in zip(ra, rb):
            exact = value_of(x, a) * value_of(y, b) if kind == "mul" else value_of(x, a) + value_of(y, b)
            raw = exact * Fraction(2) ** result.frac_bits
            assert raw.denominator == 1 and result.min_raw <= raw <= result.max_raw


@settings(max_examples=100, deadline=None)
@given(a=small_types, b=small_types)
def test_result_types_are_tight(a, b):
    """For the extreme operands, a type one integer bit narrower would overflow."""
    def narrower(t):
        return FixedType(t.width - 1, t.int_bits - 1, t.signed)
    sa, sb = FixedType(a.width, a.int_bits, True), FixedType(b.width, b.int_bits, True)
    p = product_type(sa, sb)
    assert p.width == 2 or sa.min_raw * sb.min_raw > narrower(p).max_raw
    s = sum_type(a, a)
    extreme = 2 * a.min_raw if a.signed else 2 * a.max_raw
    assert extreme < narrower(s).min_raw or extreme > narrower(s).max_raw


@pytest.mark.parametrize("term", [FixedType(8, 3), FixedType(8, 3, False), FixedType(1, 1),
                                  FixedType(1, 0, False), FixedType(5, -2)])
@pytest.mark.parametrize("n_terms", [1, 2, 3, 9, 16, 1000])
def test_accumulator_type(term, n_terms):
    acc = accumulator_type(term, n_terms)
    assert acc.frac_bits == term.frac_bits and acc.signed == term.signed
    low, high = n_terms * term.min_raw, n_terms * term.max_raw
    assert acc.min_raw <= low and high <= acc.max_raw
    if acc.width > 1:
        tight = FixedType(acc.width - 1, acc.int_bits - 1, acc.signed)
        assert low < tight.min_raw or high > tight.max_raw
    rng = np.random.default_rng(n_terms)
    sums = rng.integers(term.min_raw, term.max_raw, (50, n_terms), endpoint=True).sum(axis=1)
    assert np.array_equal(convert(sums, acc, acc), sums)


# ---------------------------------------------------------------------------------------------------
# divide_round


@pytest.mark.parametrize("quant", QUANT_MODES)
def test_divide_round_matches_fractions(quant):
    rng = np.random.default_rng(7)
    big = np.iinfo(np.int64)
    for den in (1, 2, 3, 4, 5, 9, 16, 2**40 + 1, big.max):
        num = np.concatenate([np.arange(-40, 41), rng.integers(big.min, big.max, 200, endpoint=True),
                              [big.min, big.max, big.min + 1]])
        want = [round_fraction(Fraction(int(n), den), quant) for n in num]
        assert divide_round(num, den, quant).tolist() == want


def test_divide_round_errors():
    with pytest.raises(FixedPointError, match="divisor >= 1, got 0"):
        divide_round([1], 0, "RND")
    with pytest.raises(FixedPointError, match="unknown quantization mode 'NEAREST'"):
        divide_round([1], 3, "NEAREST")
    with pytest.raises(FixedPointError, match="integer numerators"):
        divide_round([1.5], 3, "RND")


# ---------------------------------------------------------------------------------------------------
# Limits and bad input


def test_width_limits():
    too_wide = r"product fixed<600,20> \* fixed<500,10> needs 1100 bits, beyond MAX_WIDTH=1024"
    with pytest.raises(FixedPointError, match=too_wide):
        product_type(FixedType(600, 20), FixedType(500, 10))
    with pytest.raises(FixedPointError, match="a sum of 16 terms of fixed<1022,10> needs 1026 bits"):
        accumulator_type(FixedType(1022, 10), 16)
    assert sum_type(FixedType(62, 2), FixedType(62, 2)) == FixedType(63, 3)  # past int64: Python ints
    wide = FixedType(200, 100, quant="RND_CONV")
    raw = convert(np.array([2**61 - 1, -(2**61)]), FixedType(62, 2), wide)
    assert raw.dtype == object and raw.tolist() == [(2**61 - 1) << 40, -(2**61) << 40]
    assert convert(raw, wide, FixedType(62, 2)).tolist() == [2**61 - 1, -(2**61)]
    assert divide_round(np.array([2**100 + 24], dtype=object), 49, "RND").tolist() == [(2**100 + 24 + 24) // 49]
    # The widest types convert exactly across any shift, up or down.
    wide, uwide = FixedType(62, 0), FixedType(62, 62, False)
    assert convert([wide.min_raw, wide.max_raw], wide, FixedType(62, 62, overflow="SAT")).tolist() == [-1, 0]
    assert convert([uwide.max_raw], uwide, FixedType(62, 0, False, overflow="SAT")).tolist() == [uwide.max_raw]
    assert convert([uwide.max_raw, 3], uwide, FixedType(62, -300, False)).tolist() == [0, 0]
    assert convert([wide.min_raw, 1, 0], wide, FixedType(62, 300, True, "TRN")).tolist() == [-1, 0, 0]
    assert quantize([-(2.0**-70), 2.0**-70], FixedType(62, 300, True, "RND_INF")).tolist() == [0, 0]


def test_bad_values():
    with pytest.raises(FixedPointError, match=r"cannot quantize nan \(at index \(1,\)\) to fixed<8,3>"):
        quantize([0.0, np.nan], FixedType(8, 3))
    with pytest.raises(FixedPointError, match="cannot quantize -inf"):
        quantize(-np.inf, FixedType(8, 3))
    out_of_range = r"raw value 200 at index \(1,\) is out of range for fixed<8,3> \[-128, 127\]"
    with pytest.raises(FixedPointError, match=out_of_range):
        convert([0, 200], FixedType(8, 3), FixedType(4, 2))
    with pytest.raises(FixedPointError, match="must be integers, got dtype float64"):
        convert(np.array([1.0]), FixedType(8, 3), FixedType(4, 2))
    with pytest.raises(FixedPointError, match="RND would drop 13 fraction bits, more than the source's 8"):
        convert([1], FixedType(8, 3), FixedType(2, 10, quant="RND"))


def test_shapes_are_kept():
    t = FixedType(8, 3, quant="RND")
    x = np.linspace(-5, 5, 24).reshape(2, 3, 4)
    assert quantize(x, t).shape == (2, 3, 4) and quantize(x, t).dtype == np.int64
    assert quantize(1.3, t).shape == ()
    assert convert(quantize(x, t), t, FixedType(6, 2)).shape == (2, 3, 4)
