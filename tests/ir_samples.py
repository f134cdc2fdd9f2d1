"""Small IR modules shared by tests."""

import numpy as np

from spx_ir import dialect as spx
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedType

IN_T = FixedType(8, 1, signed=False)
W_T = FixedType(8, 3)
ACC_T = FixedType(24, 12)
ACT_T = FixedType(8, 2, signed=False, quant="RND_CONV", overflow="SAT")


def every_op_model(n_max: int = 4, seed: int = 0):
    """An 8x8x1 model that uses every spx op once (incl. both pool modes and explicit accumulators)."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.integers(-128, 128, size=s)  # noqa: E731
    b = ModelBuilder("every_op", [8, 8, 1], IN_T)
    feat, hash = b.input_reduce(b.input, n_max=n_max, threshold=0.25)
    y = b.sparse_conv2d(feat, hash, b.const(w(3, 3, 1, 2), W_T), b.const(w(2), W_T), FixedType(16, 6), ACC_T)
    # per-element quantizers holding fixed<16,6> exactly (k=1, i=5, f=10): present, values unchanged
    y = b._add(spx.SparseQuantizeOp(y, hash, np.tile([1, 5, 10], (8, 8, 2, 1)), "RND", "WRAP", FixedType(16, 6))).result
    y = b.sparse_activation(y, hash, "relu", ACT_T)
    y, hash = b.sparse_pool2d(y, hash, 2, "max", 8, 8, ACT_T)
    y = b.sparse_activation(y, hash, "sigmoid", FixedType(8, 0, signed=False))
    y, hash = b.sparse_pool2d(y, hash, 2, "avg", 4, 4, ACT_T)
    x = b.sparse_flatten(y, hash, 2, 2)
    x = b.dense(x, b.const(w(8, 5), W_T), b.const(w(5), W_T), FixedType(16, 6), ACC_T)
    x = b._add(spx.QuantizeOp(x, np.tile([1, 5, 10], (5, 1)), "TRN", "SAT", FixedType(16, 6))).result
    x = b.activation(x, "relu", ACT_T)
    return b.finish([b.activation(x, "softmax", FixedType(16, 1, signed=False))])
