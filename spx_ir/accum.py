"""Exact accumulator types: the rule every target uses when an op has no `accum_type`.

A sum of T products of `in_t` x `w_t` plus one bias of `b_t` is held exactly by
    sum_type(accumulator_type(product_type(in_t, w_t), T), b_t).
Sparse conv: T = min(N, Kh*Kw) * Ci, because distinct active pixels occupy distinct positions,
so at most Kh*Kw of the N slots fall inside one kernel window. Dense: T = number of inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from spx_ir.fixed import FixedType, accumulator_type, average_type, product_type, sum_type


def exact_sum_type(in_t: FixedType, w_t: FixedType, b_t: FixedType, n_terms: int) -> FixedType:
    """Type holding `b + sum of n_terms products` exactly."""
    return sum_type(accumulator_type(product_type(in_t, w_t), n_terms), b_t)


def conv_terms(n_max: int, kh: int, kw: int, ci: int) -> int:
    """Most products that can meet in one sparse-conv output."""
    return min(n_max, kh * kw) * ci


def op_accum_type(op) -> FixedType:
    """The accumulator type of a sparse_conv2d or dense op: its `accum_type`, else the exact one."""
    from spx_ir import dialect as spx

    if op.accum_type is not None:
        return op.accum_type.spec
    elem = lambda v: v.type.element_type.spec  # noqa: E731
    if isinstance(op, spx.SparseConv2DOp):
        n, ci = op.feat.type.get_shape()
        kh, kw, _, _ = op.weight.type.get_shape()
        terms = conv_terms(n, kh, kw, ci)
        return exact_sum_type(elem(op.feat), elem(op.weight), elem(op.bias), terms)
    if isinstance(op, spx.DenseOp):
        (n_in,) = op.input.type.get_shape()
        return exact_sum_type(elem(op.input), elem(op.weight), elem(op.bias), n_in)
    raise TypeError(f"{op.name} has no accumulator")


# ------------------------------------------------------------------------------ average pooling


@dataclass(frozen=True)
class PoolAverage:
    """avg pooling of P x P members of `in_t` into `out_t`: res = round(num / den) by out_t's mode,
    num = sum * 2^num_shift, den = P^2 * 2^den_shift (one of the shifts is 0), then held in wide_t
    (out_t's fraction bits, wide enough for any quotient) and converted into out_t.

    Hardware (no divider): den = den_odd * 2^den_pow2; with n = num + offset >= 0 (offset = K*den)
    floor(n / den) = ((n >> den_pow2) * mult) >> shift  for every 0 <= n <= n_max, where
    mult = ceil(2^shift / den_odd) and shift is the smallest with (mult*den_odd - 2^shift)*n_max < 2^shift
    (proof: n*mult/2^shift = m/den_odd + m*e/(den_odd*2^shift) with m = n >> den_pow2 <= n_max and
    e = mult*den_odd - 2^shift; the error term is < 1/den_odd, which never crosses the next integer
    since frac(m/den_odd) <= 1 - 1/den_odd). den_odd = 1 needs no multiply (mult 1, shift 0)."""

    sum_t: FixedType  # exact member sum
    wide_t: FixedType
    num_shift: int
    den_shift: int
    den: int
    den_odd: int
    den_pow2: int
    offset: int  # K * den, K = ceil(-num_min / den)
    n_max: int  # largest num + offset
    mult: int
    shift: int


def pool_average(in_t: FixedType, out_t: FixedType, p: int) -> PoolAverage:
    sum_t = accumulator_type(in_t, p * p)
    scale = out_t.frac_bits - in_t.frac_bits
    num_shift, den_shift = max(scale, 0), max(-scale, 0)
    wide_t = average_type(in_t, p, out_t)
    den = (p * p) << den_shift
    den_pow2 = (den & -den).bit_length() - 1
    den_odd = den >> den_pow2
    num_min, num_max = (p * p * in_t.min_raw) << num_shift, (p * p * in_t.max_raw) << num_shift
    k = -(num_min // den) if num_min < 0 else 0
    n_max = num_max + k * den
    mult, shift = reciprocal(den_odd, n_max >> den_pow2)
    return PoolAverage(sum_t, wide_t, num_shift, den_shift, den, den_odd, den_pow2, k * den, n_max, mult, shift)


def reciprocal(d: int, m_max: int) -> tuple[int, int]:
    """(mult, shift) with floor(m / d) == (m * mult) >> shift for 0 <= m <= m_max (d odd >= 1)."""
    if d == 1:
        return 1, 0
    shift = (d - 1).bit_length()
    while True:
        mult = -(-(1 << shift) // d)
        if (mult * d - (1 << shift)) * max(m_max, 1) < (1 << shift):
            return mult, shift
        shift += 1
