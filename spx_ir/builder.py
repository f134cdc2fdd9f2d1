"""IR builder: assemble a model function (`func.func`) of spx ops step by step.

    b = ModelBuilder("neutrino", [63, 63, 1], FixedType(8, 1, signed=False))
    feat, hash = b.input_reduce(b.input, n_max=20, threshold=0.0)
    ...
    module = b.finish([y])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, Region, SSAValue

from spx_ir import dialect as spx
from spx_ir.fixed import FixedType


class ModelBuilder:
    """Appends spx ops to the body of one model function."""

    def __init__(self, name: str, input_shape: Sequence[int], input_t: FixedType):
        self.name = name
        self.block = Block(arg_types=[spx.tensor(input_shape, input_t)])
        self.input: SSAValue = self.block.args[0]

    def _add(self, op: Operation) -> Operation:
        self.block.add_op(op)
        return op

    def const(self, raw: np.ndarray, t: FixedType) -> SSAValue:
        """A constant from raw integers of type `t`."""
        return self._add(spx.ConstOp(np.asarray(raw, dtype=np.int64), t)).result

    def const_float(self, values: np.ndarray, t: FixedType) -> SSAValue:
        """A constant from floats, quantized into `t`."""
        from spx_ir.fixed import quantize

        return self.const(quantize(np.asarray(values, dtype=np.float64), t), t)

    def input_reduce(self, image: SSAValue, n_max: int, threshold: float = 0.0, feat_t: FixedType | None = None):
        op = self._add(spx.InputReduceOp(image, n_max, threshold, feat_t))
        return op.feat, op.hash

    def sparse_conv2d(self, feat, hash, weight, bias, out_t: FixedType, accum_t: FixedType | None = None) -> SSAValue:
        return self._add(spx.SparseConv2DOp(feat, hash, weight, bias, out_t, accum_t)).result

    def sparse_activation(self, feat, hash, kind: str, out_t: FixedType) -> SSAValue:
        return self._add(spx.SparseActivationOp(feat, hash, kind, out_t)).result

    def sparse_pool2d(self, feat, hash, size: int, mode: str, height: int, width: int, out_t: FixedType):
        op = self._add(spx.SparsePool2DOp(feat, hash, size, mode, height, width, out_t))
        return op.feat_out, op.hash_out

    def sparse_flatten(self, feat, hash, height: int, width: int) -> SSAValue:
        return self._add(spx.SparseFlattenOp(feat, hash, height, width)).result

    def dense(self, x, weight, bias, out_t: FixedType, accum_t: FixedType | None = None) -> SSAValue:
        return self._add(spx.DenseOp(x, weight, bias, out_t, accum_t)).result

    def activation(self, x, kind: str, out_t: FixedType) -> SSAValue:
        return self._add(spx.ActivationOp(x, kind, out_t)).result

    def finish(self, outputs: Sequence[SSAValue]) -> ModuleOp:
        """Closes the function with `func.return` and wraps it in a module."""
        self.block.add_op(func.ReturnOp(*outputs))
        ftype = func.FunctionType.from_lists([self.input.type], [o.type for o in outputs])
        fn = func.FuncOp(self.name, ftype, Region(self.block))
        return ModuleOp([fn])


def model_function(module: ModuleOp) -> func.FuncOp:
    """The single model function of a module (user error if there is none or several)."""
    from spx_ir.text import SpxError

    fns = [op for op in module.ops if isinstance(op, func.FuncOp)]
    if len(fns) != 1:
        raise SpxError(f"error: expected exactly one model function (func.func) in the module, found {len(fns)}")
    return fns[0]


def model_input(fn: func.FuncOp):
    """The model function's single argument, the image (user error otherwise: every target reads one
    image, and a hash given as an argument would bypass input_reduce's coordinate checks)."""
    from spx_ir.text import SpxError

    args = fn.body.block.args
    if len(args) != 1:
        raise SpxError(f"error: the model function @{fn.sym_name.data} must take exactly one argument "
                       f"(the image), it takes {len(args)}")
    return args[0]
