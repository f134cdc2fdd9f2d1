"""Exact integer and ap_fixed arithmetic as XLS nodes: the RTL twin of spx_ir/fixed.py.

An `Int` is a two's-complement signed bit vector with static bounds [lo, hi] on its value; its width
is the narrowest holding those bounds, so every sum and product is exact by construction and no
node is wider than the values it can carry. Fixed-point raws (unsigned types too) enter through
`from_raw` and leave through `convert`, which rounds and overflow-handles exactly like
`spx_ir.fixed.convert` (same case analysis: floor by arithmetic shift, increment by the quantization
mode from the dropped bits, then WRAP / SAT / SAT_ZERO / SAT_SYM on the rounded integer).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.rtl.xlsir import Bits, Fn
from spx_ir.fixed import FixedType, check_assignable


def signed_width(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement type holding [lo, hi]."""
    return max(1, 1 + max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0))


@dataclass(frozen=True)
class Int:
    bits: Bits
    lo: int
    hi: int

    @property
    def width(self) -> int:
        return self.bits.width


def make(fn: Fn, bits: Bits, lo: int, hi: int, signed: bool = True) -> Int:
    """An Int for `bits` (interpreted signed or unsigned) whose value lies in [lo, hi]."""
    w = signed_width(lo, hi)
    if bits.width < w:
        bits = fn.ext(bits, w, signed and lo < 0)
    elif bits.width > w:
        bits = fn.slice(bits, 0, w)
    return Int(bits, lo, hi)


def const(fn: Fn, value: int) -> Int:
    return Int(fn.lit(value, signed_width(value, value)), value, value)


def from_raw(fn: Fn, raw: Bits, t: FixedType) -> Int:
    return make(fn, raw, t.min_raw, t.max_raw, t.signed)


def widen(fn: Fn, a: Int, width: int) -> Bits:
    if width <= a.width:
        return a.bits
    if a.lo == a.hi:  # a constant: a literal of the width, not an extension node
        return fn.lit(a.lo, width)
    return fn.ext(a.bits, width, a.lo < 0)  # zero_ext when non-negative (equal, simpler for XLS)


def add(fn: Fn, a: Int, b: Int) -> Int:
    lo, hi = a.lo + b.lo, a.hi + b.hi
    w = max(signed_width(lo, hi), a.width, b.width)
    return make(fn, fn.binary("add", widen(fn, a, w), widen(fn, b, w)), lo, hi)


def sub(fn: Fn, a: Int, b: Int) -> Int:
    lo, hi = a.lo - b.hi, a.hi - b.lo
    w = max(signed_width(lo, hi), a.width, b.width)
    return make(fn, fn.binary("sub", widen(fn, a, w), widen(fn, b, w)), lo, hi)


def mul(fn: Fn, a: Int, b: Int) -> Int:
    corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
    lo, hi = min(corners), max(corners)
    if a.lo == a.hi == 0 or b.lo == b.hi == 0:
        return const(fn, 0)
    return make(fn, fn.binary("smul", a.bits, b.bits, signed_width(lo, hi)), lo, hi)


def shl(fn: Fn, a: Int, k: int) -> Int:
    """a * 2**k exactly (k >= 0)."""
    if k == 0:
        return a
    return Int(fn.concat([a.bits, fn.lit(0, k)]), a.lo << k, a.hi << k)


def floor_shr(fn: Fn, a: Int, k: int) -> Int:
    """floor(a / 2**k) (k >= 0)."""
    if k == 0:
        return a
    lo, hi = a.lo >> k, a.hi >> k
    if k >= a.width:
        return make(fn, fn.slice(a.bits, a.width - 1, 1), lo, hi)
    return make(fn, fn.slice(a.bits, k, a.width - k), lo, hi)


def compare(fn: Fn, op: str, a: Int, b: Int) -> Bits:
    """1-bit result of a signed comparison op ('slt', 'sgt', 'eq', ...)."""
    w = max(a.width, b.width)
    return fn.cmp(op, widen(fn, a, w), widen(fn, b, w))


def select(fn: Fn, cond: Bits, if_true: Int, if_false: Int) -> Int:
    lo, hi = min(if_true.lo, if_false.lo), max(if_true.hi, if_false.hi)
    w = max(signed_width(lo, hi), if_true.width, if_false.width)
    return Int(fn.mux(cond, widen(fn, if_true, w), widen(fn, if_false, w)), lo, hi)


def select_many(fn: Fn, selector: Bits, cases: list[Int], default: Int | None = None) -> Int:
    every = cases + ([default] if default is not None else [])
    lo, hi = min(c.lo for c in every), max(c.hi for c in every)
    w = max([signed_width(lo, hi)] + [c.width for c in every])
    return Int(fn.sel(selector, [widen(fn, c, w) for c in cases],
                      None if default is None else widen(fn, default, w)), lo, hi)


def maximum(fn: Fn, a: Int, b: Int) -> Int:
    if a.lo >= b.hi:
        return a
    if b.lo >= a.hi:
        return b
    m = select(fn, compare(fn, "sgt", a, b), a, b)
    return make(fn, m.bits, max(a.lo, b.lo), max(a.hi, b.hi))


def clamp(fn: Fn, a: Int, lo: int, hi: int) -> Int:
    if a.lo < lo:
        a = select(fn, compare(fn, "slt", a, const(fn, lo)), const(fn, lo), a)
        a = Int(a.bits, max(a.lo, lo), a.hi)
    if a.hi > hi:
        a = select(fn, compare(fn, "sgt", a, const(fn, hi)), const(fn, hi), a)
        a = Int(a.bits, a.lo, min(a.hi, hi))
    return make(fn, a.bits, max(a.lo, lo), min(a.hi, hi))


def sum_tree(fn: Fn, terms: list[Int]) -> Int:
    """The exact sum of terms by a balanced adder tree."""
    if not terms:
        return const(fn, 0)
    while len(terms) > 1:
        terms = [add(fn, terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def is_negative(fn: Fn, a: Int) -> Bits:
    if a.lo >= 0:
        return fn.lit(0, 1)
    return fn.slice(a.bits, a.width - 1, 1)


def _or(fn: Fn, *bits: Bits) -> Bits:
    out = bits[0]
    for b in bits[1:]:
        out = fn.binary("or", out, b)
    return out


def _and(fn: Fn, a: Bits, b: Bits) -> Bits:
    return fn.binary("and", a, b)


def round_shr(fn: Fn, a: Int, k: int, quant: str) -> Int:
    """a / 2**k rounded by ap_fixed quantization mode `quant` (k > 0)."""
    q = floor_shr(fn, a, k)
    if quant == "TRN":
        return q
    # the dropped bits, as an unsigned k-bit number (a mod 2**k)
    rem = fn.slice(a.bits, 0, k) if k <= a.width else fn.ext(a.bits, k, True)
    half = fn.lit(1 << (k - 1), k)
    above = fn.cmp("ugt", rem, half)
    tie = fn.cmp("eq", rem, half)
    inexact = fn.cmp("ne", rem, fn.lit(0, k))
    neg = is_negative(fn, a)
    if quant == "TRN_ZERO":
        up = _and(fn, inexact, neg)
    elif quant == "RND":
        up = _or(fn, above, tie)
    elif quant == "RND_ZERO":
        up = _or(fn, above, _and(fn, tie, neg))
    elif quant == "RND_INF":
        up = _or(fn, above, _and(fn, tie, fn.unary("not", neg)))
    elif quant == "RND_MIN_INF":
        up = above
    else:  # RND_CONV
        up = _or(fn, above, _and(fn, tie, fn.slice(q.bits, 0, 1)))
    return add(fn, q, make(fn, up, 0, 1, signed=False))


def saturate(fn: Fn, n: Int, dst: FixedType) -> Bits:
    """dst.width raw bits of the integer n by dst's overflow mode."""
    w = dst.width
    lo = dst.min_raw + (1 if dst.overflow == "SAT_SYM" and dst.signed and w > 1 else 0)
    hi = dst.max_raw
    wrapped = fn.slice(n.bits, 0, w) if n.width >= w else fn.ext(n.bits, w, True)
    if (lo <= n.lo and n.hi <= hi) or dst.overflow == "WRAP":
        return wrapped
    above = compare(fn, "sgt", n, const(fn, hi)) if n.hi > hi else None
    below = compare(fn, "slt", n, const(fn, lo)) if n.lo < lo else None
    if dst.overflow == "SAT_ZERO":
        return fn.mux(_or(fn, *[c for c in (above, below) if c is not None]), fn.lit(0, w), wrapped)
    out = wrapped if below is None else fn.mux(below, fn.lit(lo, w), wrapped)
    return out if above is None else fn.mux(above, fn.lit(hi, w), out)


def rescale(fn: Fn, a: Int, drop: int, dst: FixedType) -> Bits:
    """Assign a * 2**-drop to dst the ap_fixed way (round by dst.quant, then overflow)."""
    n = round_shr(fn, a, drop, dst.quant) if drop > 0 else shl(fn, a, -drop)
    return saturate(fn, n, dst)


def convert(fn: Fn, a: Int, src: FixedType, dst: FixedType) -> Bits:
    """Raw bits of dst for `dst = src` (a: the value as a raw of src, possibly a wider exact sum
    typed by src). Refuses what spx_ir.fixed.convert refuses."""
    check_assignable(src, dst)
    return rescale(fn, a, src.frac_bits - dst.frac_bits, dst)
