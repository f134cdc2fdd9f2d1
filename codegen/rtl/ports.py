"""Packing events into the flat port bit vectors of the rtl target and back (vectorised numpy).

Element k of width w occupies bits [k*w, (k+1)*w) of the port; bytes/words are little-endian.
"""

from __future__ import annotations

import numpy as np


def pack(raw: np.ndarray, width: int, word_bytes: int = 1) -> np.ndarray:
    """raw [B, K] integers -> [B, n_words] little-endian words (uint8 or uint32) of the K*width-bit port."""
    raw = np.asarray(raw, dtype=np.int64).reshape(len(raw), -1)
    bits = ((raw[:, :, None] >> np.arange(width, dtype=np.int64)) & 1).astype(np.uint8)
    flat = bits.reshape(len(raw), -1)
    n_bits = flat.shape[1]
    pad = (-n_bits) % (8 * word_bytes)
    if pad:
        flat = np.concatenate([flat, np.zeros((len(raw), pad), np.uint8)], axis=1)
    packed = np.packbits(flat, axis=1, bitorder="little")
    if word_bytes == 4:
        packed = np.ascontiguousarray(packed).view("<u4")
    return packed


def unpack(words: np.ndarray, layout) -> list[np.ndarray]:
    """[B, n_words] port words -> one raw array per (shape, width, signed) of `layout`, in order."""
    words = np.ascontiguousarray(words)
    b = len(words)
    bits = np.unpackbits(words.view(np.uint8).reshape(b, -1), axis=1, bitorder="little").astype(np.int64)
    out, start = [], 0
    for shape, width, signed in layout:
        count = int(np.prod(shape)) if len(shape) else 1
        chunk = bits[:, start:start + count * width].reshape(b, count, width)
        value = (chunk << np.arange(width, dtype=np.int64)).sum(axis=2)
        if signed:
            value = np.where(value >= (1 << (width - 1)), value - (1 << width), value)
        out.append(value.reshape(b, *shape))
        start += count * width
    return out
