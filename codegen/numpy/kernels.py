"""NumPy reference kernels: one function per spx op (DESIGN.md section 3), bit-exact ap_fixed.

Every array is int64: raw integers of its fixed-point type (value = raw * 2**-frac_bits), or hash
coordinates. Every function is vectorised over a leading batch dimension B and returns, besides its
result, `clipped[B]`: per event, the number of output values whose computation had a conversion that
overflow handling changed (the result conversion, and in a sequential accumulation any step of it).

Accumulation (sparse_conv2d, dense; the C++ kernels follow the same rule):
  * acc_t is None: the exact sum b + sum(x*w) (products exact, the sum exact), then ONE conversion
    into out_t.
  * explicit acc_t: like C++ `acc_t acc = b; for (term) acc += x * w; out_t y = acc;` with ap_fixed:
        acc = convert(b, b_t, acc_t)
        for each term in order: acc = convert(acc + x*w, exact, acc_t)     (x*w and the sum exact)
        y = convert(acc, acc_t, out_t)
    Term order: dense: input index ascending. sparse_conv2d: neighbour slot j ascending, then input
    channel c ascending; only non-empty neighbours inside the kernel window are terms.
    Fast path (same result, computed as one exact sum): when acc_t has at least as many fraction
    bits as the bias and the products (so no step ever quantizes) AND either acc_t's range holds
    every partial sum (the exact type of bias + n_terms products), or acc_t overflows by WRAP
    (modular arithmetic: wrapping each step equals wrapping the total). In the WRAP case the
    accumulator overflow counted in `clipped` is that of the exact total. Otherwise the terms are
    accumulated one at a time, vectorised over events and outputs.

Wide types (more than INT64_WIDTH = 62 bits, spx_ir.fixed): their raws are object arrays of Python
ints; an op whose exact sums or operands need them computes on object arrays (exact, slower), every
other op stays on int64.

Non-linear functions use the tables of spx_ir.tables (index rules documented there); the table
values are already of out_t, so table lookups never count as clipped.

Speed: the sparse ops work on flat lists (active pixels, the (slot, neighbour) pairs that are conv
terms, pool members) held as 1-D arrays per channel, where numpy is fastest, and convert through
`_convert`, which bypasses fixed.py's general path only where that provably changes nothing.
"""
import numpy as np

from spx_ir.fixed import (FixedType, accumulator_type, as_ints, average_type, convert_counting, divide_round,
                          is_wide, product_type, raw_dtype, sum_type)
from spx_ir.tables import (SoftmaxTables, range_lookup, sigmoid_table, softmax_decide,
                           softmax_exp_index, softmax_inv_index, softmax_tables, tanh_table)

SPARSE_ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh")
ACTIVATIONS = SPARSE_ACTIVATIONS + ("softmax",)


# ----------------------------------------------------------------------------------- helpers

def _check_ndim(op: str, name: str, arr, ndim: int, layout: str, keep_int=False) -> np.ndarray:
    """arr as int64 (keep_int: dtypes int64 holds are kept as they are), after checking its rank."""
    arr = np.asarray(arr)
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {arr.shape}")
    if arr.dtype == object or (keep_int and np.can_cast(arr.dtype, np.int64)):
        return arr
    return arr.astype(np.int64, copy=False)


def _per_event(mask: np.ndarray) -> np.ndarray:
    return mask.sum(axis=tuple(range(1, mask.ndim)), dtype=np.int64)


def _align(raw, t: FixedType, frac_bits: int, wide: bool) -> np.ndarray:
    """Raw of t rescaled exactly to `frac_bits` (>= t.frac_bits) fraction bits (Python ints if wide)."""
    return as_ints(raw, wide) << (frac_bits - t.frac_bits)


def _convert(raw, src: FixedType, dst: FixedType):
    """convert_counting(raw, src, dst), computed cheaply but identically (raws outside src's range
    take the general path, which reports them):
    * when it provably neither rounds nor overflows, it is a left shift: dst has at least src's
      fraction bits and every raw, shifted, lies in [dst.min_raw + signed, dst.max_raw], where no
      overflow mode changes a value;
    * otherwise only the non-zero raws are converted: 0 becomes 0 in every mode, never overflowing.
    """
    if is_wide(src) or is_wide(dst) or np.asarray(raw).dtype == object:
        return convert_counting(raw, src, dst)
    raw = np.asarray(raw, dtype=np.int64)
    lo, hi = (raw.min(), raw.max()) if raw.size else (0, 0)
    if lo < src.min_raw or hi > src.max_raw:
        return convert_counting(raw, src, dst)
    shift = dst.frac_bits - src.frac_bits
    if shift >= 0 and -((-dst.min_raw - dst.signed) >> shift) <= lo and hi <= dst.max_raw >> shift:
        return raw << shift, np.zeros(raw.shape, dtype=bool)
    out, ov = np.zeros(raw.shape, dtype=np.int64), np.zeros(raw.shape, dtype=bool)
    nonzero = np.flatnonzero(raw != 0)
    out.reshape(-1)[nonzero], ov.reshape(-1)[nonzero] = convert_counting(
        raw.reshape(-1)[nonzero], src, dst)
    return out, ov


def _holds(outer: FixedType, inner: FixedType) -> bool:
    """True if every value of inner is a value of outer (no quantization, no overflow)."""
    shift = outer.frac_bits - inner.frac_bits
    return (shift >= 0 and outer.min_raw <= inner.min_raw << shift
            and inner.max_raw << shift <= outer.max_raw)


def _accumulate(shape, exact_sum, terms, n_terms, prod_t, b, b_t, acc_t, out_t):
    """Bias plus products under the accumulation rule of the module docstring.

    exact_sum(wide): the exact sum of all products (raw in prod_t's scale), shape S = `shape`.
    terms(wide): yields (product raw [S], take mask [S] or None) in accumulation order.
    (wide: compute on Python ints.) Returns (raw of out_t [S], overflow mask [S])."""
    exact_t = sum_type(accumulator_type(prod_t, max(n_terms, 1)), b_t)
    fast = acc_t is None or (acc_t.frac_bits >= exact_t.frac_bits
                             and (acc_t.overflow == "WRAP" or _holds(acc_t, exact_t)))
    if fast:
        wide = is_wide(exact_t)
        total = (_align(exact_sum(wide), prod_t, exact_t.frac_bits, wide)
                 + _align(b, b_t, exact_t.frac_bits, wide))
        if acc_t is None:
            return _convert(total, exact_t, out_t)
        acc, ov = _convert(total, exact_t, acc_t)
    else:
        step_t = sum_type(acc_t, prod_t)
        wide = is_wide(step_t)
        acc, ov = (np.broadcast_to(a, shape) for a in convert_counting(b, b_t, acc_t))
        for term, take in terms(wide):
            s = _align(acc, acc_t, step_t.frac_bits, wide) + _align(term, prod_t, step_t.frac_bits, wide)
            new, o = convert_counting(s, step_t, acc_t)
            if take is not None:
                new, o = np.where(take, new, acc), take & o
            acc, ov = new, ov | o
    out, o = _convert(acc, acc_t, out_t)
    return out, ov | o


def _table_lookup(x, in_t, kind, out_t, table):
    build = sigmoid_table if kind == "sigmoid" else tanh_table
    table = build(in_t, out_t) if table is None else table
    return range_lookup(x, in_t, kind, out_t, table), np.zeros(x.shape, dtype=bool)


def _elementwise(op, x, in_t, kind, out_t, table):
    """Elementwise activation of raw x: (raw of out_t, overflow mask)."""
    if kind == "relu":
        return _convert(np.maximum(x, 0), in_t, out_t)
    if kind == "linear":
        return _convert(x, in_t, out_t)
    if kind in ("sigmoid", "tanh"):
        return _table_lookup(x, in_t, kind, out_t, table)
    valid = ACTIVATIONS if op == "activation" else SPARSE_ACTIVATIONS
    raise ValueError(f"{op}: unsupported activation {kind!r} (supported: {', '.join(valid)})")


def _softmax(x, in_t, out_t, tables):
    """Softmax over the last axis (algorithm and index rules: spx_ir.tables)."""
    k_in = x.shape[-1]
    tables = softmax_tables(in_t, k_in) if tables is None else tables
    if not isinstance(tables, SoftmaxTables) or tables.n != k_in or tables.in_t != in_t:
        raise ValueError(f"activation: softmax tables were built for another input "
                         f"(need n={k_in}, in_t={in_t})")
    u = x.max(axis=-1, keepdims=True) - x
    e = tables.exp_table[softmax_exp_index(u, in_t, tables.exp_range, tables.exp_size)]
    idx, k = softmax_inv_index(e.sum(axis=-1, keepdims=True), tables)
    p = (e * tables.inv_table[idx]) << (tables.kmax - k)          # e * inv * 2**-k, common scale
    y, ov = convert_counting(p, tables.prod_t, out_t)
    return softmax_decide(y, u, out_t), ov


def _window_pairs(h, wc, ne, kh_n: int, kw_n: int):
    """Every conv term, in no particular order, as flat pair lists: (slot b*N+i, neighbour b*N+j,
    kernel offset (dh+ph)*Kw + (dw+pw)) for non-empty i, j with j in i's 'same' window."""
    b_n, n = h.shape
    # Empty slots get rows no window reaches (non-empty rows are >= 0): -Kh as i, -2*Kh as j.
    rows_i, rows_j = np.where(ne, h, -kh_n), np.where(ne, h, -2 * kh_n) + (kh_n - 1) // 2
    # [N(i),N(j),B] offsets (events innermost: long vector loops), in int16 when that holds them
    span = 2 * int(max(np.abs(h).max(initial=0), np.abs(wc).max(initial=0))) + 3 * max(kh_n, kw_n)
    dt, udt = (np.int16, np.uint16) if span < 2**15 else (np.int64, np.uint64)
    rows_i, rows_j, cols = (np.ascontiguousarray(a.T, dtype=dt) for a in (rows_i, rows_j, wc))
    dh = rows_j[None, :, :] - rows_i[:, None, :]
    dw = (cols + (kw_n - 1) // 2)[None, :, :] - cols[:, None, :]
    # viewed unsigned, a negative offset is huge: one comparison checks both window bounds
    pair = np.flatnonzero((dh.view(udt) < kh_n) & (dw.view(udt) < kw_n))
    ij, ev = np.divmod(pair, b_n)
    i, j = np.divmod(ij, n)
    k = dh.reshape(-1)[pair].astype(np.int64) * kw_n + dw.reshape(-1)[pair]
    return ev * n + i, ev * n + j, k


def _scatter(shape, index, values) -> np.ndarray:
    """Zeros of `shape` [..., C] with row `index` (flat over the leading axes) set to values[:, k]
    for each row k: out.reshape(-1, C)[index] = values.T, by 1-D fancy assignment per channel
    (numpy's fast path; values is [C, n])."""
    wide = any(np.asarray(v).dtype == object for v in values)
    out = np.zeros(shape, dtype=object if wide else np.int64)
    flat, c_n = out.reshape(-1), shape[-1]
    for c, v in enumerate(values):
        flat[index * c_n + c] = v
    return out


def _rank_in_runs(keys) -> np.ndarray:
    """For sorted keys >= 0: each key's position within its run of equal keys."""
    starts = np.flatnonzero(np.diff(keys, prepend=-1))
    return np.arange(len(keys)) - np.repeat(starts, np.diff(starts, append=len(keys)))


def _coords(op, hash_):
    if hash_.shape[-1] != 2:
        raise ValueError(f"{op}: hash must be [B,N,2], got shape {hash_.shape}")
    return hash_[..., 0] - 1, hash_[..., 1] - 1, (hash_[..., 0] > 0) & (hash_[..., 1] > 0)


# ----------------------------------------------------------------------------------- ops

def input_reduce(x, in_t, threshold_raw: int, n_max: int, feat_t, activity: str = "any"):
    """Dense x[B,H,W,C] -> (feat[B,N,C], hash[B,N,2], dropped[B], clipped[B]), N = n_max.
    x may be of any integer dtype holding in_t's raws (only the active pixels are widened).
    activity: 'any' (a pixel is active if any channel > threshold) or 'channel0' (channel 0 only)."""
    x = _check_ndim("input_reduce", "x", x, 4, "[B,H,W,C]", keep_int=True)
    b_n, height, width, c_n = x.shape
    pixels = x.reshape(b_n * height * width, c_n)
    above = pixels > threshold_raw
    active = np.flatnonzero(above[:, 0] if c_n == 1 or activity == "channel0" else above.any(axis=-1))
    ev = active // (height * width)
    n_active = np.bincount(ev, minlength=b_n)
    rank = _rank_in_runs(ev)                             # raster order within the event
    kept = rank < n_max
    ev, active, slot = ev[kept], active[kept], ev[kept] * n_max + rank[kept]   # slot: b*N + k
    vals, ov = _convert(np.take(pixels, active, axis=0), in_t, feat_t)         # [kept, C]
    pix = active - ev * (height * width)
    feat = _scatter((b_n, n_max, c_n), slot, vals.T)
    hash_ = _scatter((b_n, n_max, 2), slot, (pix // width + 1, pix % width + 1))
    clipped = _per_event(_scatter(feat.shape, slot, ov.T))
    return feat, hash_, np.maximum(n_active - n_max, 0), clipped


def sparse_conv2d(feat, hash_, in_t, w, w_t, b, b_t, acc_t, out_t, bias_mode: str = "active"):
    """'same' stride-1 sparse convolution on the active slots -> (feat_out[B,N,Co], clipped[B]).
    bias_mode 'active': the bias is added at every active slot; 'nonzero' (exact accumulation only):
    only where the sum of products is non-zero (the accumulator must hold the exact sum)."""
    feat = _check_ndim("sparse_conv2d", "feat", feat, 3, "[B,N,Ci]")
    hash_ = _check_ndim("sparse_conv2d", "hash", hash_, 3, "[B,N,2]")
    w = _check_ndim("sparse_conv2d", "kernel", w, 4, "[Kh,Kw,Ci,Co]")
    b = _check_ndim("sparse_conv2d", "bias", b, 1, "[Co]")
    kh_n, kw_n, ci_n, co_n = w.shape
    if feat.shape[2] != ci_n or b.shape[0] != co_n:
        raise ValueError(f"sparse_conv2d: feat {feat.shape} / bias {b.shape} do not match "
                         f"kernel {w.shape}")
    h, wc, ne = _coords("sparse_conv2d", hash_)
    slot, nb, k = _window_pairs(h, wc, ne, kh_n, kw_n)
    b_n, n_slots = feat.shape[:2]
    nb_feat = [np.take(feat[:, :, c], nb) for c in range(ci_n)]               # [Ci][P]
    w_cols = w.reshape(kh_n * kw_n, ci_n, co_n)

    def pair_products(c, o, wide=False):
        return as_ints(nb_feat[c], wide) * as_ints(np.take(w_cols[:, c, o], k), wide)  # [P]

    def exact_sum(wide):
        total = np.zeros((co_n, b_n * n_slots), dtype=object if wide else np.int64)
        for o in range(co_n):
            np.add.at(total[o], slot, sum(pair_products(c, o, wide) for c in range(ci_n)))
        return total.T.reshape(b_n, n_slots, co_n)

    def terms(wide):
        # the r-th term of every slot (neighbours ascending), then input channels ascending
        order = np.argsort(slot * n_slots + nb % n_slots)
        rank = np.empty_like(order)
        rank[order] = _rank_in_runs(slot[order])
        for r in range(int(rank.max(initial=-1)) + 1):
            sel = rank == r
            take = np.zeros(b_n * n_slots, dtype=bool)
            take[slot[sel]] = True
            for c in range(ci_n):
                term = np.zeros((b_n * n_slots, co_n), dtype=object if wide else np.int64)
                for o in range(co_n):
                    term[slot[sel], o] = pair_products(c, o, wide)[sel]
                yield term.reshape(b_n, n_slots, co_n), take.reshape(b_n, n_slots, 1)

    n_terms = min(n_slots, kh_n * kw_n) * ci_n
    if bias_mode == "nonzero":
        exact_t = sum_type(accumulator_type(product_type(in_t, w_t), max(n_terms, 1)), b_t)
        if acc_t is not None and not _holds(acc_t, exact_t):
            raise ValueError(f"sparse_conv2d: bias_mode 'nonzero' needs exact accumulation, {acc_t} does not "
                             f"hold {exact_t}")
        products = exact_sum(is_wide(exact_t))
        b = np.where(products != 0, b, 0)
        exact_sum = lambda wide: as_ints(products, wide)  # noqa: E731
    out, ov = _accumulate(feat.shape[:2] + (co_n,), exact_sum, terms, n_terms,
                          product_type(in_t, w_t), b, b_t, acc_t, out_t)
    keep = ne[:, :, None]
    return np.where(keep, out, 0), _per_event(ov & keep)


def sparse_activation(feat, hash_, in_t, kind, out_t, table=None):
    """Elementwise activation on non-empty slots -> (feat_out, clipped); empty slots stay 0."""
    feat = _check_ndim("sparse_activation", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_activation", "hash", hash_, 3, "[B,N,2]")
    _, _, ne = _coords("sparse_activation", hash_)
    y, ov = _elementwise("sparse_activation", feat, in_t, kind, out_t, table)
    keep = ne[:, :, None]
    return np.where(keep, y, 0), _per_event(ov & keep)


def _pool_groups(values, group, n_groups: int, in_t, p: int, mode: str, out_t, inactive="skip"):
    """avg|max of the member values [C,M] of each group (`group` [M]: its index) -> (raw of out_t,
    overflow mask), [C,n_groups]. avg: the exact sum / P^2, rounded once. max with inactive='zero':
    a window with fewer than P^2 members also holds a 0 (its inactive pixels)."""
    if mode == "max":
        best = np.full((len(values), n_groups), in_t.min_raw, dtype=raw_dtype(in_t))
        for c, v in enumerate(values):
            np.maximum.at(best[c], group, v)
        if inactive == "zero":
            partial = np.bincount(group, minlength=n_groups) < p * p
            best = np.where(partial, np.maximum(best, 0), best)
        return _convert(best, in_t, out_t)
    shift = out_t.frac_bits - in_t.frac_bits
    wide_t = average_type(in_t, p, out_t)
    big = is_wide(wide_t) or (shift < 0 and -shift + 2 * p.bit_length() > 62)
    total = np.zeros((len(values), n_groups), dtype=object if big else np.int64)
    for c, v in enumerate(values):
        np.add.at(total[c], group, as_ints(v, big))
    num, den = (total << shift, p * p) if shift >= 0 else (total, (p * p) << -shift)
    return _convert(divide_round(num, den, out_t.quant), wide_t, out_t)


def sparse_pool2d(feat, hash_, in_t, size: int, mode: str, height: int, width: int, out_t,
                  inactive: str = "skip"):
    """'valid' P x P pooling -> (feat_out[B,N,C], hash_out[B,N,2], clipped[B]); the lowest slot of
    each pooled pixel carries the result, the other member slots become empty. Max pooling with
    inactive='zero' counts the window's inactive pixels as 0 (max over the masked dense window)."""
    feat = _check_ndim("sparse_pool2d", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_pool2d", "hash", hash_, 3, "[B,N,2]")
    if mode not in ("avg", "max"):
        raise ValueError(f"sparse_pool2d: unsupported mode {mode!r} (supported: avg, max)")
    p = int(size)
    b_n, n_slots, c_n = feat.shape
    h, wc, ne = _coords("sparse_pool2d", hash_)
    ph, pw = (h // p).reshape(-1), (wc // p).reshape(-1)
    member = np.flatnonzero(ne.reshape(-1) & (ph < height // p) & (pw < width // p))  # b*N + i
    pixel = (member // n_slots * (height // p) + ph[member]) * (width // p) + pw[member]
    order = np.argsort(pixel, kind="stable")            # by (event, pooled pixel), then slot
    member, pixel = member[order], pixel[order]
    first = np.diff(pixel, prepend=-1) != 0             # the lowest slot of each pooled pixel
    leader = member[first]
    channels = feat.reshape(-1, c_n).T                  # [C, B*N]
    out, ov = _pool_groups(np.take(channels, member, axis=1), np.cumsum(first) - 1, len(leader),
                           in_t, p, mode, out_t, inactive)
    return (_scatter(feat.shape, leader, out),
            _scatter(hash_.shape, leader, (ph[leader] + 1, pw[leader] + 1)),
            _per_event(_scatter(feat.shape, leader, ov)))


def sparse_flatten(feat, hash_, height: int, width: int):
    """Scatter the active slots into the flattened dense tensor -> flat[B, height*width*C]."""
    feat = _check_ndim("sparse_flatten", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_flatten", "hash", hash_, 3, "[B,N,2]")
    h, wc, ne = _coords("sparse_flatten", hash_)
    if np.any(ne & ((h >= height) | (wc >= width))):
        raise ValueError(f"sparse_flatten: a hash coordinate lies outside the {height}x{width} "
                         "image")
    b_n, n_slots, c_n = feat.shape
    slot = np.flatnonzero(ne)                                             # b*N + i
    pixel = (slot // n_slots * height + h.reshape(-1)[slot]) * width + wc.reshape(-1)[slot]
    values = np.take(feat.reshape(-1, c_n), slot, axis=0).T
    return _scatter((b_n * height * width, c_n), pixel, values).reshape(b_n, height * width * c_n)


def dense(x, in_t, w, w_t, b, b_t, acc_t, out_t):
    """y = x @ w + b -> (y[B,O], clipped[B])."""
    x = _check_ndim("dense", "x", x, 2, "[B,I]")
    w = _check_ndim("dense", "kernel", w, 2, "[I,O]")
    b = _check_ndim("dense", "bias", b, 1, "[O]")
    if x.shape[1] != w.shape[0] or b.shape[0] != w.shape[1]:
        raise ValueError(f"dense: input {x.shape} / bias {b.shape} do not match kernel {w.shape}")

    def terms(wide):
        for i in range(w.shape[0]):
            yield as_ints(x[:, i, None], wide) * as_ints(w[i], wide), None

    def exact_sum(wide):
        return as_ints(x, wide) @ as_ints(w, wide)

    out, ov = _accumulate((x.shape[0], w.shape[1]), exact_sum, terms, w.shape[0],
                          product_type(in_t, w_t), b, b_t, acc_t, out_t)
    return out, _per_event(ov)


def activation(x, in_t, kind, out_t, table=None):
    """Elementwise activation (softmax: over the last axis) of x[B,...] -> (y, clipped[B])."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"activation: x must be [B,...] with at least 2 dimensions, "
                         f"got shape {x.shape}")
    x = x if x.dtype == object else x.astype(np.int64, copy=False)
    if kind == "softmax":
        y, ov = _softmax(x, in_t, out_t, table)
    else:
        y, ov = _elementwise("activation", x, in_t, kind, out_t, table)
    return y, _per_event(ov)


def _quantize_kif(raw, in_t, k, i, f, quant: str, overflow: str, out_t):
    """Each raw of in_t quantized by its own (k, i, f) (HGQ2 semantics, see spx.quantize): rounded to
    2^-f by `quant`, then WRAP/SAT/SAT_SYM into [k ? -2^i : 0, 2^i - 2^-f]; 0 where k+i+f = 0.
    -> (raw of out_t, overflow mask). Integer arithmetic only."""
    raw, k, i, f = (np.asarray(a, dtype=np.int64) for a in np.broadcast_arrays(raw, k, i, f))
    shift = in_t.frac_bits - f                                   # > 0: bits rounded away
    down = np.clip(shift, 1, 62)
    floor = np.where(shift > 0, raw >> down, raw << np.clip(-shift, 0, 62))
    rem = np.where(shift > 0, raw - (floor << down), 0)
    half = np.int64(1) << (down - 1)
    inexact, tie, above, negative = rem != 0, (rem == half) & (shift > 0), rem > half, raw < 0
    up = {"TRN": np.zeros_like(inexact), "TRN_ZERO": inexact & negative, "RND": above | tie,
          "RND_ZERO": above | (tie & negative), "RND_INF": above | (tie & ~negative),
          "RND_MIN_INF": above, "RND_CONV": above | (tie & ((floor & 1) == 1))}[quant]
    q = floor + up                                               # integer of 2^-f units
    mag = np.int64(1) << np.clip(i + f, 0, 62)                  # 2^(i+f): 2^i in those units
    hi, lo = mag - 1, np.where(k == 1, -mag, 0)
    if overflow == "WRAP":
        span = mag << k
        y = (q - lo) % span + lo
    else:
        lo = np.where(k == 1, -hi, 0) if overflow == "SAT_SYM" else lo
        y = np.clip(q, lo, hi)
    zero = k + i + f == 0
    y = np.where(zero, 0, y)
    return y << (out_t.frac_bits - f), (y != q) & ~zero


def quantize_elements(x, in_t, kif, quant: str, overflow: str, out_t):
    """spx.quantize: x[B,...] quantized per element by kif[..., (k, i, f)] -> (y, clipped[B])."""
    x = np.asarray(x, dtype=np.int64)
    kif = np.asarray(kif, dtype=np.int64)
    if x.shape[1:] != kif.shape[:-1]:
        raise ValueError(f"quantize: input {x.shape} does not match the kif table {kif.shape}")
    y, ov = _quantize_kif(x, in_t, kif[..., 0], kif[..., 1], kif[..., 2], quant, overflow, out_t)
    return y, _per_event(ov)


def sparse_quantize(feat, hash_, in_t, kif, quant: str, overflow: str, out_t):
    """spx.sparse_quantize: slot s, channel c quantized by kif[h_s-1, w_s-1, c] -> (feat_out, clipped);
    empty slots stay 0."""
    feat = _check_ndim("sparse_quantize", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_quantize", "hash", hash_, 3, "[B,N,2]")
    kif = np.asarray(kif, dtype=np.int64)
    h, wc, ne = _coords("sparse_quantize", hash_)
    if np.any(ne & ((h >= kif.shape[0]) | (wc >= kif.shape[1]))):
        raise ValueError(f"sparse_quantize: a hash coordinate lies outside the {kif.shape[0]}x{kif.shape[1]} table")
    entry = kif[np.where(ne, h, 0), np.where(ne, wc, 0)]           # [B,N,C,3]
    y, ov = _quantize_kif(feat, in_t, entry[..., 0], entry[..., 1], entry[..., 2], quant, overflow, out_t)
    keep = ne[:, :, None]
    return np.where(keep, y, 0), _per_event(ov & keep)
