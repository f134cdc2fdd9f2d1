"""Exact accumulator types: the rule every target uses when an op has no `accum_type`.

A sum of T products of `in_t` x `w_t` plus one bias of `b_t` is held exactly by
    sum_type(accumulator_type(product_type(in_t, w_t), T), b_t).
Sparse conv: T = min(N, Kh*Kw) * Ci, because distinct active pixels occupy distinct positions,
so at most Kh*Kw of the N slots fall inside one kernel window. Dense: T = number of inputs.
"""

from __future__ import annotations

from spx_ir.fixed import FixedType, accumulator_type, product_type, sum_type


def exact_sum_type(in_t: FixedType, w_t: FixedType, b_t: FixedType, n_terms: int) -> FixedType:
    """Type holding `b + sum of n_terms products` exactly."""
    return sum_type(accumulator_type(product_type(in_t, w_t), n_terms), b_t)


def conv_terms(n_max: int, kh: int, kw: int, ci: int) -> int:
    """Most products that can meet in one sparse-conv output."""
    return min(n_max, kh * kw) * ci


def op_accum_type(op) -> FixedType:
    """The accumulator type of a sparse_conv2d or dense op: its `accum_type`, else the exact one."""
    from spx_ir import dialect as spx

    if op.accum_type is not None:
        return op.accum_type.spec
    elem = lambda v: v.type.element_type.spec  # noqa: E731
    if isinstance(op, spx.SparseConv2DOp):
        n, ci = op.feat.type.get_shape()
        kh, kw, _, _ = op.weight.type.get_shape()
        terms = conv_terms(n, kh, kw, ci)
        return exact_sum_type(elem(op.feat), elem(op.weight), elem(op.bias), terms)
    if isinstance(op, spx.DenseOp):
        (n_in,) = op.input.type.get_shape()
        return exact_sum_type(elem(op.input), elem(op.weight), elem(op.bias), n_in)
    raise TypeError(f"{op.name} has no accumulator")
