"""The spx dialect: textual round trips, verifiers, the graph view."""

import re
from pathlib import Path

import numpy as np
import pytest

from spx_ir.dialect import SPX
from spx_ir.graph import critical_path, dataflow_graph, topological_ops
from spx_ir.builder import ModelBuilder
from spx_ir.text import SpxError, parse_module, print_module, verify
from tests.ir_samples import IN_T, W_T, every_op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


def test_every_op_round_trips():
    text = print_module(every_op_model())
    used = set(re.findall(r"= (spx\.[a-z_0-9]+)", text))
    assert used == {op.name for op in SPX.operations}, "sample must use every op"
    assert print_module(parse_module(text)) == text


def test_neutrino_example_round_trips_byte_identically():
    text = EXAMPLE.read_text()
    assert print_module(parse_module(text, str(EXAMPLE))) == text


def test_fixed_type_custom_form_round_trips():
    src = "builtin.module {\n  %0 = spx.const [1, -2] : tensor<2x!spx.fixed<8, -2, signed, RND, SAT_SYM>>\n}\n"
    out = print_module(parse_module(src))
    assert "!spx.fixed<8, -2, RND, SAT_SYM>" in out  # default 'signed' is dropped
    assert print_module(parse_module(out)) == out


# Each case: (text to replace everywhere in the every-op sample, replacement, expected message fragment).
REJECTIONS = [
    ("n_max = 4 : i64", "n_max = 0 : i64", "spx.input_reduce: n_max must be positive"),
    ("tensor<4x2xui4>", "tensor<4x2xui3>", "spx.input_reduce: hash ui3 cannot hold coordinates of a 8x8 image (needs ui4)"),
    ("tensor<4x1x!spx.fixed<8, 1, unsigned>>", "tensor<3x1x!spx.fixed<8, 1, unsigned>>",
     "spx.input_reduce: feat shape [3, 1] does not match expected [4, 1]"),
    ("size = 2 : i64, mode = \"max\"", "size = 0 : i64, mode = \"max\"", "spx.sparse_pool2d: size must be positive"),
    ("mode = \"max\"", "mode = \"mean\"", "spx.sparse_pool2d: unknown mode 'mean', expected one of avg, max"),
    ("{height = 2 : i64, width = 2 : i64}", "{height = 3 : i64, width = 2 : i64}",
     "spx.sparse_flatten: height x width = 3x2 does not match the 2x2 image its hash indexes"),
    ("{kind = \"sigmoid\"}", "{kind = \"gelu\"}", "spx.sparse_activation: unknown kind 'gelu'"),
    ("{kind = \"softmax\"}", "{kind = \"swish\"}", "spx.activation: unknown kind 'swish'"),
    ("spx.sparse_conv2d %1, %2, %3, %4 {", "spx.sparse_conv2d %1, %2, %3, %4 {pixel_parallel = 3 : i64, ",
     "spx.sparse_conv2d: pixel_parallel=3 must be a positive divisor of the loop trip count 4"),
    ("tensor<8x5x!spx.fixed<8, 3>>", "tensor<9x5x!spx.fixed<8, 3>>", "spx.const: 40 values given for a tensor of shape [9, 5] (45 values)"),
    ("!spx.fixed<24, 12>", "!spx.fixed<0, 12>", "!spx.fixed: fixed-point width must be >= 1"),
    ("!spx.fixed<24, 12>", "!spx.fixed<24, 12, RND_HALF>", "unknown quantization mode 'RND_HALF'"),
    ("tensor<4x2xui3>", "tensor<4x2xsi3>", "spx.sparse_pool2d: hash_out must have unsigned integer elements"),
]


@pytest.mark.parametrize("old,new,message", REJECTIONS)
def test_verifier_and_parser_rejections(old, new, message):
    text = print_module(every_op_model())
    assert old in text, f"sample text lacks {old!r}"
    with pytest.raises(SpxError) as err:
        parse_module(text.replace(old, new), "model.mlir")
    msg = str(err.value)
    assert "\n" not in msg.strip() and msg.startswith("model.mlir")
    assert message in msg


def _conv_model(weight_shape, bias_shape, dense_in=8):
    """every-op-like chain built with deliberately mismatched weights (the builder does not check)."""
    b = ModelBuilder("bad", [8, 8, 1], IN_T)
    feat, hash = b.input_reduce(b.input, n_max=4)
    y = b.sparse_conv2d(feat, hash, b.const(np.zeros(weight_shape, int), W_T), b.const(np.zeros(bias_shape, int), W_T), W_T)
    x = b.sparse_flatten(y, hash, 8, 8)
    x = b.dense(x, b.const(np.zeros((dense_in, 3), int), W_T), b.const(np.zeros(3, int), W_T), W_T)
    return b.finish([x])


@pytest.mark.parametrize(
    "weight_shape,bias_shape,dense_in,message",
    [
        ((3, 3, 2, 2), (2,), 128, "spx.sparse_conv2d: weight expects 2 input channels but feat has 1"),
        ((3, 3, 1, 2), (3,), 128, "spx.sparse_conv2d: bias shape [3] does not match expected [2]"),
        ((3, 3, 1, 2), (2,), 100, "spx.dense: weight [100, 3] expects 100 inputs but input has shape [128]"),
    ],
)
def test_shape_mismatches_name_the_op_and_both_shapes(weight_shape, bias_shape, dense_in, message):
    with pytest.raises(SpxError, match=re.escape(message)):
        verify(_conv_model(weight_shape, bias_shape, dense_in), "built")


def test_const_payload_out_of_range_is_rejected():
    text = "builtin.module {\n  %0 = spx.const [127, 128] : tensor<2x!spx.fixed<8, 3>>\n}\n"
    with pytest.raises(SpxError, match=r"spx.const: raw value 128 is out of range \[-128, 127\] of fixed<8,3>"):
        parse_module(text)


def test_malformed_ir_reports_line_and_column():
    text = "builtin.module {\n  %0 = spx.const [1] : tensor<1x!spx.fixed<8 3>>\n}\n"
    with pytest.raises(SpxError, match=r"^m\.mlir:2:\d+: error: "):
        parse_module(text, "m.mlir")


def test_graph_view_orders_producers_first():
    module = every_op_model()
    g = dataflow_graph(module)
    order = topological_ops(module)
    position = {op: i for i, op in enumerate(order)}
    assert len(order) == g.number_of_nodes() == 17  # 4 consts + 12 layers + return
    assert g.number_of_edges() == 20  # parallel feat+hash uses are one edge
    for src, dst in g.edges:
        assert position[src] < position[dst]
    assert order[-1].name == "func.return"
    # consts feed exactly the op that uses them
    for op in order:
        if op.name == "spx.const":
            assert g.out_degree(op) == 1


def test_critical_path_follows_the_heaviest_chain():
    module = every_op_model()
    cost = lambda op: 10.0 if op.name == "spx.sparse_conv2d" else 1.0  # noqa: E731
    total, path = critical_path(module, cost)
    names = [op.name for op in path]
    assert names[0] == "spx.input_reduce" and names[-1] == "func.return"
    assert "spx.sparse_conv2d" in names and "spx.const" not in names[1:]
    assert total == 10.0 + len(names) - 1
