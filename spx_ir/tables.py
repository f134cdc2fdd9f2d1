"""Lookup tables for non-linear functions (sigmoid, tanh, softmax).

Table contents are computed ONCE here, in Python, at compile time and emitted unchanged into every
target (NumPy reference, Vitis C++), so all targets agree bit for bit. The index rules below are
integer-only functions of a fixed-point value's raw integer; a target must implement them exactly as
written. Notation: a value of type `t` is `x = raw * 2**-f` with `f = t.frac_bits` (f may be
negative).
All table sizes and ranges are powers of two, so every division below is an exact arithmetic shift.

Table sizes (`table_size` of an op) are powers of two in [2, MAX_TABLE_SIZE]; table values are raws
of types at most INT64_WIDTH bits wide (they are stored as int64 / <stdint.h> integers).

Index types. Before an index is computed, the input is converted (ap_fixed assignment) into a narrow
index type `index_type(R, S)` = fixed<I + F, I, TRN, SAT> (signed, table over [-R, R):
I = log2(R) + 2, F = max(log2(S) - log2(2R), 0); unsigned, table over [0, R): I = log2(R) + 1,
F = max(log2(S) - log2(R), 0)). TRN keeps every bit the floor below depends on, SAT
moves values beyond the table's range onto its end bins, so the index equals the formula on the
exact input, and every later step is small-integer arithmetic whatever the input's width.

Sigmoid / tanh (hls4ml-like, one uniform table over a symmetric range [-R, R)):
    R = 8 (sigmoid) or 4 (tanh); size S (default 1024); v = x converted to index_type(R, S)
    idx      = clamp(floor((v + R) * S / (2R)), 0, S-1)
             = clamp(((raw + (R << f)) * S) >> (f + log2(2R)), 0, S-1)     for f >= 0
               clamp(((raw << -f) + R) * S >> log2(2R), 0, S-1)            for f < 0
    table[i] = quantize(fn(-R + (i + 1/2) * 2R / S), out_t)   (centre of bin i, out_t's modes),
               then made sign-preserving around c = fn(0) (1/2 for sigmoid, 0 for tanh): bins
               i < S/2 (all inputs < 0) hold at most the largest out_t value below c, bins
               i >= S/2 at least the smallest out_t value above c (when out_t has such values).
    Result raw = quantize(fn(0), out_t) if x == 0 exactly, else table[idx]. So sigmoid(x) > 1/2 for
    every x > 0 and < 1/2 for every x < 0: a decision `p > 1/2` equals `x > 0`, as in Keras.
    Error vs. the true function: at most max|fn'| * R/S (half a bin; 1/4 * 8/S for sigmoid, 4/S for
    tanh) plus one quantum of out_t, and outside [-R, R) additionally the tail 1 - fn(R - R/S)
    (sigmoid: < 3.4e-4 at S = 1024).

Softmax (all-integer, "stable" variant in the spirit of hls4ml), over a vector x[0..K-1] of in_t:
    1. m = max_k x[k];  d[k] = x[k] - m <= 0, computed exactly on raws (no type conversion).
    2. exp lookup:  u = -d >= 0, exact in ufixed<W, I> (in_t = fixed<W, I>), converted into the
       unsigned index_type(Re, Se) as v
           ie[k] = min(floor(v * Se / Re), Se-1)       (same shift rule as above, offset 0)
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
       bits), then ONE ap_fixed conversion into out_t (out_t's quant and overflow): raw y[k].
    6. Decision rule: with y_top = y of the maxima (d = 0), every k with d[k] < 0 and y[k] >= y_top
       gets y[k] = y_top - 1 (when y_top > out_t's minimum). So argmax(y) == argmax(x) with ties
       broken like numpy (the first maximum): maxima have equal y, every other element is lower.
    A `table_size` S on the op sets Se = Si = S (as hls4ml's table_size); default Se = 2048,
    Si = 1024.
    Resolution: with w = Re/Se, for K inputs,
        |p - softmax(x)| <= (e**w - 1)/4 + 1/Si + (K-1)*exp(-(Re - w)) + 2**-fe + 2**-fi + q_out
    (q_out = one quantum of out_t for TRN-like modes, half a quantum for RND-like modes, exp_t and
    inv_t with fe, fi fraction bits). Defaults: 0.00296 + q_out for K <= 10, 0.0031 + q_out for
    K <= 1024 (SoftmaxTables.resolution computes it).
"""
import math

import numpy as np

from spx_ir.fixed import INT64_WIDTH, FixedType, as_ints, convert, product_type, quantize

SIGMOID_RANGE = 8
TANH_RANGE = 4
DEFAULT_SIZE = 1024
MAX_TABLE_SIZE = 1 << 16
MAX_TABLE_WIDTH = INT64_WIDTH


def _log2_exact(n: int, what: str) -> int:
    if not isinstance(n, (int, np.integer)) or n < 1 or n & (n - 1):
        raise ValueError(f"tables: {what} must be a power of two, got {n!r}")
    return int(n).bit_length() - 1


def check_table(size: int, out_t: FixedType | None = None) -> None:
    """ValueError (one line) unless `size` is a valid table size and out_t a storable table type."""
    _log2_exact(size, "table_size")
    if not 2 <= size <= MAX_TABLE_SIZE:
        raise ValueError(f"tables: table_size must be in [2, {MAX_TABLE_SIZE}], got {size}")
    if out_t is not None and out_t.width > MAX_TABLE_WIDTH:
        raise ValueError(f"tables: table output type {out_t} is wider than {MAX_TABLE_WIDTH} bits")


def index_type(half_range: int, size: int, signed: bool = True) -> FixedType:
    """The narrow TRN/SAT type an input is converted to before its table index is computed: for a
    table of `size` bins over [-R, R) (signed) or [0, R) (unsigned), R = half_range."""
    span = 2 * half_range if signed else half_range
    shift = _log2_exact(size, "table size") - _log2_exact(span, "table range")
    int_bits = _log2_exact(half_range, "table range") + (2 if signed else 1)
    return FixedType(int_bits + max(shift, 0), int_bits, signed, "TRN", "SAT")


def scaled_floor(raw, frac_bits: int, offset: int, shift: int) -> np.ndarray:
    """floor((raw * 2**-frac_bits + offset) * 2**shift) computed exactly on integer raws."""
    raw = as_ints(raw, np.asarray(raw).dtype == object)
    if frac_bits >= 0:
        num, e = raw + (int(offset) << frac_bits), shift - frac_bits
    else:
        num, e = (raw << -frac_bits) + int(offset), shift
    return num << e if e >= 0 else num >> -e


def range_index(raw, in_t: FixedType, half_range: int, size: int) -> np.ndarray:
    """clamp(floor((x + R) * S / (2R)), 0, S-1) for x = raw of in_t, R = half_range, S = size."""
    shift = _log2_exact(size, "table size") - _log2_exact(2 * half_range, "table range")
    it = index_type(half_range, size)
    v = convert(as_ints(raw, np.asarray(raw).dtype == object), in_t, it)
    return np.clip(scaled_floor(v, it.frac_bits, half_range, shift), 0, size - 1)


def center_raw(fn, out_t: FixedType) -> int:
    """quantize(fn(0), out_t): the result for an input of exactly 0."""
    return int(quantize(fn(np.zeros(1)), out_t)[0])


def _range_table(fn, half_range: int, size: int, out_t: FixedType) -> np.ndarray:
    check_table(size, out_t)
    centre = -half_range + (np.arange(size, dtype=np.float64) + 0.5) * (2.0 * half_range / size)
    table = np.asarray(quantize(fn(centre), out_t), dtype=np.int64)
    c = float(fn(np.zeros(1))[0]) * 2.0 ** out_t.frac_bits         # fn(0) in raw units
    below, above = math.ceil(c) - 1, math.floor(c) + 1              # nearest raws below / above
    if below >= out_t.min_raw:
        table[: size // 2] = np.minimum(table[: size // 2], below)
    if above <= out_t.max_raw:
        table[size // 2:] = np.maximum(table[size // 2:], above)
    return table


def sigmoid_fn(v):
    return 1.0 / (1.0 + np.exp(-v))


def range_lookup(raw, in_t: FixedType, kind: str, out_t: FixedType, table) -> np.ndarray:
    """Sigmoid / tanh result raws of out_t for raws of in_t (the rule of the module docstring)."""
    half = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
    fn = sigmoid_fn if kind == "sigmoid" else np.tanh
    raw = as_ints(raw, np.asarray(raw).dtype == object)
    looked_up = np.asarray(table, dtype=np.int64)[range_index(raw, in_t, half, len(table)).astype(np.int64)]
    return np.where(raw == 0, center_raw(fn, out_t), looked_up).astype(np.int64)


def sigmoid_index(raw, in_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    return range_index(raw, in_t, SIGMOID_RANGE, size)


def sigmoid_table(in_t: FixedType, out_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Raw out_t values of sigmoid at the centre of each bin of [-8, 8), sign-preserving around
    1/2. in_t only fixes the index rule (sigmoid_index); the contents do not depend on it."""
    return _range_table(sigmoid_fn, SIGMOID_RANGE, size, out_t)


def tanh_index(raw, in_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    return range_index(raw, in_t, TANH_RANGE, size)


def tanh_table(in_t: FixedType, out_t: FixedType, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Raw out_t values of tanh at the centre of each bin of [-4, 4), sign-preserving around 0."""
    return _range_table(np.tanh, TANH_RANGE, size, out_t)


class SoftmaxTables:
    """Everything a target needs for softmax over K inputs of in_t (see the module docstring)."""

    def __init__(self, in_t, n, exp_t, inv_t, exp_range, exp_size, inv_size, exp_table, inv_table):
        self.in_t, self.n = in_t, n
        self.exp_t, self.inv_t = exp_t, inv_t
        self.exp_range, self.exp_size, self.inv_size = exp_range, exp_size, inv_size
        self.exp_table, self.inv_table = exp_table, inv_table
        self.kmax = n.bit_length() - 1                  # floor(log2 K)

    @property
    def prod_t(self) -> FixedType:
        """The type of e * inv * 2**(kmax - k_s) (step 5): exp_t * inv_t, exact, with kmax more
        fraction bits (every target converts it into the result type once)."""
        prod = product_type(self.exp_t, self.inv_t)
        return FixedType(prod.width + self.kmax, prod.int_bits, signed=False)

    def resolution(self, out_quantum: float = 0.0) -> float:
        """Bound on |softmax_table - softmax_float| (module docstring), plus out_quantum."""
        w = self.exp_range / self.exp_size
        return ((math.exp(w) - 1) / 4 + 1 / self.inv_size
                + (self.n - 1) * math.exp(-(self.exp_range - w))
                + 2.0 ** -self.exp_t.frac_bits + 2.0 ** -self.inv_t.frac_bits + out_quantum)


def softmax_tables(in_t: FixedType, n: int, exp_size: int = 2048, exp_range: int = 16,
                   inv_size: int = 1024, exp_t: FixedType | None = None,
                   inv_t: FixedType | None = None, table_size: int | None = None) -> SoftmaxTables:
    """The tables of softmax over n inputs of in_t; `table_size` (an op's) sets both sizes."""
    if n < 1:
        raise ValueError(f"softmax: needs at least one input, got {n}")
    if table_size is not None:
        check_table(table_size)
        exp_size = inv_size = table_size
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


def softmax_diff_type(in_t: FixedType) -> FixedType:
    """The type holding u = max(x) - x >= 0 exactly for x of in_t."""
    return FixedType(in_t.width, in_t.int_bits, signed=False)


def softmax_exp_index(u_raw, in_t: FixedType, exp_range: int, exp_size: int) -> np.ndarray:
    """min(floor(u * Se / Re), Se-1) for u = max(x) - x >= 0, raw in in_t's scale."""
    shift = (_log2_exact(exp_size, "softmax exp table size")
             - _log2_exact(exp_range, "softmax exp table range"))
    it = index_type(exp_range, exp_size, signed=False)
    v = convert(as_ints(u_raw, np.asarray(u_raw).dtype == object), softmax_diff_type(in_t), it)
    return np.minimum(scaled_floor(v, it.frac_bits, 0, shift), exp_size - 1).astype(np.int64)


def softmax_decide(y, u_raw, out_t: FixedType) -> np.ndarray:
    """Step 6 (decision rule) on output raws y [..., K] given u = max(x) - x [..., K]."""
    y = np.asarray(y, dtype=np.int64)
    top = np.max(np.where(u_raw == 0, y, np.iinfo(np.int64).min), axis=-1, keepdims=True)
    lower = (u_raw != 0) & (y >= top) & (top > out_t.min_raw)
    return np.where(lower, top - 1, y)


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
