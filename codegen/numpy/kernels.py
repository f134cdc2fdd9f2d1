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

Non-linear functions use the tables of spx_ir.tables (index rules documented there); the table
values are already of out_t, so table lookups never count as clipped.
"""
import numpy as np

from spx_ir.fixed import (FixedType, accumulator_type, convert_counting, divide_round,
                          product_type, sum_type)
from spx_ir.tables import (SoftmaxTables, sigmoid_index, sigmoid_table, softmax_exp_index,
                           softmax_inv_index, softmax_tables, tanh_index, tanh_table)

SPARSE_ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh")
ACTIVATIONS = SPARSE_ACTIVATIONS + ("softmax",)


# ----------------------------------------------------------------------------------- helpers

def _check_ndim(op: str, name: str, arr, ndim: int, layout: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _per_event(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(mask.shape[0], -1).sum(axis=1).astype(np.int64)


def _align(raw, t: FixedType, frac_bits: int) -> np.ndarray:
    """Raw of t rescaled exactly to `frac_bits` (>= t.frac_bits) fraction bits."""
    return np.asarray(raw, dtype=np.int64) << (frac_bits - t.frac_bits)


def _holds(outer: FixedType, inner: FixedType) -> bool:
    """True if every value of inner is a value of outer (no quantization, no overflow)."""
    shift = outer.frac_bits - inner.frac_bits
    return (shift >= 0 and outer.min_raw <= inner.min_raw << shift
            and inner.max_raw << shift <= outer.max_raw)


def _accumulate(shape, exact_sum, terms, n_terms, prod_t, b, b_t, acc_t, out_t):
    """Bias plus products under the accumulation rule of the module docstring.

    exact_sum(): the exact sum of all products (raw in prod_t's scale), shape S = `shape`.
    terms(): yields (product raw [S], take mask [S] or None) in accumulation order.
    Returns (raw of out_t [S], overflow mask [S])."""
    exact_t = sum_type(accumulator_type(prod_t, max(n_terms, 1)), b_t)
    fast = acc_t is None or (acc_t.frac_bits >= exact_t.frac_bits
                             and (acc_t.overflow == "WRAP" or _holds(acc_t, exact_t)))
    if fast:
        total = _align(exact_sum(), prod_t, exact_t.frac_bits) + _align(b, b_t, exact_t.frac_bits)
        if acc_t is None:
            return convert_counting(total, exact_t, out_t)
        acc, ov = convert_counting(total, exact_t, acc_t)
    else:
        step_t = sum_type(acc_t, prod_t)
        acc, ov = (np.broadcast_to(a, shape) for a in convert_counting(b, b_t, acc_t))
        for term, take in terms():
            s = _align(acc, acc_t, step_t.frac_bits) + _align(term, prod_t, step_t.frac_bits)
            new, o = convert_counting(s, step_t, acc_t)
            if take is not None:
                new, o = np.where(take, new, acc), take & o
            acc, ov = new, ov | o
    out, o = convert_counting(acc, acc_t, out_t)
    return out, ov | o


def _table_lookup(x, in_t, kind, out_t, table):
    index, build = (sigmoid_index, sigmoid_table) if kind == "sigmoid" else (tanh_index, tanh_table)
    table = build(in_t, out_t) if table is None else np.asarray(table, dtype=np.int64)
    return table[index(x, in_t, len(table))], np.zeros(x.shape, dtype=bool)


def _elementwise(op, x, in_t, kind, out_t, table):
    """Elementwise activation of raw x: (raw of out_t, overflow mask)."""
    if kind == "relu":
        return convert_counting(np.maximum(x, 0), in_t, out_t)
    if kind == "linear":
        return convert_counting(x, in_t, out_t)
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
    d = x - x.max(axis=-1, keepdims=True)
    e = tables.exp_table[softmax_exp_index(d, in_t, tables.exp_range, tables.exp_size)]
    idx, k = softmax_inv_index(e.sum(axis=-1, keepdims=True), tables)
    p = (e * tables.inv_table[idx]) << (tables.kmax - k)          # e * inv * 2**-k, common scale
    prod_t = product_type(tables.exp_t, tables.inv_t)
    p_t = FixedType(prod_t.width + tables.kmax, prod_t.int_bits, signed=False)
    return convert_counting(p, p_t, out_t)


def _coords(op, hash_):
    if hash_.shape[-1] != 2:
        raise ValueError(f"{op}: hash must be [B,N,2], got shape {hash_.shape}")
    return hash_[..., 0] - 1, hash_[..., 1] - 1, (hash_[..., 0] > 0) & (hash_[..., 1] > 0)


# ----------------------------------------------------------------------------------- ops

def input_reduce(x, in_t, threshold_raw: int, n_max: int, feat_t):
    """Dense x[B,H,W,C] -> (feat[B,N,C], hash[B,N,2], dropped[B], clipped[B]), N = n_max."""
    x = _check_ndim("input_reduce", "x", x, 4, "[B,H,W,C]")
    b_n, height, width, c_n = x.shape
    pixels = x.reshape(b_n, height * width, c_n)
    active = (pixels > threshold_raw).any(axis=-1)
    rank = np.cumsum(active, axis=1) - 1                 # raster-order rank of each active pixel
    ev, pix = np.nonzero(active & (rank < n_max))
    slot = rank[ev, pix]
    feat = np.zeros((b_n, n_max, c_n), dtype=np.int64)
    hash_ = np.zeros((b_n, n_max, 2), dtype=np.int64)
    vals, ov = convert_counting(pixels[ev, pix], in_t, feat_t)
    feat[ev, slot] = vals
    hash_[ev, slot, 0] = pix // width + 1
    hash_[ev, slot, 1] = pix % width + 1
    clipped = np.bincount(ev, weights=ov.sum(axis=-1), minlength=b_n).astype(np.int64)
    dropped = np.maximum(active.sum(axis=1) - n_max, 0).astype(np.int64)
    return feat, hash_, dropped, clipped


def sparse_conv2d(feat, hash_, in_t, w, w_t, b, b_t, acc_t, out_t):
    """'same' stride-1 sparse convolution on the active slots -> (feat_out[B,N,Co], clipped[B])."""
    feat = _check_ndim("sparse_conv2d", "feat", feat, 3, "[B,N,Ci]")
    hash_ = _check_ndim("sparse_conv2d", "hash", hash_, 3, "[B,N,2]")
    w = _check_ndim("sparse_conv2d", "kernel", w, 4, "[Kh,Kw,Ci,Co]")
    b = _check_ndim("sparse_conv2d", "bias", b, 1, "[Co]")
    kh_n, kw_n, ci_n, co_n = w.shape
    if feat.shape[2] != ci_n or b.shape[0] != co_n:
        raise ValueError(f"sparse_conv2d: feat {feat.shape} / bias {b.shape} do not match "
                         f"kernel {w.shape}")
    h, wc, ne = _coords("sparse_conv2d", hash_)
    dh = h[:, None, :] - h[:, :, None] + (kh_n - 1) // 2    # kernel row of neighbour j for slot i
    dw = wc[:, None, :] - wc[:, :, None] + (kw_n - 1) // 2
    valid = (ne[:, :, None] & ne[:, None, :]
             & (dh >= 0) & (dh < kh_n) & (dw >= 0) & (dw < kw_n))   # [B,N(i),N(j)]
    kidx = np.where(valid, dh * kw_n + dw, 0)
    w_flat = w.reshape(kh_n * kw_n, ci_n, co_n)
    n_slots = feat.shape[1]

    def exact_sum():
        total = np.zeros(feat.shape[:2] + (co_n,), dtype=np.int64)
        for k in range(kh_n * kw_n):                      # each neighbour has one kernel offset
            gathered = (valid & (kidx == k)).astype(np.int64) @ feat          # [B,N,Ci]
            total += gathered @ w_flat[k]
        return total

    def terms():
        # the r-th valid neighbour j of each slot i, j ascending (at most Kh*Kw of them)
        n_nb = int(valid.sum(axis=-1).max(initial=0))
        nb = np.argsort(~valid, axis=-1, kind="stable")[:, :, :n_nb]          # [B,N,R]
        nb_k = np.take_along_axis(kidx, nb, axis=-1)
        nb_ok = np.take_along_axis(valid, nb, axis=-1)
        ev = np.arange(feat.shape[0])[:, None]
        for r in range(n_nb):
            take = nb_ok[:, :, r, None]
            for c in range(ci_n):
                yield feat[ev, nb[:, :, r], c][..., None] * w_flat[nb_k[:, :, r], c], take

    n_terms = min(n_slots, kh_n * kw_n) * ci_n
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


def sparse_pool2d(feat, hash_, in_t, size: int, mode: str, height: int, width: int, out_t):
    """'valid' P x P pooling -> (feat_out[B,N,C], hash_out[B,N,2], clipped[B]); the lowest slot of
    each pooled pixel carries the result, the other member slots become empty."""
    feat = _check_ndim("sparse_pool2d", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_pool2d", "hash", hash_, 3, "[B,N,2]")
    if mode not in ("avg", "max"):
        raise ValueError(f"sparse_pool2d: unsupported mode {mode!r} (supported: avg, max)")
    p = int(size)
    h, wc, ne = _coords("sparse_pool2d", hash_)
    ph, pw = h // p, wc // p
    valid = ne & (ph < height // p) & (pw < width // p)
    key = np.where(valid, ph * (width // p) + pw, -1)
    same = valid[:, :, None] & valid[:, None, :] & (key[:, :, None] == key[:, None, :])
    earlier = np.tril(np.ones(same.shape[1:], dtype=bool), k=-1)      # j < i
    leader = valid & ~(same & earlier).any(axis=-1)
    if mode == "avg":
        total = same.astype(np.int64) @ feat                           # exact member sum
        shift = out_t.frac_bits - in_t.frac_bits
        num, den = (total << shift, p * p) if shift >= 0 else (total, (p * p) << -shift)
        wide_w = accumulator_type(in_t, p * p).width + max(shift, 0) + 1
        wide_t = FixedType(wide_w, wide_w - out_t.frac_bits, signed=True)
        out, ov = convert_counting(divide_round(num, den, out_t.quant), wide_t, out_t)
    else:
        best = np.full(feat.shape, in_t.min_raw, dtype=np.int64)
        offset = (h % p) * p + wc % p                                  # position inside window
        for k in range(p * p):                                         # <= 1 member per offset
            member = same & (offset[:, None, :] == k)
            best = np.where(member.any(axis=-1)[..., None],
                            np.maximum(best, member.astype(np.int64) @ feat), best)
        out, ov = convert_counting(best, in_t, out_t)
    keep = leader[..., None]
    hash_out = np.where(keep, np.stack([ph + 1, pw + 1], axis=-1), 0)
    return np.where(keep, out, 0), hash_out, _per_event(ov & keep)


def sparse_flatten(feat, hash_, height: int, width: int):
    """Scatter the active slots into the flattened dense tensor -> flat[B, height*width*C]."""
    feat = _check_ndim("sparse_flatten", "feat", feat, 3, "[B,N,C]")
    hash_ = _check_ndim("sparse_flatten", "hash", hash_, 3, "[B,N,2]")
    h, wc, ne = _coords("sparse_flatten", hash_)
    if np.any(ne & ((h >= height) | (wc >= width))):
        raise ValueError(f"sparse_flatten: a hash coordinate lies outside the {height}x{width} "
                         "image")
    b_n, _, c_n = feat.shape
    flat = np.zeros((b_n, height * width, c_n), dtype=np.int64)
    ev, slot = np.nonzero(ne)
    flat[ev, h[ev, slot] * width + wc[ev, slot]] = feat[ev, slot]
    return flat.reshape(b_n, height * width * c_n)


def dense(x, in_t, w, w_t, b, b_t, acc_t, out_t):
    """y = x @ w + b -> (y[B,O], clipped[B])."""
    x = _check_ndim("dense", "x", x, 2, "[B,I]")
    w = _check_ndim("dense", "kernel", w, 2, "[I,O]")
    b = _check_ndim("dense", "bias", b, 1, "[O]")
    if x.shape[1] != w.shape[0] or b.shape[0] != w.shape[1]:
        raise ValueError(f"dense: input {x.shape} / bias {b.shape} do not match kernel {w.shape}")

    def terms():
        for i in range(w.shape[0]):
            yield x[:, i, None] * w[i], None

    out, ov = _accumulate((x.shape[0], w.shape[1]), lambda: x @ w, terms, w.shape[0],
                          product_type(in_t, w_t), b, b_t, acc_t, out_t)
    return out, _per_event(ov)


def activation(x, in_t, kind, out_t, table=None):
    """Elementwise activation (softmax: over the last axis) of x[B,...] -> (y, clipped[B])."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"activation: x must be [B,...] with at least 2 dimensions, "
                         f"got shape {x.shape}")
    x = x.astype(np.int64, copy=False)
    if kind == "softmax":
        y, ov = _softmax(x, in_t, out_t, table)
    else:
        y, ov = _elementwise("activation", x, in_t, kind, out_t, table)
    return y, _per_event(ov)
