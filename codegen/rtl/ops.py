"""One XLS function per spx op (DESIGN.md section 3), each with exactly the NumPy reference's semantics
(codegen/numpy/kernels.py is the oracle; tests/test_rtl_*.py compare bit for bit).

Every function takes and returns flat bit vectors: element k of width w at bits [k*w, (k+1)*w), tensors
row-major (feat [N][C], hash [N][2] = (row, col) 1-based, 0 = empty). Weights are literals. All forms
are fully parallel (one event per call: II = 1 once pipelined); the structure of each:

input_reduce   rank select: activity per pixel, its rank (active pixels before it: prefix counts
               saturating at N, per row then across rows, log depth); slot k = OR of the data of
               the pixel of rank k (one-hot), its hash bits = ORs of select signals (coordinates
               are constants). input_reduce_merge keeps the former merge tree for the bench.
sparse_conv2d  per slot pair (i, j): the kernel offset from the hashes selects the weight, one multiply
               per (i, j, c, o) (N*N*Ci*Co), adder tree per output (or the sequential accumulation of
               an explicit accumulator type where rounding/saturation makes the order matter).
sparse_pool2d  pooled coordinates by ROM, N*N equality matrix, leader = first member; avg: adder
               tree + one division by P*P (exact multiply-shift) rounded once; max: maximum tree.
sparse_flatten per output pixel a priority select over the slots whose hash matches (last one wins).
dense          constant multipliers (zero weights skipped) + adder tree (or sequential accumulation).
activations    relu/linear: compare + conversion; sigmoid/tanh/softmax: constant ROMs with the
               contents of spx_ir.tables and its index rules.
quantize       per element its constant (k, i, f): round by shift, then wrap (low bits) or clamp.
sparse_quantize per channel one quantizer per distinct (k, i, f) of its table and slot, selected by a
               2-D ROM indexed by the slot's hash (row, col).
Variants (DESIGN.md section 2): input_reduce activity=channel0 compares channel 0 only;
sparse_conv2d bias_mode=nonzero selects the bias by (exact sum != 0); sparse_pool2d inactive=zero
counts each window's members and takes max(result, 0) below P^2.
"""

from __future__ import annotations

import math

import numpy as np

from codegen.rtl import arith
from codegen.rtl.arith import Int, const, from_raw
from codegen.rtl.xlsir import Bits, Fn
from spx_ir.fixed import FixedType, accumulator_type, product_type, sum_type
from spx_ir.tables import (DEFAULT_SIZE, SIGMOID_RANGE, TANH_RANGE, center_raw, sigmoid_fn, sigmoid_table,
                           softmax_tables, tanh_table)


def _holds(outer: FixedType, inner: FixedType) -> bool:
    shift = outer.frac_bits - inner.frac_bits
    return (shift >= 0 and outer.min_raw <= inner.min_raw << shift
            and inner.max_raw << shift <= outer.max_raw)


def accumulate(fn: Fn, terms, n_terms: int, prod_t, bias: int, b_t, acc_t, out_t,
               bias_nonzero: bool = False) -> Bits:
    """bias + sum of terms -> raw of out_t, by the accumulation rule of codegen/numpy/kernels.py.
    terms: [(product Int in prod_t's scale, take Bits or None)] in accumulation order; a term whose
    take is 0 is skipped. bias_nonzero (sparse_conv2d bias_mode 'nonzero', exact accumulation only):
    the bias is added only where the exact sum of the terms is non-zero."""
    exact_t = sum_type(accumulator_type(prod_t, max(n_terms, 1)), b_t)
    fast = acc_t is None or (acc_t.frac_bits >= exact_t.frac_bits
                             and (acc_t.overflow == "WRAP" or _holds(acc_t, exact_t)))
    assert fast or not bias_nonzero, "bias_mode 'nonzero' needs exact accumulation (the verifier checks it)"
    if fast:
        f = exact_t.frac_bits
        parts = [arith.shl(fn, p if take is None else arith.select(fn, take, p, const(fn, 0)),
                           f - prod_t.frac_bits) for p, take in terms]
        b = const(fn, bias << (f - b_t.frac_bits))
        if bias_nonzero:
            s = arith.sum_tree(fn, parts)
            total = s if bias == 0 else arith.add(fn, s, arith.select(
                fn, arith.compare(fn, "ne", s, const(fn, 0)), b, const(fn, 0)))
        else:
            total = arith.sum_tree(fn, parts + [b])
        if acc_t is None:
            return arith.convert(fn, total, exact_t, out_t)
        acc = from_raw(fn, arith.convert(fn, total, exact_t, acc_t), acc_t)
    else:
        step_t = sum_type(acc_t, prod_t)
        acc = from_raw(fn, arith.convert(fn, const(fn, bias), b_t, acc_t), acc_t)
        for p, take in terms:
            s = arith.add(fn, arith.shl(fn, acc, step_t.frac_bits - acc_t.frac_bits),
                          arith.shl(fn, p, step_t.frac_bits - prod_t.frac_bits))
            new = from_raw(fn, arith.convert(fn, s, step_t, acc_t), acc_t)
            acc = new if take is None else arith.select(fn, take, new, acc)
    return arith.convert(fn, acc, acc_t, out_t)


def _zero(fn: Fn, width: int) -> Bits:
    return fn.lit(0, width)


def _nonempty(fn: Fn, row: Bits, col: Bits) -> Bits:
    z = _zero(fn, row.width)
    return fn.binary("and", fn.cmp("ne", row, z), fn.cmp("ne", col, z))


def _select_const(fn: Fn, index: Bits, values: list[Int]) -> Int:
    """values[index] (index beyond the list: 0)."""
    if len(values) == 1:
        return values[0]
    default = const(fn, 0) if len(values) < (1 << index.width) else None
    return arith.select_many(fn, index, values, default)


# --------------------------------------------------------------------------------------- ops

def _active(fn: Fn, chans: list[Bits], in_t: FixedType, thr: Int, activity: str) -> Bits:
    """The activity predicate: any channel > threshold ('any') or channel 0 only ('channel0')."""
    tested = chans[:1] if activity == "channel0" else chans
    return fn.nary("or", [arith.compare(fn, "sgt", from_raw(fn, v, in_t), thr) for v in tested])


def _pixels(fn: Fn, x: Bits, shape, in_t: FixedType, threshold_raw: int, activity: str):
    """Per pixel in raster order: (channel raws, active bit)."""
    height, width, c_n = shape
    thr = const(fn, threshold_raw)
    out = []
    for p in range(height * width):
        chans = [fn.slice(x, (p * c_n + c) * in_t.width, in_t.width) for c in range(c_n)]
        out.append((chans, _active(fn, chans, in_t, thr, activity)))
    return out


def _slots_out(fn: Fn, slot_chans, slot_hash, in_t: FixedType, feat_t: FixedType):
    feats = [arith.convert(fn, from_raw(fn, v, in_t), in_t, feat_t) for chans in slot_chans for v in chans]
    return fn.pack(feats), fn.pack([h for rc in slot_hash for h in rc])


def _prefix(fn: Fn, xs: list[Bits], op) -> list[Bits]:
    """Inclusive prefix of xs under the associative `op` (Sklansky: depth ceil(log2 len))."""
    if len(xs) <= 1:
        return list(xs)
    half = len(xs) // 2
    lo, hi = _prefix(fn, xs[:half], op), _prefix(fn, xs[half:], op)
    return lo + [op(lo[-1], h) for h in hi]


def input_reduce(fn: Fn, x: Bits, shape, in_t: FixedType, threshold_raw: int, n_max: int,
                 feat_t: FixedType, hb: int, activity: str = "any") -> tuple[Bits, Bits]:
    """Rank select: rank_p = active pixels before p (prefix counts saturating at N, per row then
    across rows); slot k = OR over p of (active_p and rank_p == k) ? data_p : 0 (one-hot by
    construction); its hash bits = ORs of the select signals of the pixels whose coordinate bit is 1."""
    height, width, c_n = shape
    pixels = _pixels(fn, x, shape, in_t, threshold_raw, activity)
    cw = (2 * n_max).bit_length()   # counts <= N; a sum of two <= 2N
    cap = fn.lit(n_max, cw)

    def sat_add(a, b):
        s = fn.binary("add", a, b)
        return fn.mux(fn.cmp("ugt", s, cap), cap, s)

    ones = [fn.ext(act, cw, signed=False) for _, act in pixels]
    rows = [_prefix(fn, ones[r * width:(r + 1) * width], sat_add) for r in range(height)]
    zero_c = fn.lit(0, cw)
    row_before = [zero_c] + _prefix(fn, [r[-1] for r in rows[:-1]], sat_add)  # active pixels above row r
    select = [[] for _ in range(n_max)]   # slot k: (pixel, select bit)
    for r in range(height):
        for j in range(width):
            p = r * width + j
            in_row = rows[r][j - 1] if j else None
            rank = row_before[r] if in_row is None else (in_row if r == 0 else sat_add(row_before[r], in_row))
            for k in range(min(n_max, p + 1)):
                hit = pixels[p][1] if (p == 0 and k == 0) else fn.binary("and", pixels[p][1], fn.cmp("eq", rank, fn.lit(k, cw)))
                select[k].append((p, hit))
    zero_d, zero_h = _zero(fn, c_n * in_t.width), _zero(fn, 1)
    slot_chans, slot_hash = [], []
    for k in range(n_max):
        words = [fn.mux(hit, fn.concat(pixels[p][0][::-1]), zero_d) for p, hit in select[k]]
        word = fn.nary("or", words) if words else zero_d
        slot_chans.append([fn.slice(word, c * in_t.width, in_t.width) for c in range(c_n)])
        coord = []
        for value in (lambda p: p // width + 1, lambda p: p % width + 1):
            bits = [fn.nary("or", [hit for p, hit in select[k] if value(p) >> b & 1] or [zero_h]) for b in range(hb)]
            coord.append(fn.concat(bits[::-1]))
        slot_hash.append(coord)
    return _slots_out(fn, slot_chans, slot_hash, in_t, feat_t)


def input_reduce_merge(fn: Fn, x: Bits, shape, in_t: FixedType, threshold_raw: int, n_max: int,
                       feat_t: FixedType, hb: int, activity: str = "any") -> tuple[Bits, Bits]:
    """The former structure (kept for bench/input_reduce_structures.py): a merge tree over the raster
    order; a node concatenates its left list (the first `count` entries valid) with its right one by
    a count-selected shift, keeping at most N entries."""
    height, width, c_n = shape
    data_w = c_n * in_t.width + 2 * hb
    leaves = []
    for p, (chans, active) in enumerate(_pixels(fn, x, shape, in_t, threshold_raw, activity)):
        word = fn.concat([fn.lit(p // width + 1, hb), fn.lit(p % width + 1, hb)] + chans[::-1])
        leaves.append(([fn.mux(active, word, _zero(fn, data_w))],
                       arith.make(fn, active, 0, 1, signed=False), 1))
    zero = _zero(fn, data_w)
    def merge(a, b):
        (sa, ca, size_a), (sb, cb, size_b) = a, b
        n_a, n_b = len(sa), len(sb)
        out = []
        for k in range(min(n_max, n_a + n_b)):
            cases = [sa[k] if k < c else (sb[k - c] if k - c < n_b else zero) for c in range(n_a + 1)]
            sel_bits = ca.bits
            if all(c is cases[0] for c in cases):
                out.append(cases[0])
                continue
            default = (sa[k] if k < n_a else zero) if len(cases) < (1 << sel_bits.width) else None
            out.append(fn.sel(sel_bits, cases, default))
        return out, arith.add(fn, ca, cb), size_a + size_b

    level = leaves
    while len(level) > 1:
        level = [merge(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    slots = level[0][0] + [zero] * (n_max - len(level[0][0]))
    return _slots_out(fn, [[fn.slice(w, c * in_t.width, in_t.width) for c in range(c_n)] for w in slots],
                      [[fn.slice(w, c_n * in_t.width + hb, hb), fn.slice(w, c_n * in_t.width, hb)] for w in slots],
                      in_t, feat_t)


def _coords(fn: Fn, hash_: Bits, n: int, hb: int):
    parts = fn.unpack(hash_, hb, 2 * n)
    rows, cols = parts[0::2], parts[1::2]
    return rows, cols, [_nonempty(fn, r, c) for r, c in zip(rows, cols)]


def sparse_conv2d(fn: Fn, feat: Bits, hash_: Bits, n: int, hb: int, in_t, w: np.ndarray, w_t,
                  b: np.ndarray, b_t, acc_t, out_t, bias_mode: str = "active") -> Bits:
    kh_n, kw_n, ci_n, co_n = w.shape
    ph, pw = (kh_n - 1) // 2, (kw_n - 1) // 2
    rows, cols, ne = _coords(fn, hash_, n, hb)
    x = [[from_raw(fn, v, in_t) for v in fn.unpack(fn.slice(feat, i * ci_n * in_t.width, ci_n * in_t.width), in_t.width, ci_n)]
         for i in range(n)]
    hcoord = [arith.make(fn, r, 0, (1 << hb) - 1, signed=False) for r in rows]
    wcoord = [arith.make(fn, c, 0, (1 << hb) - 1, signed=False) for c in cols]
    wconst = [[[[const(fn, int(w[a, bb, c, o])) for o in range(co_n)] for c in range(ci_n)]
               for bb in range(kw_n)] for a in range(kh_n)]
    prod_t = product_type(in_t, w_t)
    n_terms = min(n, kh_n * kw_n) * ci_n
    outs = []
    # pair (i, j): in window, and the kernel row / column offsets as selector bits
    window = {}
    for i in range(n):
        for j in range(n):
            if i == j:
                window[i, j] = (ne[i], None, None)
                continue
            dh = arith.add(fn, arith.sub(fn, hcoord[j], hcoord[i]), const(fn, ph))
            dw = arith.add(fn, arith.sub(fn, wcoord[j], wcoord[i]), const(fn, pw))
            ok = fn.binary("and", ne[j], fn.binary("and", ne[i], fn.binary(
                "and", fn.binary("and", arith.compare(fn, "sge", dh, const(fn, 0)),
                                 arith.compare(fn, "slt", dh, const(fn, kh_n))),
                fn.binary("and", arith.compare(fn, "sge", dw, const(fn, 0)),
                          arith.compare(fn, "slt", dw, const(fn, kw_n))))))
            kbits = lambda d, k: fn.slice(d.bits, 0, max(1, (k - 1).bit_length()))  # noqa: E731
            window[i, j] = (ok, kbits(dh, kh_n), kbits(dw, kw_n))
    for i in range(n):
        for o in range(co_n):
            terms = []
            for j in range(n):
                ok, sh, sw = window[i, j]
                for c in range(ci_n):
                    if sh is None:
                        wsel = wconst[ph][pw][c][o]
                    else:
                        rows_w = [_select_const(fn, sw, [wconst[a][bb][c][o] for bb in range(kw_n)])
                                  for a in range(kh_n)]
                        wsel = _select_const(fn, sh, rows_w)
                    if wsel.lo == wsel.hi == 0:
                        continue
                    terms.append((arith.mul(fn, x[j][c], wsel), ok))
            y = accumulate(fn, terms, n_terms, prod_t, int(b[o]), b_t, acc_t, out_t, bias_mode == "nonzero")
            outs.append(fn.mux(ne[i], y, _zero(fn, out_t.width)))
    return fn.pack(outs)


def _range_index(fn: Fn, x: Int, in_t: FixedType, half_range: int, size: int) -> Bits:
    """spx_ir.tables.range_index: clamp(floor((x + R) * S / 2R), 0, S-1)."""
    shift = int(math.log2(size)) - int(math.log2(2 * half_range))
    f = in_t.frac_bits
    if f >= 0:
        num, e = arith.add(fn, x, const(fn, half_range << f)), shift - f
    else:
        num, e = arith.add(fn, arith.shl(fn, x, -f), const(fn, half_range)), shift
    idx = arith.shl(fn, num, e) if e >= 0 else arith.floor_shr(fn, num, -e)
    idx = arith.clamp(fn, idx, 0, size - 1)
    return fn.slice(arith.widen(fn, idx, max(idx.width, 1 + (size - 1).bit_length())), 0,
                    max(1, (size - 1).bit_length()))


def _index_bits(fn: Fn, idx: Int, size: int) -> Bits:
    w = max(1, (size - 1).bit_length())
    return fn.slice(arith.widen(fn, idx, max(idx.width, w + 1)), 0, w)


def elementwise(fn: Fn, x: Bits, in_t: FixedType, kind: str, out_t: FixedType, table_size) -> Bits:
    """One value of an elementwise activation (relu, linear, sigmoid, tanh)."""
    v = from_raw(fn, x, in_t)
    if kind == "relu":
        return arith.convert(fn, arith.maximum(fn, v, const(fn, 0)), in_t, out_t)
    if kind == "linear":
        return arith.convert(fn, v, in_t, out_t)
    size = table_size or DEFAULT_SIZE
    table = (sigmoid_table if kind == "sigmoid" else tanh_table)(in_t, out_t, size)
    half = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
    looked_up = fn.rom(table, out_t.width, _range_index(fn, v, in_t, half, size))
    centre = center_raw(sigmoid_fn if kind == "sigmoid" else np.tanh, out_t)  # spx_ir.tables.range_lookup
    return fn.mux(arith.compare(fn, "eq", v, const(fn, 0)), fn.lit(centre % (1 << out_t.width), out_t.width),
                  looked_up)


def sparse_activation(fn: Fn, feat: Bits, hash_: Bits, n: int, c_n: int, hb: int, in_t, kind, out_t,
                      table_size) -> Bits:
    _, _, ne = _coords(fn, hash_, n, hb)
    xs = fn.unpack(feat, in_t.width, n * c_n)
    outs = [fn.mux(ne[k // c_n], elementwise(fn, v, in_t, kind, out_t, table_size), _zero(fn, out_t.width))
            for k, v in enumerate(xs)]
    return fn.pack(outs)


def _increment(fn: Fn, quant: str, above: Bits, tie: Bits, inexact: Bits, neg: Bits, q: Int) -> Bits:
    """1 where the floor result q must be incremented to round by `quant` (spx_ir.fixed)."""
    a = lambda p, r: fn.binary("and", p, r)  # noqa: E731
    o = lambda p, r: fn.binary("or", p, r)  # noqa: E731
    if quant == "TRN":
        return fn.lit(0, 1)
    if quant == "TRN_ZERO":
        return a(inexact, neg)
    if quant == "RND":
        return o(above, tie)
    if quant == "RND_ZERO":
        return o(above, a(tie, neg))
    if quant == "RND_INF":
        return o(above, a(tie, fn.unary("not", neg)))
    if quant == "RND_MIN_INF":
        return above
    return o(above, a(tie, fn.slice(q.bits, 0, 1)))  # RND_CONV


def divide_round(fn: Fn, num: Int, den: int, quant: str) -> Int:
    """spx_ir.fixed.divide_round: num / den (constant den >= 1) rounded by `quant`."""
    if den & (den - 1) == 0:
        k = den.bit_length() - 1
        return arith.round_shr(fn, num, k, quant) if k else num
    offset = -(num.lo // den) if num.lo < 0 else 0           # num + offset*den >= 0
    shifted = arith.add(fn, num, const(fn, offset * den))
    bits_n = max(1, shifted.hi.bit_length())
    s = bits_n + (den - 1).bit_length()
    magic = -(-(1 << s) // den)                                # ceil(2**s / den): exact floor(n/den)
    q = arith.sub(fn, arith.floor_shr(fn, arith.mul(fn, shifted, const(fn, magic)), s), const(fn, offset))
    q = arith.make(fn, q.bits, num.lo // den, num.hi // den)
    rem = arith.sub(fn, num, arith.mul(fn, q, const(fn, den)))
    rem = arith.make(fn, rem.bits, 0, den - 1)
    twice = arith.shl(fn, rem, 1)
    above = arith.compare(fn, "sgt", twice, const(fn, den))
    tie = arith.compare(fn, "eq", twice, const(fn, den))
    inexact = arith.compare(fn, "ne", rem, const(fn, 0))
    up = _increment(fn, quant, above, tie, inexact, arith.is_negative(fn, num), q)
    return arith.add(fn, q, arith.make(fn, up, 0, 1, signed=False))


def sparse_pool2d(fn: Fn, feat: Bits, hash_: Bits, n: int, c_n: int, hb: int, in_t, size: int, mode: str,
                  height: int, width: int, out_t, hb_out: int, inactive: str = "skip") -> tuple[Bits, Bits]:
    """inactive 'zero' (max only): a window with fewer than P^2 member slots also holds a 0."""
    rows, cols, ne = _coords(fn, hash_, n, hb)
    hp_n, wp_n = height // size, width // size
    cw = max(1, max(hp_n, wp_n).bit_length())
    pooled = lambda v: fn.rom([max(c - 1, 0) // size for c in range(1 << hb)], cw, v)  # noqa: E731
    prow, pcol = [pooled(r) for r in rows], [pooled(c) for c in cols]
    valid = [fn.binary("and", ne[i], fn.binary("and", fn.cmp("ult", prow[i], fn.lit(hp_n, cw)),
                                                 fn.cmp("ult", pcol[i], fn.lit(wp_n, cw)))) for i in range(n)]
    same = {}
    for i in range(n):
        for j in range(n):
            if i == j:
                same[i, j] = valid[i]
            elif j < i:
                same[i, j] = same[j, i]
            else:
                same[i, j] = fn.binary("and", fn.binary("and", valid[i], valid[j]), fn.binary(
                    "and", fn.cmp("eq", prow[i], prow[j]), fn.cmp("eq", pcol[i], pcol[j])))
    x = [[from_raw(fn, v, in_t) for v in fn.unpack(fn.slice(feat, i * c_n * in_t.width, c_n * in_t.width), in_t.width, c_n)]
         for i in range(n)]
    feats, hashes = [], []
    zero_out = _zero(fn, out_t.width)
    for i in range(n):
        earlier = fn.lit(0, 1)
        for j in range(i):
            earlier = fn.binary("or", earlier, same[i, j])
        leader = fn.binary("and", valid[i], fn.unary("not", earlier))
        partial = None
        if mode == "max" and inactive == "zero":
            if n < size * size:  # never P^2 members
                partial = fn.lit(1, 1)
            else:
                count = arith.sum_tree(fn, [arith.make(fn, same[i, j], 0, 1, signed=False) for j in range(n)])
                partial = arith.compare(fn, "slt", count, const(fn, size * size))
        for c in range(c_n):
            if mode == "max":
                members = [arith.select(fn, same[i, j], x[j][c], const(fn, in_t.min_raw)) for j in range(n)]
                while len(members) > 1:
                    members = [arith.maximum(fn, members[k], members[k + 1]) if k + 1 < len(members) else members[k]
                               for k in range(0, len(members), 2)]
                best = members[0]
                if partial is not None:
                    best = arith.select(fn, partial, arith.maximum(fn, best, const(fn, 0)), best)
                y = arith.convert(fn, best, in_t, out_t)
            else:
                total = arith.sum_tree(fn, [arith.select(fn, same[i, j], x[j][c], const(fn, 0)) for j in range(n)])
                shift = out_t.frac_bits - in_t.frac_bits
                num, den = ((arith.shl(fn, total, shift), size * size) if shift >= 0
                            else (total, (size * size) << -shift))
                q = divide_round(fn, num, den, out_t.quant)
                wide_w = accumulator_type(in_t, size * size).width + max(shift, 0) + 1
                wide_t = FixedType(wide_w, wide_w - out_t.frac_bits, signed=True)
                y = arith.convert(fn, q, wide_t, out_t)
            feats.append(fn.mux(leader, y, zero_out))
        for coord in (prow[i], pcol[i]):
            plus1 = fn.binary("add", fn.ext(coord, max(hb_out, cw) + 1, False), fn.lit(1, max(hb_out, cw) + 1))
            hashes.append(fn.mux(leader, fn.slice(plus1, 0, hb_out), _zero(fn, hb_out)))
    return fn.pack(feats), fn.pack(hashes)


def sparse_flatten(fn: Fn, feat: Bits, hash_: Bits, n: int, c_n: int, hb: int, fw: int, height: int,
                   width: int) -> Bits:
    rows, cols, _ = _coords(fn, hash_, n, hb)
    words = [fn.slice(feat, i * c_n * fw, c_n * fw) for i in range(n)]
    row_is = [[fn.cmp("eq", rows[i], fn.lit(h + 1, hb)) if h + 1 < (1 << hb) else fn.lit(0, 1)
               for h in range(height)] for i in range(n)]
    col_is = [[fn.cmp("eq", cols[i], fn.lit(w + 1, hb)) if w + 1 < (1 << hb) else fn.lit(0, 1)
               for w in range(width)] for i in range(n)]
    zero = _zero(fn, c_n * fw)
    pixels = []
    for h in range(height):
        for w in range(width):
            hits = [fn.binary("and", row_is[i][h], col_is[i][w]) for i in range(n)]
            # priority_sel: bit 0 has priority; the LAST slot wins (like the reference's scatter)
            selector = fn.concat(hits)  # msb first: hits[0] is the msb, hits[n-1] bit 0
            pixels.append(fn.priority_sel(selector, words[::-1], zero))
    return fn.pack(pixels)


def dense(fn: Fn, x: Bits, in_t, w: np.ndarray, w_t, b: np.ndarray, b_t, acc_t, out_t) -> Bits:
    n_in, n_out = w.shape
    xs = [from_raw(fn, v, in_t) for v in fn.unpack(x, in_t.width, n_in)]
    prod_t = product_type(in_t, w_t)
    outs = []
    for o in range(n_out):
        terms = [(arith.mul(fn, xs[i], const(fn, int(w[i, o]))), None) for i in range(n_in) if w[i, o] != 0]
        outs.append(accumulate(fn, terms, n_in, prod_t, int(b[o]), b_t, acc_t, out_t))
    return fn.pack(outs)


def softmax(fn: Fn, xs: list[Bits], in_t: FixedType, out_t: FixedType, table_size=None) -> list[Bits]:
    """spx_ir.tables softmax over one vector (steps 1-6 of its docstring)."""
    k_in = len(xs)
    t = softmax_tables(in_t, k_in, table_size=table_size)
    v = [from_raw(fn, x, in_t) for x in xs]
    m = v[0]
    for u in v[1:]:
        m = arith.maximum(fn, m, u)
    shift = int(math.log2(t.exp_size)) - int(math.log2(t.exp_range))
    f, fs = in_t.frac_bits, t.exp_t.frac_bits
    si = int(math.log2(t.inv_size))
    es = []
    for u in v:
        neg_d = arith.sub(fn, m, u)
        neg_d = arith.make(fn, neg_d.bits, 0, max(neg_d.hi, 0))
        if f >= 0:
            idx = arith.shl(fn, neg_d, shift - f) if shift - f >= 0 else arith.floor_shr(fn, neg_d, f - shift)
        else:
            idx = arith.shl(fn, arith.shl(fn, neg_d, -f), shift)
        idx = arith.clamp(fn, idx, 0, t.exp_size - 1)
        es.append(arith.make(fn, fn.rom(t.exp_table, t.exp_t.width, _index_bits(fn, idx, t.exp_size)),
                             0, int(t.exp_table.max()), signed=False))
    s = arith.sum_tree(fn, es)
    ks = [arith.compare(fn, "sge", s, const(fn, 1 << (fs + j))) for j in range(1, t.kmax + 1)]
    k = arith.sum_tree(fn, [arith.make(fn, b, 0, 1, signed=False) for b in ks])
    k_bits = fn.slice(arith.widen(fn, k, max(k.width, 1 + max(1, t.kmax.bit_length()))), 0,
                      max(1, t.kmax.bit_length()))
    idx_cases = []
    for kv in range(t.kmax + 1):
        diff = arith.sub(fn, s, const(fn, 1 << (fs + kv)))
        amount = fs + kv - si
        idx = arith.floor_shr(fn, diff, amount) if amount >= 0 else arith.shl(fn, diff, -amount)
        idx_cases.append(arith.clamp(fn, idx, 0, t.inv_size - 1))
    idx = _select_const(fn, k_bits, idx_cases) if len(idx_cases) > 1 else idx_cases[0]
    idx = arith.clamp(fn, idx, 0, t.inv_size - 1)
    inv = arith.make(fn, fn.rom(t.inv_table, t.inv_t.width, _index_bits(fn, idx, t.inv_size)),
                     0, int(t.inv_table.max()), signed=False)
    prod_t = product_type(t.exp_t, t.inv_t)
    p_t = FixedType(prod_t.width + t.kmax, prod_t.int_bits, signed=False)
    outs = []
    for e in es:
        prod = arith.mul(fn, e, inv)
        scaled = [arith.shl(fn, prod, t.kmax - kv) for kv in range(t.kmax + 1)]
        p = _select_const(fn, k_bits, scaled) if len(scaled) > 1 else scaled[0]
        outs.append(arith.convert(fn, p, p_t, out_t))
    return _softmax_decide(fn, outs, [arith.compare(fn, "eq", u, m) for u in v], out_t)


def _softmax_decide(fn: Fn, outs: list[Bits], is_max: list[Bits], out_t: FixedType) -> list[Bits]:
    """spx_ir.tables.softmax_decide: an output whose logit is below the maximum is lowered to one step
    under the top output where it would tie or exceed it (so argmax follows the logits)."""
    ys = [from_raw(fn, y, out_t) for y in outs]
    floor = const(fn, out_t.min_raw)
    top = arith.select(fn, is_max[0], ys[0], floor)
    for y, mx in zip(ys[1:], is_max[1:]):
        top = arith.maximum(fn, top, arith.select(fn, mx, y, floor))
    lowered = arith.sub(fn, top, const(fn, 1))
    above_floor = arith.compare(fn, "sgt", top, floor)
    result = []
    for y, mx in zip(ys, is_max):
        lower = fn.binary("and", fn.binary("and", fn.unary("not", mx), arith.compare(fn, "sge", y, top)),
                          above_floor)
        new = arith.select(fn, lower, lowered, y)
        result.append(fn.slice(arith.widen(fn, new, max(new.width, out_t.width)), 0, out_t.width))
    return result


def activation(fn: Fn, x: Bits, shape, in_t, kind, out_t, table_size) -> Bits:
    xs = fn.unpack(x, in_t.width, math.prod(shape))
    if kind != "softmax":
        return fn.pack([elementwise(fn, v, in_t, kind, out_t, table_size) for v in xs])
    last = shape[-1]
    outs = []
    for r in range(0, len(xs), last):
        outs += softmax(fn, xs[r:r + last], in_t, out_t, table_size)
    return fn.pack(outs)


def quantize_kif(fn: Fn, x: Int, in_t: FixedType, kif, quant: str, overflow: str, out_t: FixedType) -> Bits:
    """One raw of in_t quantized by its (k, i, f) (codegen/numpy/kernels.py _quantize_kif): rounded to
    2^-f by `quant`, then WRAP / SAT / SAT_SYM into [k ? -2^i : 0, 2^i - 2^-f]; 0 where k+i+f = 0.
    -> out_t.width raw bits."""
    k, i, f = (int(v) for v in kif)
    if k + i + f == 0:
        return _zero(fn, out_t.width)
    assert out_t.frac_bits >= f, "the verifier makes the result type hold every element"
    shift = in_t.frac_bits - f
    q = arith.round_shr(fn, x, shift, quant) if shift > 0 else arith.shl(fn, x, -shift)
    hi = (1 << (i + f)) - 1
    lo = -(hi + 1) if k else 0
    if overflow == "WRAP":
        if not lo <= q.lo <= q.hi <= hi:  # keep the low k+i+f bits, signed if k
            w = k + i + f
            low = fn.slice(q.bits, 0, w) if q.width >= w else fn.ext(q.bits, w, q.lo < 0)
            q = arith.make(fn, low, lo, hi, signed=bool(k))
    else:
        q = arith.clamp(fn, q, -hi if k and overflow == "SAT_SYM" else lo, hi)
    y = arith.shl(fn, q, out_t.frac_bits - f)
    return fn.slice(arith.widen(fn, y, max(y.width, out_t.width)), 0, out_t.width)


def quantize(fn: Fn, x: Bits, in_t: FixedType, kif: np.ndarray, quant: str, overflow: str,
             out_t: FixedType) -> Bits:
    """spx.quantize: element e (flat row-major) by the constant kif[e] = (k, i, f)."""
    xs = fn.unpack(x, in_t.width, len(kif))
    return fn.pack([quantize_kif(fn, from_raw(fn, v, in_t), in_t, t, quant, overflow, out_t)
                    for v, t in zip(xs, kif)])


def sparse_quantize(fn: Fn, feat: Bits, hash_: Bits, n: int, c_n: int, hb: int, in_t: FixedType,
                    kif: np.ndarray, quant: str, overflow: str, out_t: FixedType) -> Bits:
    """spx.sparse_quantize: slot s, channel c by kif[h_s-1, w_s-1, c]. Per channel, each distinct
    (k, i, f) of its table is one quantizer per slot; a ROM indexed by the slot's hash (row, col)
    selects which (all channels' choices in one word). Empty slots stay 0. (A coordinate beyond the
    table, which the reference refuses, reads the ROM's last row/column.)"""
    height, width = kif.shape[:2]
    triples, choice = [], []          # per channel: its distinct (k, i, f) and the index of each pixel's
    for c in range(c_n):
        uniq, inverse = np.unique(kif[:, :, c, :].reshape(-1, 3), axis=0, return_inverse=True)
        triples.append(uniq)
        choice.append(inverse.reshape(height, width))
    sel_w = [(len(t) - 1).bit_length() for t in triples]   # 0: one quantizer, nothing to select
    rows, cols, ne = _coords(fn, hash_, n, hb)
    word = None
    if sum(sel_w):
        table = np.zeros((height + 1, width + 1), dtype=object)   # row/col 0: empty slots (masked)
        for c in reversed(range(c_n)):
            table[1:, 1:] = (table[1:, 1:] << sel_w[c]) | choice[c].astype(object)
        offsets = np.cumsum([0] + sel_w)   # channel c's choice at bits [offsets[c], +sel_w[c])
    zero = _zero(fn, out_t.width)
    outs = []
    for s in range(n):
        if sum(sel_w):
            word = fn.rom2(table.tolist(), int(offsets[-1]), rows[s], cols[s])
        for c in range(c_n):
            x = from_raw(fn, fn.slice(feat, (s * c_n + c) * in_t.width, in_t.width), in_t)
            cases = [quantize_kif(fn, x, in_t, t, quant, overflow, out_t) for t in triples[c]]
            y = cases[0] if len(cases) == 1 else fn.sel(
                fn.slice(word, int(offsets[c]), sel_w[c]), cases, zero if len(cases) < 1 << sel_w[c] else None)
            outs.append(fn.mux(ne[s], y, zero))
    return fn.pack(outs)
