"""Lookup tables for non-linear functions (sigmoid, tanh, softmax).

Table contents are computed ONCE here, in Python, at compile time and emitted unchanged into every
target (NumPy reference, Vitis C++), so all targets agree bit for bit. The index rules below are
integer-only functions of a fixed-point value's raw integer; a target must implement them exactly as
written. Notation: a value of type `t` is `x = raw * 2**-f` with `f = t.frac_bits` (f may be
negative).
All table sizes and ranges are powers of two, so every division below is an exact arithmetic shift.

Sigmoid / tanh (hls4ml-like, one uniform table over a symmetric range [-R, R)):
    R = 8 (sigmoid) or 4 (tanh); size S (default 1024)
    idx      = clamp(floor((x + R) * S / (2R)), 0, S-1)
             = clamp(((raw + (R << f)) * S) >> (f + log2(2R)), 0, S-1)     for f >= 0
               clamp(((raw << -f) + R) * S >> log2(2R), 0, S-1)            for f < 0
    table[i] = quantize(fn(-R + i * 2R / S), out_t)   (left edge of bin i, out_t's quant/overflow)
    Result raw = table[idx], already of out_t. Error vs. the true function: at most
    max|fn'| * 2R/S (binning; 1/4 * 16/S for sigmoid, 8/S for tanh) plus one quantum of out_t, and
    outside [-R, R) additionally the tail 1 - fn(R - 2R/S) (sigmoid: < 3.4e-4 at S = 1024).

Softmax (all-integer, "stable" variant in the spirit of hls4ml), over a vector x[0..K-1] of in_t:
    1. m = max_k x[k];  d[k] = x[k] - m <= 0, computed exactly on raws (no type conversion).
    2. exp lookup:  u = -d >= 0 (raw in in_t's scale)
           ie[k] = min(floor(u * Se / Re), Se-1)       (same shift rule as above, offset 0)
           e[k]  = exp_table[ie[k]],  exp_table[i] = quantize(exp(-i * Re / Se), exp_t)
       Defaults Re = 16, Se = 2048, exp_t = ufixed<18,1> RND. exp_table[0] == 1 exactly, so the
       maximum contributes exactly 1.
    3. s = sum_k e[k], exact (raw sum; type accumulator_type(exp_t, K)), so 1 <= s <= K.
    4. inverse lookup, normalised like a float mantissa (fs = exp_t.frac_bits, Si = 2**si):
           k_s  = floor(log2 s) = number of j in 1..kmax with s_raw >= 1 << (fs + j),
                  kmax = floor(log2 K)
           base = 1 << (fs + k_s)                       (so s / 2**k_s = s_raw / base in [1, 2))
           ii   = floor((s_raw - base) * Si / base)     = (s_raw - base) >> (fs + k_s - si)
                                                          (left shift if that amount is negative)
           inv  = inv_table[ii], inv_table[i] = quantize(1 / (1 + i / Si), inv_t)   (left edge)
       Defaults Si = 1024, inv_t = ufixed<18,1> RND; inv_table[0] == 1.
    5. p[k] = e[k] * inv * 2**-k_s exactly (product type of exp_t and inv_t with k_s more fraction
       bits), then ONE ap_fixed conversion into out_t (out_t's quant and overflow).
    Resolution: with w = Re/Se, for K inputs,
        |p - softmax(x)| <= (e**w - 1)/4 + 1/Si + (K-1)*exp(-(Re - w)) + 2**-fe + 2**-fi + q_out
    (q_out = one quantum of out_t for TRN-like modes, half a quantum for RND-like modes, exp_t and
    inv_t with fe, fi fraction bits). Defaults: 0.00296 + q_out for K <= 10, 0.0031 + q_out for
    K <= 1024 (SoftmaxTables.resolution computes it).
"""
import math

import numpy as np

from spx_ir.fixed import FixedType, quantize

SIGMOID_RANGE = 8
TANH_RANGE = 4
DEFAULT_SIZE = 1024


def _log2_exact(n: int, what: str) -> int:
    if not isinstance(n, (int, np.integer)) or n < 1 or n & (n - 1):
        raise ValueError(f"tables: {what} must be a power of two, got {n!r}")
    return int(n).bit_length() - 1


def scaled_floor(raw, frac_bits: int, offset: int, shift: int) -> np.ndarray:
    """floor((raw * 2**-frac_bits + offset) * 2**shift) computed exactly on int64 raws."""
    raw = np.asarray(raw, dtype=np.int64)
    if frac_bits >= 0:
        num, e = raw + (int(offset) << frac_bits), shift - frac_bits
    else:
        num, e = (raw << -frac_bits) + int(offset), shift
    return num << e if e >= 0 else num >> -e


def range_index(raw, in_t: FixedType, half_range: int, size: int) -> np.ndarray:
    """clamp(floor((x + R) * S / (2R)), 0, S-1) for x = raw of in_t, R = half_range, S = size."""
    shift = _log2_exact(size, "table size") - _log2_exact(2 * half_range, "table range")
    return np.clip(scaled_floor(raw, in_t.frac_bits, half_range, shift), 0, size - 1)


def _range_table(fn, half_range: int, size: int, out_t: FixedType) -> np.ndarray:
    _log2_exact(size, "table size")
    left = -half_range + np.arange(size, dtype=np.float64) * (2.0 * half_range / size)
    return np.asarray(quantize(fn(left), out_t), dtype=np.int64)


def sigmoid_index(raw, in_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    return range_index(raw, in_t, SIGMOID_RANGE, size)


def sigmoid_table(in_t: FixedType, out_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Raw out_t values of sigmoid at the left edge of each bin of [-8, 8). in_t only fixes the
    index rule (sigmoid_index); the contents do not depend on it."""
    return _range_table(lambda v: 1.0 / (1.0 + np.exp(-v)), SIGMOID_RANGE, size, out_t)


def tanh_index(raw, in_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    return range_index(raw, in_t, TANH_RANGE, size)


def tanh_table(in_t: FixedType, out_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Raw out_t values of tanh at the left edge of each bin of [-4, 4)."""
    return _range_table(np.tanh, TANH_RANGE, size, out_t)


class SoftmaxTables:
    """Everything a target needs for softmax over K inputs of in_t (see the module docstring)."""

    def __init__(self, in_t, n, exp_t, inv_t, exp_range, exp_size, inv_size, exp_table, inv_table):
        self.in_t, self.n = in_t, n
        self.exp_t, self.inv_t = exp_t, inv_t
        self.exp_range, self.exp_size, self.inv_size = exp_range, exp_size, inv_size
        self.exp_table, self.inv_table = exp_table, inv_table
        self.kmax = n.bit_length() - 1                  # floor(log2 K)

    def resolution(self, out_quantum: float = 0.0) -> float:
        """Bound on |softmax_table - softmax_float| (module docstring), plus out_quantum."""
        w = self.exp_range / self.exp_size
        return ((math.exp(w) - 1) / 4 + 1 / self.inv_size
                + (self.n - 1) * math.exp(-(self.exp_range - w))
                + 2.0 ** -self.exp_t.frac_bits + 2.0 ** -self.inv_t.frac_bits + out_quantum)


def softmax_tables(in_t: FixedType, n: int, exp_size: int = 2048, exp_range: int = 16,
                   inv_size: int = 1024, exp_t: FixedType | None = None,
                   inv_t: FixedType | None = None) -> SoftmaxTables:
    if n < 1:
        raise ValueError(f"softmax: needs at least one input, got {n}")
    _log2_exact(exp_size, "softmax exp table size")
    _log2_exact(exp_range, "softmax exp table range")
    _log2_exact(inv_size, "softmax inverse table size")
    exp_t = exp_t or FixedType(18, 1, signed=False, quant="RND")
    inv_t = inv_t or FixedType(18, 1, signed=False, quant="RND")
    exp_table = np.asarray(quantize(np.exp(-np.arange(exp_size) * (exp_range / exp_size)), exp_t),
                           dtype=np.int64)
    inv_table = np.asarray(quantize(1.0 / (1.0 + np.arange(inv_size) / inv_size), inv_t),
                           dtype=np.int64)
    one = 1 << exp_t.frac_bits
    if exp_t.frac_bits < 0 or exp_table[0] != one or np.any(exp_table < 0):
        raise ValueError(f"softmax: exp table type {exp_t} must hold 1.0 exactly and be >= 0")
    if inv_t.frac_bits < 0 or inv_table[0] != 1 << inv_t.frac_bits:
        raise ValueError(f"softmax: inverse table type {inv_t} must hold 1.0 exactly")
    return SoftmaxTables(in_t, n, exp_t, inv_t, exp_range, exp_size, inv_size, exp_table, inv_table)


def softmax_exp_index(d_raw, in_t: FixedType, exp_range: int, exp_size: int) -> np.ndarray:
    """min(floor(-d * Se / Re), Se-1) for d = x - max(x) <= 0, raw in in_t's scale."""
    shift = (_log2_exact(exp_size, "softmax exp table size")
             - _log2_exact(exp_range, "softmax exp table range"))
    return np.minimum(scaled_floor(-np.asarray(d_raw, dtype=np.int64), in_t.frac_bits, 0, shift),
                      exp_size - 1)


def softmax_inv_index(s_raw, tables: SoftmaxTables) -> tuple[np.ndarray, np.ndarray]:
    """(inverse-table index, k_s = floor(log2 s)) for the exact exp sum s (raw, exp_t's scale)."""
    s_raw = np.asarray(s_raw, dtype=np.int64)
    fs, si = tables.exp_t.frac_bits, _log2_exact(tables.inv_size, "softmax inverse table size")
    k = np.zeros(s_raw.shape, dtype=np.int64)
    for j in range(1, tables.kmax + 1):
        k += s_raw >= (1 << (fs + j))
    base = np.left_shift(np.int64(1), fs + k)
    amount = fs + k - si                               # per-element shift (may be negative)
    diff = s_raw - base
    idx = np.where(amount >= 0, diff >> np.maximum(amount, 0), diff << np.maximum(-amount, 0))
    return np.clip(idx, 0, tables.inv_size - 1), k
