"""Bit-exact Xilinx ap_fixed arithmetic in NumPy (DESIGN.md section 4).

A value of `FixedType(width, int_bits, signed, quant, overflow)` is stored as its raw integer:
value = raw * 2**(int_bits - width). Every datapath function works on arrays of raw integers with
pure integer arithmetic; `quantize` is the only entry from floats and is exact too.
Widths up to MAX_WIDTH = 1024 bits (ap_int's AP_INT_MAX_W) are exact: raws of types up to
INT64_WIDTH = 62 bits are int64 arrays (the fast path), raws of wider types are object arrays of
Python ints (`raw_dtype`), converted element by element; a function given a wide type returns
object arrays, else int64. Behaviour follows the
ap_fixed headers, which tests/test_fixed_conformance.py compares against bit for bit.

Assignment = round the exact value to the target's LSB by the quantization mode, then, if the rounded
integer is out of range, apply the overflow mode. Facts checked against the headers:
- TRN floor, TRN_ZERO toward 0, RND ties up, RND_ZERO ties toward 0, RND_INF ties away from 0,
  RND_MIN_INF ties down, RND_CONV ties to even; a rounding carry past the maximum is an overflow.
- WRAP keeps the low `width` bits (two's complement if signed), also for huge doubles and I < 0 or I > W.
- SAT clamps; SAT_ZERO gives 0 on overflow; SAT_SYM clamps a signed type to [-max, max] (the minimum
  itself becomes -max), except a 1-bit signed type, which keeps -1 like SAT; unsigned SAT_SYM is SAT.
- A rounding assignment (any mode except TRN, or TRN_ZERO from an unsigned source) that drops more
  fraction bits than the source is wide aborts the ap_fixed C simulation (assertion in ap_private);
  `convert` refuses it. Doubles never hit this (the double constructor has no such check).

This module imports only numpy and the standard library, and avoids `from __future__`, so code
generators can embed its text verbatim anywhere in a generated file.
"""

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

QUANT_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

# Widest type handled: ap_int's default AP_INT_MAX_W, the widest ap_fixed the C++ target compiles.
MAX_WIDTH = 1024

# Widest type computed on int64 arrays. Raw values then fit int64 with room for a rounding carry
# (|raw| <= 2**62) and 2**width is still an int64, so no intermediate of convert/quantize can overflow.
INT64_WIDTH = 62

# Shift amounts beyond this are equivalent to it for |raw| < 2**62 (the value is below half an LSB or
# beyond any range), so shifts are clamped here before touching int64.
_SHIFT_CLAMP = 63


class FixedPointError(ValueError):
    """A fixed-point type or value spx cannot represent or compute exactly."""


def _mode_name(mode: str) -> str:
    return str(mode).strip().upper().removeprefix("AP_")


@dataclass(frozen=True)
class FixedType:
    """ap_fixed<width, int_bits, quant, overflow> (or ap_ufixed when not signed)."""

    width: int
    int_bits: int
    signed: bool = True
    quant: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self):
        for name in ("width", "int_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise FixedPointError(f"fixed-point {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "quant", _mode_name(self.quant))
        object.__setattr__(self, "overflow", _mode_name(self.overflow))
        if self.width < 1:
            raise FixedPointError(f"fixed-point width must be >= 1, got {self.width}")
        if self.width > MAX_WIDTH:
            raise FixedPointError(
                f"fixed-point width {self.width} exceeds MAX_WIDTH={MAX_WIDTH} "
                "(the widest ap_fixed; ap_int's AP_INT_MAX_W)")
        if self.quant not in QUANT_MODES:
            raise FixedPointError(
                f"unknown quantization mode {self.quant!r} (valid: {', '.join(QUANT_MODES)})")
        if self.overflow not in OVERFLOW_MODES:
            raise FixedPointError(
                f"unknown overflow mode {self.overflow!r} (valid: {', '.join(OVERFLOW_MODES)})")

    @property
    def frac_bits(self) -> int:
        return self.width - self.int_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def _args(self, prefix: str) -> str:
        args = [str(self.width), str(self.int_bits)]
        if self.overflow != "WRAP":
            args += [prefix + self.quant, prefix + self.overflow]
        elif self.quant != "TRN":
            args.append(prefix + self.quant)
        return ",".join(args)

    def cpp(self) -> str:
        """The C++ type, e.g. `ap_fixed<8,3,AP_RND_CONV,AP_SAT>`."""
        return f"ap_{'' if self.signed else 'u'}fixed<{self._args('AP_')}>"

    def __str__(self) -> str:
        return f"{'' if self.signed else 'u'}fixed<{self._args('')}>"

    @staticmethod
    def parse(text: str) -> "FixedType":
        """Parse `fixed<8,3>`, `ufixed<8,2,RND_CONV,SAT>`, `ap_fixed<16,6,AP_RND,AP_SAT>`, hls4ml's
        `fixed<16,6,TRN,WRAP,0>`, or integer types `ap_int<8>` / `uint<4>`."""
        match = re.fullmatch(r"\s*(?:ap_)?(u?)(fixed|int)\s*<([^<>]*)>\s*", str(text))
        if not match:
            raise FixedPointError(f"cannot parse fixed-point type {text!r} (expected e.g. 'fixed<16,6>')")
        unsigned, kind, body = match.groups()
        fields = [f.strip() for f in body.split(",")]
        n_numbers = 2 if kind == "fixed" else 1
        if not n_numbers <= len(fields) <= (5 if kind == "fixed" else 1):
            raise FixedPointError(f"cannot parse fixed-point type {text!r}: wrong number of parameters")
        try:
            numbers = [int(f) for f in fields[:n_numbers]]
            sat_bits = int(fields[4]) if len(fields) == 5 else 0
        except ValueError:
            raise FixedPointError(f"cannot parse fixed-point type {text!r}: numeric parameters must be "
                                  "integers") from None
        if sat_bits != 0:
            raise FixedPointError(f"fixed-point type {text!r}: saturation bits N != 0 are not supported")
        width, int_bits = numbers if kind == "fixed" else numbers * 2
        modes = fields[2:4]
        try:
            return FixedType(width, int_bits, not unsigned, *modes)
        except FixedPointError as err:
            raise FixedPointError(f"bad fixed-point type {text!r}: {err}") from None


# ---------------------------------------------------------------------------------------------------
# Conversion core


def is_wide(t: FixedType) -> bool:
    """True if raws of t need Python ints (object arrays) rather than int64."""
    return t.width > INT64_WIDTH


def raw_dtype(t: FixedType):
    """The numpy dtype of raw arrays of t: int64, or object (Python ints) for wide types."""
    return object if is_wide(t) else np.int64


def as_ints(raw, wide: bool) -> np.ndarray:
    """raw (integers) as an int64 array, or as an object array of Python ints when `wide`."""
    arr = np.asarray(raw)
    if wide:
        return arr if arr.dtype == object else arr.astype(np.int64).astype(object)
    return arr.astype(np.int64, copy=False)


def _as_raw(raw, t: FixedType) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iubO" or (arr.dtype == object and not all(
            isinstance(v, (int, np.integer)) for v in arr.reshape(-1))):
        raise FixedPointError(f"raw values of {t} must be integers, got dtype {arr.dtype}")
    arr = as_ints(arr, is_wide(t) or arr.dtype == object)
    bad = (arr < t.min_raw) | (arr > t.max_raw)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise FixedPointError(f"raw value {arr[where]} at index {where} is out of range for {t} "
                              f"[{t.min_raw}, {t.max_raw}]")
    return arr


def _round_increment(q, above_half, tie, inexact, negative, quant):
    """1 where floor result q must be incremented to round by `quant`, else 0."""
    if quant == "TRN":
        up = np.zeros(np.shape(q), bool)
    elif quant == "TRN_ZERO":
        up = inexact & negative
    elif quant == "RND":
        up = above_half | tie
    elif quant == "RND_ZERO":
        up = above_half | (tie & negative)
    elif quant == "RND_INF":
        up = above_half | (tie & ~negative)
    elif quant == "RND_MIN_INF":
        up = above_half
    else:  # RND_CONV
        up = above_half | (tie & ((q & 1) == 1))
    return up.astype(np.int64)


def _round_up_int(q: int, rem: int, drop: int, negative: bool, quant: str) -> bool:
    """_round_increment for one Python int: floor q, remainder rem of a shift by `drop` bits."""
    if rem == 0 or quant == "TRN":
        return False
    half = 1 << (drop - 1)
    if quant == "TRN_ZERO":
        return negative
    if rem != half:
        return rem > half
    return {"RND": True, "RND_ZERO": negative, "RND_INF": not negative, "RND_MIN_INF": False,
            "RND_CONV": q & 1 == 1}[quant]


def _rescale_int(raw: int, drop: int, dst: FixedType) -> tuple[int, bool]:
    """_rescale for one Python int (any width): exact by construction."""
    raw, drop = int(raw), int(drop)
    if drop > 0:
        q = raw >> drop
        n = q + _round_up_int(q, raw - (q << drop), drop, raw < 0, dst.quant)
    else:
        n = raw << -drop
    lo = dst.min_raw + (1 if dst.overflow == "SAT_SYM" and dst.signed and dst.width > 1 else 0)
    if lo <= n <= dst.max_raw:
        return n, False
    if dst.overflow == "WRAP":
        n &= (1 << dst.width) - 1
        return (n - (1 << dst.width) if dst.signed and n > dst.max_raw else n), True
    if dst.overflow == "SAT_ZERO":
        return 0, True
    return (dst.max_raw if n > dst.max_raw else lo), True


def _rescale_wide(raw: np.ndarray, drop, dst: FixedType):
    """_rescale on an object array of Python ints (the path for types wider than INT64_WIDTH)."""
    out, ov = np.frompyfunc(lambda r, d: _rescale_int(r, d, dst), 2, 2)(raw, drop)
    out = np.asarray(out, dtype=object)
    return (out if is_wide(dst) else out.astype(np.int64)), np.asarray(ov, dtype=bool)


def _rescale(raw: np.ndarray, drop, dst: FixedType):
    """Assign raw * 2**-drop (an exact value; `drop` int or int64 array, negative = scale up) to dst
    the ap_fixed way: round by dst.quant, then handle overflow by dst.overflow.
    Returns (raw result, mask of elements whose value overflow handling changed)."""
    if raw.dtype == object or is_wide(dst):
        return _rescale_wide(as_ints(raw, True), drop, dst)
    drop = np.broadcast_to(np.clip(drop, -_SHIFT_CLAMP, _SHIFT_CLAMP).astype(np.int64), raw.shape)
    w = dst.width
    lo = dst.min_raw + (1 if dst.overflow == "SAT_SYM" and dst.signed and w > 1 else 0)
    hi = dst.max_raw

    # Scale down (drop > 0): floor, then round. Shifts past 62 bits keep only the sign, which decides
    # floor and rounding identically because |raw| < 2**62 is then below half an LSB.
    right = np.maximum(drop, 0)
    far = right > 62
    r_raw = np.where(far, np.sign(raw), raw)
    r_sh = np.where(far, 2, right)
    q = r_raw >> r_sh
    rem = r_raw & ((np.int64(1) << r_sh) - 1)
    half = (np.int64(1) << r_sh) >> 1
    inexact = rem != 0
    n = q + _round_increment(q, rem > half, inexact & (rem == half), inexact, raw < 0, dst.quant)

    # Scale up (drop <= 0): exact; compare raw with the range scaled down instead of shifting it out.
    left = np.maximum(-drop, 0)
    hi_left = np.int64(hi) >> left
    lo_left = -(np.int64(-lo) >> left)
    up_value = np.clip(raw, lo_left, hi_left) << left
    keep_bits = np.maximum(w - left, 0)
    up_wrapped = (raw & ((np.int64(1) << keep_bits) - 1)) << np.minimum(left, w)

    scale_up = drop <= 0
    above = np.where(scale_up, raw > hi_left, n > hi)
    below = np.where(scale_up, raw < lo_left, n < lo)
    value = np.where(scale_up, up_value, n)
    overflowed = above | below

    if dst.overflow == "WRAP":
        modulus = np.int64(1) << w
        wrapped = np.where(scale_up, up_wrapped, n) & (modulus - 1)
        if dst.signed:
            wrapped = np.where(wrapped > dst.max_raw, wrapped - modulus, wrapped)
        return wrapped, overflowed
    if dst.overflow == "SAT_ZERO":
        return np.where(overflowed, 0, value), overflowed
    return np.where(above, hi, np.where(below, lo, value)), overflowed  # SAT, SAT_SYM


# ---------------------------------------------------------------------------------------------------
# Public API


def quantize(x, t: FixedType) -> np.ndarray:
    """Raw integers of t for float values x, exactly like `ap_fixed<...> v = (double)x;`."""
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise FixedPointError(f"cannot quantize {x[where]} (at index {where}) to {t}: "
                              "NaN and Inf have no fixed-point value")
    mantissa, exponent = np.frexp(x)  # x = mantissa * 2**exponent exactly, 0.5 <= |mantissa| < 1
    raw = np.ldexp(mantissa, 53).astype(np.int64)  # exact integer, |raw| < 2**53
    frac = np.clip(t.frac_bits, -4096, 4096)  # beyond this every double rounds the same way
    result, _ = _rescale(raw, 53 - exponent.astype(np.int64) - frac, t)
    return result


def check_assignable(src: FixedType, dst: FixedType) -> None:
    """ap_fixed's C simulation aborts (assertion in ap_private::get_bit) when a rounding assignment
    drops more fraction bits than the source is wide; refuse it rather than compute what C++ cannot."""
    drop = src.frac_bits - dst.frac_bits
    rounds = dst.quant != "TRN" and not (dst.quant == "TRN_ZERO" and not src.signed)
    if rounds and drop > src.width:
        raise FixedPointError(
            f"cannot assign {src} to {dst}: {dst.quant} would drop {drop} fraction bits, more than the "
            f"source's {src.width}, which aborts ap_fixed C simulation (use TRN or an intermediate type)")


def convert_counting(raw, src: FixedType, dst: FixedType) -> tuple[np.ndarray, np.ndarray]:
    """`dst = src` assignment of raw values; also returns the mask where overflow changed the value."""
    check_assignable(src, dst)
    return _rescale(_as_raw(raw, src), src.frac_bits - dst.frac_bits, dst)


def convert(raw, src: FixedType, dst: FixedType) -> np.ndarray:
    """Raw values of src assigned to dst, like ap_fixed assignment: quantize, then handle overflow."""
    return convert_counting(raw, src, dst)[0]


def to_float(raw, t: FixedType) -> np.ndarray:
    """Float64 values of raw integers of t (exact for widths <= 53, else rounded to nearest)."""
    raw = np.asarray(raw)
    if raw.dtype == object:
        return np.frompyfunc(lambda r: math.ldexp(float(Fraction(int(r), 1)), -t.frac_bits), 1, 1)(
            raw).astype(np.float64)
    return np.ldexp(raw.astype(np.int64).astype(np.float64), -t.frac_bits)


def _exact_type(width: int, int_bits: int, signed: bool, what: str) -> FixedType:
    if width > MAX_WIDTH:
        raise FixedPointError(f"{what} needs {width} bits, beyond MAX_WIDTH={MAX_WIDTH} "
                              "(the widest ap_fixed); use narrower operand types")
    return FixedType(width, int_bits, signed)


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """Exact type of a*b (ap_fixed: widths and integer bits add; signed if either is)."""
    return _exact_type(a.width + b.width, a.int_bits + b.int_bits, a.signed or b.signed,
                       f"the product {a} * {b}")


def sum_type(a: FixedType, b: FixedType) -> FixedType:
    """Exact type of a+b (ap_fixed: one carry bit over the wider integer part, signed if either is)."""
    int_bits = max(a.int_bits + (b.signed and not a.signed), b.int_bits + (a.signed and not b.signed)) + 1
    frac_bits = max(a.frac_bits, b.frac_bits)
    return _exact_type(int_bits + frac_bits, int_bits, a.signed or b.signed, f"the sum {a} + {b}")


def accumulator_type(term: FixedType, n_terms: int) -> FixedType:
    """Narrowest type (same fraction bits) holding any sum of n_terms values of `term`."""
    if n_terms < 1:
        raise FixedPointError(f"accumulator_type needs n_terms >= 1, got {n_terms}")
    if term.signed:
        width = 1 + max((n_terms * term.max_raw).bit_length(), (-n_terms * term.min_raw - 1).bit_length())
    else:
        width = max((n_terms * term.max_raw).bit_length(), 1)
    return _exact_type(width, width - term.frac_bits, term.signed,
                       f"a sum of {n_terms} terms of {term}")


def average_type(in_t: FixedType, size: int, out_t: FixedType) -> FixedType:
    """Signed type with out_t's fraction bits holding the rounded average of size*size values of
    in_t (sum * 2**(f_out - f_in) / size**2, rounded) before its one conversion into out_t."""
    width = accumulator_type(in_t, size * size).width + max(out_t.frac_bits - in_t.frac_bits, 0) + 1
    return _exact_type(width, width - out_t.frac_bits, True, f"the average of {size}x{size} {in_t}")


def divide_round(num, den: int, quant: str) -> np.ndarray:
    """Integers num / den (den > 0) rounded by quantization mode `quant` (e.g. for average pooling)."""
    quant = _mode_name(quant)
    if quant not in QUANT_MODES:
        raise FixedPointError(f"unknown quantization mode {quant!r} (valid: {', '.join(QUANT_MODES)})")
    num = np.asarray(num)
    wide = num.dtype == object or int(den) > np.iinfo(np.int64).max
    if int(den) < 1:
        raise FixedPointError(f"divide_round needs a divisor >= 1, got {den}")
    if num.dtype.kind not in "iubO":
        raise FixedPointError(f"divide_round needs integer numerators, got dtype {num.dtype}")
    num = as_ints(num, wide)
    den = int(den) if wide else np.int64(den)
    q, rem = num // den, num % den  # floor and remainder in [0, den)
    over = rem - (den - rem)  # sign of rem - den/2, without overflow
    inexact = rem != 0
    return q + _round_increment(q, over > 0, inexact & (over == 0), inexact, num < 0, quant)


def threshold_raw(threshold: float, t: FixedType) -> int:
    """The raw threshold T of `value > threshold` for values of t: for EVERY raw r of t,
    (r > T) == (r * 2**-f > threshold) exactly (f = t.frac_bits), i.e. T = floor(threshold * 2**f),
    clamped to [t.min_raw - 1, t.max_raw]: min_raw - 1 = every value is above ("always"), max_raw =
    none is ("never"). This is how Keras compares the quantized input with the float threshold
    (an off-grid threshold is not rounded onto the grid, an out-of-range one never wraps)."""
    if not math.isfinite(threshold):
        raise FixedPointError(f"threshold {threshold!r} must be finite")
    floor = math.floor(Fraction(threshold) * Fraction(2) ** t.frac_bits)
    return min(max(floor, t.min_raw - 1), t.max_raw)
