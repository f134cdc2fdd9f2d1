"""Writes examples/neutrino_sparse_l.mlir: the seed's 63x63 neutrino SparsePixels model (N=20, 8 bit).

63x63x1 -> input_reduce N=20 -> sparse conv 7x7 1->1 -> relu -> sparse conv 7x7 1->3 -> relu
-> sparse avg pool 7 -> flatten 243 -> dense 16 -> relu -> dense 1 -> sigmoid (4,121 parameters).
Weights are seeded random values of the published 8-bit precisions (a trained model comes from
the Keras frontend); run `python examples/build_examples.py` to regenerate.
"""

from pathlib import Path

import numpy as np

from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.builder import ModelBuilder
from spx_ir.fixed import FixedType
from spx_ir.text import print_module

INPUT_T = FixedType(8, 1, signed=False)
WEIGHT_T = FixedType(8, 3)
ACT_T = FixedType(8, 2, signed=False, quant="RND_CONV", overflow="SAT")
PROB_T = FixedType(16, 0, signed=False)


def neutrino_sparse(n_max: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = lambda *shape: rng.integers(-64, 64, size=shape)  # noqa: E731  raw fixed<8,3>: [-2, 2)
    b = ModelBuilder("neutrino_sparse", [63, 63, 1], INPUT_T)
    feat, hash = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    in_t = INPUT_T
    for co in (1, 3):
        ci = 1
        conv_t = exact_sum_type(in_t, WEIGHT_T, WEIGHT_T, conv_terms(n_max, 7, 7, ci))
        y = b.sparse_conv2d(feat, hash, b.const(weights(7, 7, ci, co), WEIGHT_T), b.const(weights(co), WEIGHT_T), conv_t)
        feat, in_t = b.sparse_activation(y, hash, "relu", ACT_T), ACT_T
    feat, hash = b.sparse_pool2d(feat, hash, 7, "avg", 63, 63, ACT_T)
    x = b.sparse_flatten(feat, hash, 9, 9)
    d1_t = exact_sum_type(ACT_T, WEIGHT_T, WEIGHT_T, 243)
    x = b.activation(b.dense(x, b.const(weights(243, 16), WEIGHT_T), b.const(weights(16), WEIGHT_T), d1_t), "relu", ACT_T)
    d2_t = exact_sum_type(ACT_T, WEIGHT_T, WEIGHT_T, 16)
    x = b.dense(x, b.const(weights(16, 1), WEIGHT_T), b.const(weights(1), WEIGHT_T), d2_t)
    return b.finish([b.activation(x, "sigmoid", PROB_T)])


if __name__ == "__main__":
    out = Path(__file__).with_name("neutrino_sparse_l.mlir")
    out.write_text(print_module(neutrino_sparse()))
    print(f"wrote {out}")
