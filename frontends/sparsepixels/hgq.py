"""HGQ2 0.2 fixed-point quantizers, read from a saved model and reproduced exactly.

A quantizer is `kif` (keep_negative k, integer bits i, fraction bits f, per element) or `kbi` (k,
bits b, integer bits i; f = b - i), with a rounding mode (TRN, RND = ties up, RND_CONV, ...) and an
overflow mode (WRAP, SAT, SAT_SYM). At inference HGQ2 computes, per element with i = round_even(i),
f = round_even(f) (kbi: b = round_even(b)):
    0                                          if k + i + f <= 0
    overflow(round(x * 2^f) / 2^f)             otherwise, over [k ? -2^i : 0, 2^i - 2^-f]
(SAT_SYM: [-(2^i - 2^-f) k, 2^i - 2^-f]; WRAP: modulo 2^(k+i)) -- except weight quantizers (is_weight)
in WRAP mode, which only round (kif always, kbi when its rounding is RND). The activation form is
the spx.quantize op; weights are quantized here, in float32 as HGQ2 does, and become exact integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_ir.fixed import FixedType
from spx_ir.text import SpxError

ROUND_MODES = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_SYM")


@dataclass
class Quantizer:
    """k, i, f per element (broadcast to the quantized tensor's shape, batch axis dropped)."""
    k: np.ndarray
    i: np.ndarray
    f: np.ndarray
    round_mode: str
    overflow_mode: str
    weight_wrap_rounds_only: bool

    def kif_table(self) -> np.ndarray:
        """(k, i, f) per element for spx.quantize: i raised to -f where HGQ2 clamps it, and every
        element HGQ2 zeroes (k + i + f <= 0) encoded as k = 0, i = -f (zero width)."""
        k, i, f = (a.astype(np.int64) for a in (self.k, self.i, self.f))
        zero = k + i + f <= 0
        return np.stack([np.where(zero, 0, k), np.where(zero, -f, np.maximum(i, -f)), f], axis=-1)

    def covering_type(self) -> FixedType:
        """The smallest fixed type holding every element's quantized values."""
        table = self.kif_table()
        used = table[..., 0] + table[..., 1] + table[..., 2] > 0
        if not used.any():
            return FixedType(1, 1, signed=False)
        k, i, f = table[..., 0][used], table[..., 1][used], table[..., 2][used]
        signed = bool(k.any())
        frac, int_bits = int(f.max()), int(i.max()) + int(signed)
        return FixedType(int_bits + frac, int_bits, signed)

    def apply_float32(self, x: np.ndarray) -> np.ndarray:
        """HGQ2's inference output for constant x (weights), computed in float32 as HGQ2 does."""
        x = np.asarray(x, dtype=np.float32)
        k, i, f = (np.asarray(a, dtype=np.float32) for a in (self.k, self.i, self.f))
        wrap = self.overflow_mode == "WRAP"
        if wrap and self.weight_wrap_rounds_only:
            return _round(x, f, self.round_mode)
        i = np.maximum(i, -f)
        eps, top = np.float32(2.0) ** -f, np.float32(2.0) ** i
        if not wrap:
            hi = top - eps
            lo = -hi * k if self.overflow_mode == "SAT_SYM" else -top * k
            x = np.where(x > hi, hi, np.where(x < lo, lo, x))
        y = _round(x, f, self.round_mode)
        if wrap:
            bias = k * np.float32(2.0) ** (i + k - 1)
            y = np.mod(y + bias, np.float32(2.0) ** (i + k)) - bias
        return np.where(self.k + self.i + self.f > 0, y, np.float32(0)).astype(np.float32)


def _round(x, f, mode: str) -> np.ndarray:
    scale = np.float32(2.0) ** f
    v = (x * scale).astype(np.float32)
    half = np.float32(0.5)
    r = {"TRN": lambda: np.floor(v), "RND": lambda: np.floor(v + half), "RND_CONV": lambda: np.round(v),
         "TRN_ZERO": lambda: np.trunc(v), "RND_ZERO": lambda: -np.floor(-np.abs(v) + half) * np.sign(v),
         "RND_MIN_INF": lambda: -np.floor(-v + half), "RND_INF": lambda: np.floor(np.abs(v) + half) * np.sign(v)}[mode]()
    return (r.astype(np.float32) / scale).astype(np.float32)


def _round_even(a) -> np.ndarray:
    return np.round(np.asarray(a, dtype=np.float32))


def read_quantizer(layer, path: tuple[str, ...], conf, shape: tuple[int, ...], what: str) -> Quantizer:
    """The quantizer saved under `path` of a layer's weights, for a tensor of `shape` (no batch axis).

    conf: its serialized QuantizerConfig ({'class_name': 'QuantizerConfig', 'config': {...}})."""
    where = f"{layer.where} {what}"
    if not isinstance(conf, dict) or conf.get("class_name") != "QuantizerConfig" or not isinstance(conf.get("config"), dict):
        raise SpxError(f"error: {where}: quantizer config is not an hgq2 QuantizerConfig; supported: hgq2 0.2.x")
    c = conf["config"]
    q_type = c.get("q_type")
    if q_type not in ("kif", "kbi"):
        raise SpxError(f"error: {where}: quantizer type {str(q_type)[:20]!r} is not supported; supported: kif, kbi")
    rnd, ovf = str(c.get("round_mode", "")).upper(), str(c.get("overflow_mode", "")).upper()
    if rnd not in ROUND_MODES:
        raise SpxError(f"error: {where}: rounding mode {rnd[:20]!r} is not supported (stochastic rounding never is); "
                       f"supported: {', '.join(ROUND_MODES)}")
    if ovf not in OVERFLOW_MODES:
        raise SpxError(f"error: {where}: overflow mode {ovf[:20]!r} is not supported; supported: {', '.join(OVERFLOW_MODES)}")
    for unsupported in ("scaler", "qnoise_factor", "affine", "bw_mapper"):
        if c.get(unsupported) not in (None, False):
            raise SpxError(f"error: {where}: quantizer option {unsupported} is not supported")
    values = layer.vars(*path, "quantizer")
    wrap = ovf == "WRAP"
    floats = [v for v in values if v.dtype.kind == "f"]
    ks = [v for v in values if v.dtype == np.uint8]
    if len(ks) != 1 or len(floats) < 2:
        raise SpxError(f"error: {where}: quantizer weights not found in model.weights.h5; supported: hgq2 0.2.x")
    # trainable first (kif: [i unless WRAP], f; kbi: b, [i unless WRAP]), then k, [i, decay if WRAP]
    if q_type == "kif":
        i_raw, f_raw = (floats[1], floats[0]) if wrap else (floats[0], floats[1])
        i, f = _round_even(i_raw), _round_even(f_raw)
    else:
        b, i = _round_even(floats[0]), _round_even(floats[1])
        f = b - i
    k = ks[0].astype(np.float32)
    try:
        k, i, f = (_broadcast(a, shape) for a in (k, i, f))
    except ValueError:
        raise SpxError(f"error: {where}: quantizer bit widths do not match the tensor shape {list(shape)}") from None
    is_weight, trainable = bool(c.get("is_weight", False)), bool(c.get("trainable", True))
    rounds_only = wrap and trainable and is_weight and (q_type == "kif" or rnd == "RND")
    return Quantizer(k, i, f, rnd, ovf, rounds_only)


def _broadcast(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == len(shape) + 1 and a.shape[0] == 1:
        a = a[0]
    return np.broadcast_to(a, shape).copy()


def to_raw(values: np.ndarray, q: Quantizer, where: str) -> tuple[np.ndarray, FixedType]:
    """Exact raw integers and the smallest fixed type holding quantized constants."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise SpxError(f"error: {where}: quantized values are not finite")
    frac = int(np.max(q.f, initial=0)) if values.size else 0
    raw = values * 2.0**frac
    if not np.array_equal(raw, np.round(raw)) or np.abs(raw).max(initial=0) >= 2.0**60:
        raise SpxError(f"error: {where}: quantized values are not exact fixed-point numbers of at most 60 bits")
    raw = raw.astype(np.int64)
    while frac > -60 and raw.size and np.all(raw % 2 == 0) and raw.any():  # drop common trailing zero bits
        raw, frac = raw // 2, frac - 1
    if not raw.any():
        return raw, FixedType(1, 1, signed=False)
    signed = bool((raw < 0).any())
    width = max(int(raw.max()).bit_length(), int((-raw.min() - 1) if signed else 0).bit_length()) + int(signed)
    return raw, FixedType(max(width, 1), max(width, 1) - frac, signed)
