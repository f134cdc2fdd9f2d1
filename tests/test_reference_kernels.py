"""NumPy reference kernels (codegen/numpy/kernels.py) and tables (spx_ir/tables.py) against an
independent dense formulation of DESIGN.md section 3.

The references below work on masked dense images in float64. All test types are narrow enough that
every product and sum is exact in float64, so the only rounding is one `quantize` (the fixed-point
library's float entry) per reference value, which also tells whether overflow handling fired.
"""
import math

import numpy as np
import pytest

from codegen.numpy import kernels as K
from spx_ir import tables as T
from spx_ir.fixed import FixedType, quantize, to_float

IN_T = FixedType(8, 3)                 # [-4, 4) step 1/32
FEAT_T = FixedType(8, 3)
W_T = FixedType(6, 1)                  # [-1, 1) step 1/32
B_T = FixedType(8, 2)

OUT_TYPES = [
    FixedType(24, 10),                                    # holds every result exactly
    FixedType(6, 2, quant="RND", overflow="SAT"),         # narrow: rounds and saturates
    FixedType(6, 2),                                      # narrow: truncates and wraps
    FixedType(7, 3, quant="RND_CONV", overflow="SAT_SYM"),
    FixedType(6, 3, signed=False, quant="RND_ZERO", overflow="SAT_ZERO"),
]


# ----------------------------------------------------------------------------------- references

def ref_convert(v, t):
    """Float64 values v into t the ap_fixed way: (raw, overflow-changed mask)."""
    v = np.asarray(v, dtype=np.float64)
    extra = 62 - t.width
    q = quantize(v, FixedType(62, t.int_bits + extra, True, t.quant))   # same rounding, no overflow
    lo = t.min_raw + (1 if t.overflow == "SAT_SYM" and t.signed else 0)
    return quantize(v, t), (q < lo) | (q > t.max_raw)


def random_events(rng, b_n, height, width, c_n, t=IN_T, threshold=0):
    """Raw images with per-event density from empty to dense (> n_max), negative inactive values."""
    density = rng.choice([0.0, 0.05, 0.15, 0.5], size=(b_n, 1, 1))
    active = rng.random((b_n, height, width)) < density
    vals = rng.integers(t.min_raw, t.max_raw + 1, size=(b_n, height, width, c_n))
    lead = rng.integers(threshold + 1, t.max_raw + 1, size=(b_n, height, width))
    vals[..., 0] = np.where(active, lead, vals[..., 0])           # active: channel 0 > threshold
    quiet = rng.integers(t.min_raw, threshold + 1, size=vals.shape)
    return np.where(active[..., None], vals, quiet).astype(np.int64)


def ref_reduce(x, threshold, n_max):
    """Per event: list of the first n_max active (h, w) in raster order, and #dropped."""
    out = []
    for img in x:
        act = [(h, w) for h in range(img.shape[0]) for w in range(img.shape[1])
               if any(img[h, w] > threshold)]
        out.append((act[:n_max], max(len(act) - n_max, 0)))
    return out


def masked_image(feat, hash_, t, height, width):
    """Dense float image from a sparse tensor (test-side scatter)."""
    img = np.zeros((feat.shape[0], height, width, feat.shape[2]))
    mask = np.zeros((feat.shape[0], height, width), dtype=bool)
    for b in range(feat.shape[0]):
        for k in range(feat.shape[1]):
            h, w = hash_[b, k]
            if h > 0:
                img[b, h - 1, w - 1] = to_float(feat[b, k], t)
                mask[b, h - 1, w - 1] = True
    return img, mask


def dense_conv_same(img, w, b):
    """Keras Conv2D(padding='same', stride 1) on a float image, plus bias."""
    kh_n, kw_n = w.shape[:2]
    ph, pw = (kh_n - 1) // 2, (kw_n - 1) // 2
    _, height, width, _ = img.shape
    pad = np.pad(img, ((0, 0), (ph, kh_n - 1 - ph), (pw, kw_n - 1 - pw), (0, 0)))
    out = np.zeros(img.shape[:3] + (w.shape[3],)) + b
    for kh in range(kh_n):
        for kw in range(kw_n):
            out += pad[:, kh:kh + height, kw:kw + width] @ w[kh, kw]
    return out


def sparse_setup(seed, b_n=24, height=7, width=6, c_n=2, n_max=10):
    rng = np.random.default_rng(seed)
    x = random_events(rng, b_n, height, width, c_n)
    feat, hash_, _, _ = K.input_reduce(x, IN_T, 0, n_max, FEAT_T)
    return rng, feat, hash_


# ----------------------------------------------------------------------------------- input_reduce

@pytest.mark.parametrize("feat_t", [FEAT_T, FixedType(5, 2, overflow="SAT"), FixedType(4, 1),
                                    FixedType(6, 3, signed=False, quant="RND", overflow="SAT")])
def test_input_reduce(feat_t):
    rng = np.random.default_rng(1)
    n_max, height, width, c_n = 8, 6, 7, 3
    x = random_events(rng, 40, height, width, c_n, threshold=3)
    x[0] = 0                                                       # an empty event
    x[1] = 5                                                       # every pixel active
    feat, hash_, dropped, clipped = K.input_reduce(x, IN_T, 3, n_max, feat_t)
    assert feat.shape == (40, n_max, c_n) and hash_.shape == (40, n_max, 2)
    ref = ref_reduce(x, 3, n_max)
    assert dropped[1] == height * width - n_max and dropped.max() > 0
    for b, (pixels, drop) in enumerate(ref):
        assert dropped[b] == drop
        n = len(pixels)
        want_hash = np.array([(h + 1, w + 1) for h, w in pixels] + [(0, 0)] * (n_max - n))
        np.testing.assert_array_equal(hash_[b], want_hash.reshape(n_max, 2))
        vals = np.array([x[b, h, w] for h, w in pixels]).reshape(n, c_n)
        raw, ov = ref_convert(to_float(vals, IN_T), feat_t)
        np.testing.assert_array_equal(feat[b, :n], raw)
        assert not feat[b, n:].any()
        assert clipped[b] == ov.sum()
    if feat_t.width < IN_T.width:
        assert clipped.sum() > 0


# ----------------------------------------------------------------------------------- sparse_conv2d

@pytest.mark.parametrize("kernel", [(3, 3), (1, 1), (2, 3), (5, 4)])
@pytest.mark.parametrize("out_t", OUT_TYPES)
def test_sparse_conv2d_exact_acc_matches_dense(kernel, out_t):
    height, width, ci, co = 7, 6, 2, 3
    rng, feat, hash_ = sparse_setup(10 * kernel[0] + kernel[1], height=height, width=width, c_n=ci)
    w = rng.integers(W_T.min_raw, W_T.max_raw + 1, size=kernel + (ci, co))
    b = rng.integers(B_T.min_raw, B_T.max_raw + 1, size=co)
    out, clipped = K.sparse_conv2d(feat, hash_, FEAT_T, w, W_T, b, B_T, None, out_t)

    img, mask = masked_image(feat, hash_, FEAT_T, height, width)
    ref = dense_conv_same(img, to_float(w, W_T), to_float(b, B_T))
    raw, ov = ref_convert(ref, out_t)
    got, got_mask = masked_image(out, hash_, out_t, height, width)
    np.testing.assert_array_equal(got_mask, mask)
    np.testing.assert_array_equal(got, np.where(mask[..., None], to_float(raw, out_t), 0))
    np.testing.assert_array_equal(clipped, (ov & mask[..., None]).sum(axis=(1, 2, 3)))
    empty = ~(hash_[..., 0] > 0)
    assert not out[empty].any()
    if out_t.width < 8:
        assert clipped.sum() > 0                      # the narrow types really overflow here


def loop_conv_reference(feat, hash_, w, b, acc_t, out_t):
    """C++-like sequential accumulation, one scalar term at a time, in float64 + quantize."""
    kh_n, kw_n, ci_n, co_n = w.shape
    wf, bf, ff = to_float(w, W_T), to_float(b, B_T), to_float(feat, FEAT_T)
    out = np.zeros(feat.shape[:2] + (co_n,), dtype=np.int64)
    step_ov = np.zeros(out.shape, dtype=bool)
    total_ov = np.zeros(out.shape, dtype=bool)
    final_ov = np.zeros(out.shape, dtype=bool)
    for bi in range(feat.shape[0]):
        for i in range(feat.shape[1]):
            hi, wi = hash_[bi, i]
            if hi == 0:
                continue
            raw, ov = ref_convert(bf, acc_t)
            acc, any_ov, exact = to_float(raw, acc_t), ov, bf.copy()
            for j in range(feat.shape[1]):
                hj, wj = hash_[bi, j]
                kh, kw = hj - hi + (kh_n - 1) // 2, wj - wi + (kw_n - 1) // 2
                if hj == 0 or not (0 <= kh < kh_n and 0 <= kw < kw_n):
                    continue
                for c in range(ci_n):
                    raw, ov = ref_convert(acc + ff[bi, j, c] * wf[kh, kw, c], acc_t)
                    acc, any_ov = to_float(raw, acc_t), any_ov | ov
                    exact = exact + ff[bi, j, c] * wf[kh, kw, c]
            out[bi, i], final_ov[bi, i] = ref_convert(acc, out_t)
            step_ov[bi, i] = any_ov
            total_ov[bi, i] = ref_convert(exact, acc_t)[1]
    return out, step_ov, total_ov, final_ov


ACC_CASES = [  # (acc_t, uses the fast path)
    (FixedType(24, 10), True),                                  # holds every partial sum
    (FixedType(9, 3, overflow="SAT"), False),                   # saturates mid-sum
    (FixedType(10, 4, quant="RND"), False),                     # quantizes every step (frac 6 < 10)
    (FixedType(12, 2), True),                                   # WRAP, no quantization: modular
    (FixedType(11, 1, quant="RND_CONV", overflow="SAT_SYM"), False),
]


@pytest.mark.parametrize("acc_t,fast", ACC_CASES)
def test_sparse_conv2d_explicit_acc_is_sequential(acc_t, fast):
    rng, feat, hash_ = sparse_setup(7, b_n=6, height=5, width=5, c_n=2, n_max=9)
    w = rng.integers(W_T.min_raw, W_T.max_raw + 1, size=(3, 3, 2, 3))
    b = rng.integers(B_T.min_raw, B_T.max_raw + 1, size=3)
    out_t = FixedType(8, 4, overflow="SAT")
    out, clipped = K.sparse_conv2d(feat, hash_, FEAT_T, w, W_T, b, B_T, acc_t, out_t)
    ref, step_ov, total_ov, final_ov = loop_conv_reference(feat, hash_, w, b, acc_t, out_t)
    np.testing.assert_array_equal(out, ref)
    acc_ov = total_ov if fast and acc_t.overflow == "WRAP" else step_ov
    np.testing.assert_array_equal(clipped, (acc_ov | final_ov).sum(axis=(1, 2)))
    if acc_t.width < 24:
        assert (step_ov | total_ov).any() or acc_t.quant != "TRN"   # the case is not vacuous


# ----------------------------------------------------------------------------------- dense

@pytest.mark.parametrize("out_t", OUT_TYPES)
def test_dense_exact_acc(out_t):
    rng = np.random.default_rng(3)
    x = rng.integers(IN_T.min_raw, IN_T.max_raw + 1, size=(50, 13))
    w = rng.integers(W_T.min_raw, W_T.max_raw + 1, size=(13, 4))
    b = rng.integers(B_T.min_raw, B_T.max_raw + 1, size=4)
    y, clipped = K.dense(x, IN_T, w, W_T, b, B_T, None, out_t)
    raw, ov = ref_convert(to_float(x, IN_T) @ to_float(w, W_T) + to_float(b, B_T), out_t)
    np.testing.assert_array_equal(y, raw)
    np.testing.assert_array_equal(clipped, ov.sum(axis=1))


@pytest.mark.parametrize("acc_t,fast", ACC_CASES)
def test_dense_explicit_acc_is_sequential(acc_t, fast):
    rng = np.random.default_rng(4)
    x = rng.integers(IN_T.min_raw, IN_T.max_raw + 1, size=(20, 9))
    w = rng.integers(W_T.min_raw, W_T.max_raw + 1, size=(9, 3))
    b = rng.integers(B_T.min_raw, B_T.max_raw + 1, size=3)
    out_t = FixedType(7, 3, quant="RND", overflow="SAT")
    y, clipped = K.dense(x, IN_T, w, W_T, b, B_T, acc_t, out_t)
    xf, wf = to_float(x, IN_T), to_float(w, W_T)
    want_clipped = np.zeros(x.shape[0], dtype=np.int64)
    for bi in range(x.shape[0]):
        for o in range(w.shape[1]):
            raw, any_ov = ref_convert(to_float(b[o], B_T), acc_t)
            acc = to_float(raw, acc_t)
            for i in range(x.shape[1]):                       # plain C++-like loop
                raw, ov = ref_convert(acc + xf[bi, i] * wf[i, o], acc_t)
                acc, any_ov = to_float(raw, acc_t), any_ov | ov
            want, final_ov = ref_convert(acc, out_t)
            assert y[bi, o] == want, (bi, o)
            if fast and acc_t.overflow == "WRAP":             # modular: only the total counts
                any_ov = ref_convert(to_float(b[o], B_T) + xf[bi] @ wf[:, o], acc_t)[1]
            want_clipped[bi] += any_ov | final_ov
    np.testing.assert_array_equal(clipped, want_clipped)


# ----------------------------------------------------------------------------------- activations

@pytest.mark.parametrize("kind", ["relu", "linear"])
@pytest.mark.parametrize("out_t", OUT_TYPES)
def test_sparse_activation_relu_linear(kind, out_t):
    _, feat, hash_ = sparse_setup(11)
    out, clipped = K.sparse_activation(feat, hash_, FEAT_T, kind, out_t)
    img, mask = masked_image(feat, hash_, FEAT_T, 7, 6)
    raw, ov = ref_convert(np.maximum(img, 0) if kind == "relu" else img, out_t)
    got, _ = masked_image(out, hash_, out_t, 7, 6)
    np.testing.assert_array_equal(got, np.where(mask[..., None], to_float(raw, out_t), 0))
    np.testing.assert_array_equal(clipped, (ov & mask[..., None]).sum(axis=(1, 2, 3)))
    # the dense op agrees on the same values
    y, _ = K.activation(feat.reshape(feat.shape[0], -1), FEAT_T, kind, out_t)
    ne = hash_[..., 0] > 0
    np.testing.assert_array_equal(y.reshape(out.shape)[ne], out[ne])


@pytest.mark.parametrize("kind,fn,half_range", [("sigmoid", lambda v: 1 / (1 + np.exp(-v)), 8),
                                                ("tanh", np.tanh, 4)])
def test_sigmoid_tanh_resolution(kind, fn, half_range):
    in_t = FixedType(18, 7)                       # every value of [-64, 64), 4+ per table bin
    out_t = FixedType(12, 2, quant="RND")
    raw = np.arange(in_t.min_raw, in_t.max_raw + 1).reshape(1, -1)
    y, clipped = K.activation(raw, in_t, kind, out_t)
    xf, yf = to_float(raw, in_t), to_float(y, out_t)
    size, lsb = 1024, 2.0 ** -out_t.frac_bits
    slope = 0.25 if kind == "sigmoid" else 1.0
    tail = abs(fn(half_range - 2 * half_range / size) - fn(np.inf))
    err = np.abs(yf - fn(xf))
    inside = np.abs(xf) < half_range
    assert err[inside].max() <= slope * half_range / size + lsb / 2
    assert err.max() <= slope * half_range / size + lsb / 2 + tail
    assert err[inside].max() > slope * half_range / size / 2    # bound is tight (bin centres)
    assert not clipped.any()
    # sparse: empty slots stay 0 although sigmoid(0) != 0
    _, feat, hash_ = sparse_setup(12)
    out, _ = K.sparse_activation(feat, hash_, FEAT_T, kind, out_t)
    ne = hash_[..., 0] > 0
    assert not out[~ne].any()
    np.testing.assert_allclose(to_float(out[ne], out_t), fn(to_float(feat[ne], FEAT_T)),
                               atol=slope * half_range / size + lsb)


@pytest.mark.parametrize("in_t", [FixedType(16, 6), FixedType(6, 6), FixedType(4, 6),
                                  FixedType(12, 5, False)])
def test_range_index_rule(in_t):
    size = 1024
    raw = np.arange(in_t.min_raw, in_t.max_raw + 1)
    x = to_float(raw, in_t)
    want = np.clip(np.floor((x + 8) * size / 16), 0, size - 1).astype(np.int64)
    np.testing.assert_array_equal(T.sigmoid_index(raw, in_t, size), want)
    want = np.clip(np.floor((x + 4) * 256 / 8), 0, 255).astype(np.int64)
    np.testing.assert_array_equal(T.tanh_index(raw, in_t, 256), want)


def test_range_index_edges():
    t = FixedType(16, 6)                                        # lsb 2**-10, finer than a bin
    lsb, size = 2.0 ** -10, 1024
    cases = {-8.0: 0, -8.0 - lsb: 0, -31.0: 0, -8 + 16 / size: 1, -8 + 16 / size - lsb: 0,
             0.0: size // 2, -lsb: size // 2 - 1, 8 - lsb: size - 1, 8.0: size - 1, 31.0: size - 1}
    for v, idx in cases.items():
        assert T.sigmoid_index(quantize(v, t), t, size) == idx, v
    table = T.sigmoid_table(t, FixedType(16, 1, signed=False, quant="RND"), size)
    first = to_float(table[0], FixedType(16, 1, False))
    assert first == pytest.approx(1 / (1 + math.exp(8 - 8 / size)), abs=2e-5)   # bin centre
    assert to_float(table[size // 2], FixedType(16, 1, False)) == pytest.approx(0.5 + 2 / size, abs=2e-5)
    with pytest.raises(ValueError, match="power of two"):
        T.sigmoid_index(0, t, 1000)


def float_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_inputs(rng, in_t, n):
    lo, hi = in_t.min_raw, in_t.max_raw
    cases = [rng.integers(lo, hi + 1, size=(200, n)),                          # wide spread
             rng.integers(-(1 << in_t.frac_bits), 1 << in_t.frac_bits, size=(200, n)),  # close
             np.full((3, n), hi), np.full((3, n), lo)]                         # all equal
    spread = np.tile(np.arange(n) * ((hi - lo) // max(n, 1) // 4), (5, 1))     # regular ladder
    dominant = np.full((2, n), lo)
    dominant[:, 0] = hi
    return np.concatenate(cases + [spread, dominant])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 33])
@pytest.mark.parametrize("in_t", [FixedType(16, 6), FixedType(10, 5), FixedType(8, 8)])
def test_softmax_resolution(n, in_t):
    rng = np.random.default_rng(n)
    x = softmax_inputs(rng, in_t, n)
    out_t = FixedType(18, 2, quant="RND")
    tables = T.softmax_tables(in_t, n)
    y, clipped = K.activation(x, in_t, "softmax", out_t, tables)
    err = np.abs(to_float(y, out_t) - float_softmax(to_float(x, in_t)))
    bound = tables.resolution(2.0 ** -out_t.frac_bits / 2)
    assert bound < 0.0031
    assert err.max() <= bound
    assert not clipped.any()
    assert np.all(to_float(y, out_t) <= 1.0)
    if n == 1:
        assert np.all(to_float(y, out_t) == 1.0)
    # default tables are the same tables
    np.testing.assert_array_equal(K.activation(x, in_t, "softmax", out_t)[0], y)


def test_softmax_index_rules():
    in_t = FixedType(16, 6)
    tables = T.softmax_tables(in_t, 10)
    se, re = tables.exp_size, tables.exp_range
    d = quantize(np.array([0.0, -re / se, -re / se + 2 ** -10, -(re - re / se), -re, -31.0]), in_t)
    np.testing.assert_array_equal(T.softmax_exp_index(-d, in_t, re, se),
                                  [0, 1, 0, se - 1, se - 1, se - 1])
    exp_t, si = tables.exp_t, tables.inv_size
    assert tables.exp_table[0] == 1 << exp_t.frac_bits
    sum_t = FixedType(exp_t.frac_bits + 5, 5, signed=False)          # exp_t's scale
    s = quantize(np.array([1.0, 2.0 - 2 ** -17, 2.0, 3.0, 9.99]), sum_t)
    idx, k = T.softmax_inv_index(s, tables)
    np.testing.assert_array_equal(k, [0, 0, 1, 1, 3])
    last = int(np.floor((to_float(s[4], sum_t) / 8 - 1) * si))
    np.testing.assert_array_equal(idx, [0, si - 1, 0, si // 2, last])
    inv = to_float(tables.inv_table, tables.inv_t)
    np.testing.assert_allclose(inv, 1 / (1 + np.arange(si) / si), atol=2 ** -18)


def test_softmax_saturating_output_counts():
    in_t, out_t = FixedType(8, 4), FixedType(8, 0, signed=False, overflow="SAT")  # cannot hold 1
    x = np.array([[5], [-3]])
    y, clipped = K.activation(x, in_t, "softmax", out_t)
    np.testing.assert_array_equal(y[:, 0], [255, 255])
    np.testing.assert_array_equal(clipped, [1, 1])


# ----------------------------------------------------------------------------------- pooling

def dense_pool(img, mask, size, mode):
    b_n, height, width, c_n = img.shape
    hp, wp = height // size, width // size
    img = img[:, :hp * size, :wp * size].reshape(b_n, hp, size, wp, size, c_n)
    mask = mask[:, :hp * size, :wp * size].reshape(b_n, hp, size, wp, size, 1)
    any_active = mask.any(axis=(2, 4))[..., 0]
    if mode == "avg":                      # Keras AveragePooling2D on the masked image
        return img.sum(axis=(2, 4)) / size ** 2, any_active
    best = np.where(mask, img, -np.inf).max(axis=(2, 4))
    return np.where(any_active[..., None], best, 0.0), any_active


POOL_OUT_TYPES = [FixedType(16, 4, quant="RND"), FixedType(20, 5),
                  FixedType(6, 1, quant="RND_CONV", overflow="SAT"),
                  FixedType(5, 1), FixedType(6, 4, quant="RND_INF", overflow="SAT_SYM")]


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("out_t", POOL_OUT_TYPES)
def test_sparse_pool2d_matches_dense(size, mode, out_t):
    height, width = 7, 8
    _, feat, hash_ = sparse_setup(20 + size, height=height, width=width, n_max=14)
    out, hash_out, clipped = K.sparse_pool2d(feat, hash_, FEAT_T, size, mode, height, width, out_t)
    img, mask = masked_image(feat, hash_, FEAT_T, height, width)
    ref, any_active = dense_pool(img, mask, size, mode)
    raw, ov = ref_convert(ref, out_t)
    hp, wp = height // size, width // size
    got, got_mask = masked_image(out, hash_out, out_t, hp, wp)
    np.testing.assert_array_equal(got_mask, any_active)
    np.testing.assert_array_equal(got, np.where(any_active[..., None], to_float(raw, out_t), 0))
    np.testing.assert_array_equal(clipped, (ov & any_active[..., None]).sum(axis=(1, 2, 3)))
    # the lowest member slot carries each pooled pixel; every other slot is empty
    for b in range(feat.shape[0]):
        first = {}
        for k in range(feat.shape[1]):
            h, w = hash_[b, k] - 1
            if hash_[b, k, 0] > 0 and h // size < hp and w // size < wp:
                first.setdefault((h // size + 1, w // size + 1), k)
        want = np.zeros_like(hash_out[b])
        for coord, k in first.items():
            want[k] = coord
        np.testing.assert_array_equal(hash_out[b], want)
    assert not out[hash_out[..., 0] == 0].any()


def test_sparse_pool2d_saturates():
    feat = np.array([[[127], [127], [127], [127], [-128]]])          # four maxima in one window
    hash_ = np.array([[[1, 1], [1, 2], [2, 1], [2, 2], [3, 3]]])
    out_t = FixedType(6, 2, overflow="SAT")
    # avg: 4 * 3.97 / 4 saturates, -4 / 4 = -1 fits; max: both saturate
    for mode, last, n_clipped in (("avg", -16, 1), ("max", out_t.min_raw, 2)):
        out, hash_out, clipped = K.sparse_pool2d(feat, hash_, FEAT_T, 2, mode, 4, 4, out_t)
        np.testing.assert_array_equal(out[0, :, 0], [out_t.max_raw, 0, 0, 0, last])
        np.testing.assert_array_equal(hash_out[0], [[1, 1], [0, 0], [0, 0], [0, 0], [2, 2]])
        assert clipped[0] == n_clipped


# ----------------------------------------------------------------------------------- flatten

def test_sparse_flatten_matches_masked_dense():
    _, feat, hash_ = sparse_setup(30, c_n=3)
    flat = K.sparse_flatten(feat, hash_, 7, 6)
    img, _ = masked_image(feat, hash_, FEAT_T, 7, 6)
    np.testing.assert_array_equal(to_float(flat, FEAT_T), img.reshape(img.shape[0], -1))
    assert flat.shape == (feat.shape[0], 7 * 6 * 3) and flat.dtype == np.int64


def test_empty_events_stay_empty():
    x = np.zeros((3, 5, 5, 2), dtype=np.int64)
    feat, hash_, dropped, clipped = K.input_reduce(x, IN_T, 0, 6, FEAT_T)
    assert not feat.any() and not hash_.any() and not dropped.any() and not clipped.any()
    w = np.ones((3, 3, 2, 4), dtype=np.int64)
    out, c = K.sparse_conv2d(feat, hash_, FEAT_T, w, W_T, np.full(4, 9), B_T, None,
                             FixedType(12, 5))
    assert not out.any() and not c.any()
    out, c = K.sparse_activation(feat, hash_, FEAT_T, "sigmoid", FixedType(8, 1))
    assert not out.any()
    out, h, c = K.sparse_pool2d(feat, hash_, FEAT_T, 2, "max", 5, 5, FEAT_T)
    assert not out.any() and not h.any()
    assert not K.sparse_flatten(feat, hash_, 5, 5).any()


# ----------------------------------------------------------------------------------- bad input

def test_bad_input_errors_name_the_op():
    feat, hash_ = np.zeros((1, 4, 2), np.int64), np.zeros((1, 4, 2), np.int64)
    cases = [
        (lambda: K.input_reduce(np.zeros((4, 4, 1)), IN_T, 0, 3, FEAT_T), "input_reduce"),
        (lambda: K.sparse_conv2d(feat[0], hash_, FEAT_T, np.zeros((3, 3, 2, 1)), W_T,
                                 np.zeros(1), B_T, None, FEAT_T), "sparse_conv2d"),
        (lambda: K.sparse_conv2d(feat, hash_, FEAT_T, np.zeros((3, 3, 5, 1)), W_T,
                                 np.zeros(1), B_T, None, FEAT_T), "sparse_conv2d"),
        (lambda: K.sparse_activation(feat, hash_, FEAT_T, "softmax", FEAT_T), "sparse_activation"),
        (lambda: K.activation(feat, FEAT_T, "gelu", FEAT_T), "activation"),
        (lambda: K.activation(np.zeros(3), FEAT_T, "relu", FEAT_T), "activation"),
        (lambda: K.sparse_pool2d(feat, hash_, FEAT_T, 2, "sum", 4, 4, FEAT_T), "sparse_pool2d"),
        (lambda: K.dense(np.zeros((2, 3)), IN_T, np.zeros((4, 2)), W_T, np.zeros(2), B_T,
                         None, FEAT_T), "dense"),
        (lambda: K.sparse_flatten(feat, np.full((1, 4, 2), 9), 4, 4), "sparse_flatten"),
    ]
    for call, op in cases:
        with pytest.raises(ValueError, match=f"^{op}: ") as err:
            call()
        assert "\n" not in str(err.value)
