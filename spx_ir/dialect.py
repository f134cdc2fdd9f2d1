"""The `spx` dialect: fixed-point types and the sparse-CNN ops of DESIGN.md §3.

A sparse tensor is two SSA values: `feat : tensor<N x C x !spx.fixed<..>>` and
`hash : tensor<N x 2 x uiB>` (1-based pixel coordinates, (0, 0) = empty slot).
Every op result carries its fixed-point type; accumulator types are optional
properties (absent = exact accumulation). Schedule properties (parallel factors,
reuse factor, input_reduce's search) are optional too; what an absent one means is
spx_ir.schedule's rule (one place for every target and pass).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from spx_ir.accum import conv_terms, exact_sum_type
from spx_ir.fixed import (INT64_WIDTH, OVERFLOW_MODES, QUANT_MODES, FixedPointError, FixedType, average_type,
                          check_assignable, product_type, sum_type)
from spx_ir.tables import check_table

# --------------------------------------------------------------------------- types


@irdl_attr_definition
class FixedPointType(ParametrizedAttribute, TypeAttribute):
    """`!spx.fixed<W, I[, unsigned][, Q[, O]]>`: ap_fixed<W, I, Q, O> (defaults: signed, TRN, WRAP)."""

    name = "spx.fixed"
    width: IntAttr
    int_bits: IntAttr
    signed: IntAttr
    quant: StringAttr
    overflow: StringAttr

    def __init__(self, t: FixedType):
        super().__init__(
            IntAttr(t.width),
            IntAttr(t.int_bits),
            IntAttr(int(t.signed)),
            StringAttr(t.quant),
            StringAttr(t.overflow),
        )

    @property
    def spec(self) -> FixedType:
        """The numeric type this attribute stands for."""
        return FixedType(
            self.width.data,
            self.int_bits.data,
            bool(self.signed.data),
            self.quant.data,
            self.overflow.data,
        )

    def verify(self) -> None:
        try:
            self.spec
        except FixedPointError as err:
            raise VerifyException(f"!spx.fixed: {err}") from None

    def print_parameters(self, printer: Printer) -> None:
        t = self.spec
        parts = [str(t.width), str(t.int_bits)]
        if not t.signed:
            parts.append("unsigned")
        if t.quant != "TRN" or t.overflow != "WRAP":
            parts.append(t.quant)
        if t.overflow != "WRAP":
            parts.append(t.overflow)
        printer.print_string("<" + ", ".join(parts) + ">")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            width = parser.parse_integer(allow_negative=False, context_msg=" (fixed width)")
            parser.parse_punctuation(",")
            int_bits = parser.parse_integer(context_msg=" (fixed integer bits)")
            words: list[str] = []
            while parser.parse_optional_punctuation(",") is not None:
                words.append(parser.parse_identifier(" (signedness, quantization or overflow mode)"))
        signed = True
        if words and words[0] in ("signed", "unsigned"):
            signed = words.pop(0) == "signed"
        quant = words.pop(0) if words else "TRN"
        overflow = words.pop(0) if words else "WRAP"
        if words:
            parser.raise_error(f"!spx.fixed: unexpected extra parameters {words}")
        if quant not in QUANT_MODES:
            parser.raise_error(f"!spx.fixed: unknown quantization mode '{quant}', expected one of {', '.join(QUANT_MODES)}")
        if overflow not in OVERFLOW_MODES:
            parser.raise_error(f"!spx.fixed: unknown overflow mode '{overflow}', expected one of {', '.join(OVERFLOW_MODES)}")
        try:
            FixedType(width, int_bits, signed, quant, overflow)
        except FixedPointError as err:
            parser.raise_error(f"!spx.fixed: {err}")
        return (IntAttr(width), IntAttr(int_bits), IntAttr(int(signed)), StringAttr(quant), StringAttr(overflow))


def fixed(width: int, int_bits: int, signed: bool = True, quant: str = "TRN", overflow: str = "WRAP") -> FixedPointType:
    """Shorthand for a `!spx.fixed` type."""
    return FixedPointType(FixedType(width, int_bits, signed, quant, overflow))


def hash_width(height: int, width: int) -> int:
    """Bits needed for 1-based coordinates up to max(H, W) (DESIGN.md §2)."""
    return max(1, math.ceil(math.log2(max(height, width) + 1)))


def hash_type(n: int, bits: int) -> TensorType:
    return TensorType(IntegerType(bits, Signedness.UNSIGNED), [n, 2])


def tensor(shape: Sequence[int], t: FixedType | FixedPointType) -> TensorType:
    elem = t if isinstance(t, FixedPointType) else FixedPointType(t)
    return TensorType(elem, list(shape))


# ----------------------------------------------------------------- verifier helpers

# Largest image side (pixels) an input_reduce accepts: 13-bit hash coordinates. A sparse FPGA design
# holds the whole image's activity mask in registers; 4096 x 4096 is far beyond that already.
MAX_IMAGE_SIDE = 4096

SPARSE_ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh")
TABLE_KINDS = ("sigmoid", "tanh", "softmax")
ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh", "softmax")
POOL_MODES = ("avg", "max")
# Semantic variants (DESIGN.md §2): the first value is the §3 default (attribute absent).
ACTIVITY_VARIANTS = ("any", "channel0")      # input_reduce: a pixel is active if any channel / channel 0 > t
BIAS_VARIANTS = ("active", "nonzero")         # sparse_conv2d: bias at every active pixel / where the sum != 0
INACTIVE_VARIANTS = ("skip", "zero")          # sparse_pool2d max: inactive window pixels skipped / count as 0
HGQ_OVERFLOW_MODES = ("WRAP", "SAT", "SAT_SYM")
INPUT_SEARCHES = ("tree", "stream")  # input_reduce hardware: priority tree per slot | raster scan


def _shape(op: IRDLOperation, value: SSAValue, what: str) -> tuple[int, ...]:
    t = value.type
    if not isinstance(t, TensorType):
        raise VerifyException(f"{op.name}: {what} must be a tensor, got {t}")
    return tuple(t.get_shape())


def _fixed_tensor(op: IRDLOperation, value: SSAValue, what: str, rank: int | None = None) -> tuple[int, ...]:
    shape = _shape(op, value, what)
    if not isinstance(value.type.element_type, FixedPointType):  # type: ignore[attr-defined]
        raise VerifyException(f"{op.name}: {what} must have !spx.fixed elements, got {value.type}")
    if rank is not None and len(shape) != rank:
        raise VerifyException(f"{op.name}: {what} must have rank {rank}, got shape {list(shape)}")
    if any(d <= 0 for d in shape):
        raise VerifyException(f"{op.name}: {what} has a non-positive dimension in {list(shape)}")
    return shape


def _hash_tensor(op: IRDLOperation, value: SSAValue, what: str, n: int) -> int:
    """Checks a hash operand/result `tensor<N x 2 x uiB>`; returns B."""
    shape = _shape(op, value, what)
    elem = value.type.element_type  # type: ignore[attr-defined]
    if not (isinstance(elem, IntegerType) and elem.signedness.data == Signedness.UNSIGNED):
        raise VerifyException(f"{op.name}: {what} must have unsigned integer elements, got {value.type}")
    if shape != (n, 2):
        raise VerifyException(f"{op.name}: {what} shape {list(shape)} does not match features: expected [{n}, 2]")
    return elem.width.data


def _expect_shape(op: IRDLOperation, what: str, got: Sequence[int], expected: Sequence[int]) -> None:
    if tuple(got) != tuple(expected):
        raise VerifyException(f"{op.name}: {what} shape {list(got)} does not match expected {list(expected)}")


def _positive(op: IRDLOperation, what: str, value: int) -> None:
    if value < 1:
        raise VerifyException(f"{op.name}: {what} must be positive, got {value}")


def _divides(op: IRDLOperation, what: str, factor: IntegerAttr | None, trip: int) -> None:
    if factor is None:
        return
    f = factor.value.data
    if f < 1 or trip % f:
        raise VerifyException(f"{op.name}: {what}={f} must be a positive divisor of the loop trip count {trip}")


def _where(op: IRDLOperation) -> str:
    """`spx.dense (layer 'dense1')`: the op and, when it has one, the layer it was lowered from."""
    layer = op.attributes.get("layer")
    return f"{op.name} (layer '{layer.data}')" if isinstance(layer, StringAttr) else op.name


def _accum(op: IRDLOperation, in_value: SSAValue, n_terms: int) -> None:
    """accum_type is !spx.fixed, and every type the accumulation needs fits MAX_WIDTH."""
    acc = op.accum_type  # type: ignore[attr-defined]
    if acc is not None and not isinstance(acc, FixedPointType):
        raise VerifyException(f"{op.name}: accum_type must be !spx.fixed, got {acc}")
    in_t, w_t = in_value.type.element_type.spec, op.weight.type.element_type.spec  # type: ignore[attr-defined]
    b_t = op.bias.type.element_type.spec  # type: ignore[attr-defined]
    try:  # the C++ step `acc += x * w` computes in sum_type(acc, product) (ap_fixed's plus type)
        acc_t = exact_sum_type(in_t, w_t, b_t, n_terms) if acc is None else acc.spec
        step_t = sum_type(acc_t, product_type(in_t, w_t))
    except FixedPointError as err:
        raise VerifyException(f"{_where(op)}: {err}") from None
    _assignable(op, (b_t, acc_t), (step_t, acc_t), (acc_t, op.result.type.element_type.spec))  # type: ignore[attr-defined]


def _assignable(op: IRDLOperation, *pairs: tuple[FixedType, FixedType]) -> None:
    """Every (src, dst) conversion the op makes is one ap_fixed can compute (spx_ir.fixed.check_assignable)."""
    for src, dst in pairs:
        try:
            check_assignable(src, dst)
        except FixedPointError as err:
            raise VerifyException(f"{_where(op)}: {err}") from None


def _table(op: IRDLOperation, kind: str) -> None:
    """table_size and the result type of a table-based activation (no table_size on the others)."""
    size = op.table_size  # type: ignore[attr-defined]
    if kind not in TABLE_KINDS:
        if size is not None:
            raise VerifyException(f"{_where(op)}: table_size applies to {', '.join(TABLE_KINDS)} only, not {kind}")
        return
    try:
        check_table(1024 if size is None else size.value.data, op.result.type.element_type.spec)  # type: ignore[attr-defined]
    except ValueError as err:
        raise VerifyException(f"{_where(op)}: {str(err).removeprefix('tables: ')}") from None


def image_size_of(hash_value: SSAValue) -> tuple[int, int] | None:
    """(H, W) of the image a hash value indexes, when its producer says so."""
    owner = hash_value.owner
    if isinstance(owner, InputReduceOp):
        h, w, _ = owner.image.type.get_shape()  # type: ignore[attr-defined]
        return h, w
    if isinstance(owner, SparsePool2DOp):
        p = owner.size.value.data
        return owner.height.value.data // p, owner.width.value.data // p
    return None


def _check_image_size(op: IRDLOperation, hash_value: SSAValue, height: int, width: int) -> None:
    size = image_size_of(hash_value)
    if size is not None and size != (height, width):
        raise VerifyException(
            f"{op.name}: height x width = {height}x{width} does not match the {size[0]}x{size[1]} image its hash indexes"
        )


def _variant(op: IRDLOperation, what: str, attr: StringAttr | None, valid: Sequence[str]) -> None:
    if attr is not None and attr.data not in valid:
        raise VerifyException(f"{op.name}: unknown {what} '{attr.data}', expected one of {', '.join(valid)}")


def variant(op: IRDLOperation, what: str) -> str:
    """The value of a semantic-variant property, or its §3 default when absent."""
    defaults = {"activity": ACTIVITY_VARIANTS, "bias_mode": BIAS_VARIANTS, "inactive": INACTIVE_VARIANTS}
    attr = getattr(op, what)
    return defaults[what][0] if attr is None else attr.data


def _int(value: int) -> IntegerAttr:
    return IntegerAttr(value, i64)


def _opt_int(value: int | None) -> IntegerAttr | None:
    return None if value is None else _int(value)


# --------------------------------------------------------------------------- ops


@irdl_op_definition
class ConstOp(IRDLOperation):
    """Weights or constants: raw integers (row-major) interpreted in the result's fixed type.

    Custom form: `%w = spx.const [1, -2, 3, 4] : tensor<2x2x!spx.fixed<8, 3>>`.
    """

    name = "spx.const"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, raw, t: FixedType | FixedPointType):  # raw: numpy integer array
        super().__init__(properties={"value": _payload(raw.shape, raw)}, result_types=[tensor(raw.shape, t)])

    def verify_(self) -> None:
        shape = _fixed_tensor(self, self.result, "result")
        payload_type = self.value.type
        if not isinstance(payload_type.element_type, IntegerType):
            raise VerifyException(f"{self.name}: payload must be integers (raw fixed-point values), got {payload_type}")
        _expect_shape(self, "payload", payload_type.get_shape(), shape)
        t = self.result.type.element_type.spec
        if t.width > INT64_WIDTH:
            raise VerifyException(f"{self.name}: constants are stored as 64-bit raw integers; {t} is wider than {INT64_WIDTH} bits")
        if len(self.value) > MAX_CONST_VALUES:
            raise VerifyException(f"{self.name}: {len(self.value)} values, more than the limit of {MAX_CONST_VALUES}")
        raw = _values(self.value)
        bad = raw[(raw < t.min_raw) | (raw > t.max_raw)]
        if bad.size:
            raise VerifyException(f"{self.name}: raw value {bad[0]} is out of range [{t.min_raw}, {t.max_raw}] of {t}")

    def raw(self):
        """The payload as a numpy int64 array of the result's shape."""
        return _values(self.value).reshape(self.result.type.get_shape()).copy()

    def print(self, printer: Printer) -> None:
        printer.print_string(" [")
        for k, piece in enumerate(_decimal_pieces(_values(self.value))):
            printer.print_string(piece if k == 0 else ", " + piece)
        printer.print_string("]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser) -> ConstOp:
        values = _parse_values(parser)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        result_type = parser.parse_type()
        if not isinstance(result_type, TensorType):
            parser.raise_error(f"spx.const: expected a tensor type, got {result_type}")
        shape = result_type.get_shape()
        if len(values) != math.prod(shape):
            parser.raise_error(f"spx.const: {len(values)} values given for a tensor of shape {list(shape)} ({math.prod(shape)} values)")
        op = cls.create(properties={"value": _payload(shape, values)}, result_types=[result_type], attributes=attrs)
        return op


MAX_CONST_VALUES = 1 << 26  # 64 Mi weights (512 MB as int64): far beyond any FPGA's on-chip memory
_FAST_LIST = 1 << 12  # value lists at least this long (characters) are read by numpy
_LIST_CHARS = b"0123456789,- \t\r\n"


def _parse_values(parser):
    """The `[i, j, ...]` of spx.const. xDSL reads such a list token by token (~10 us a value: 150 s for a
    50 MB file), so a long list of plain decimal integers is read by numpy straight from the text and
    the parser resumes after its `]`. Short lists, and any list holding something else (comments, hex,
    `true`), take xDSL's own path; a long list that is not plain decimal integers is an error at the first
    offending character. Limits: MAX_CONST_VALUES values, integers within int64. (Uses the parser's
    current token and `_resume_from`: private API of the pinned xDSL 0.74.0, covered by tests/test_ir_text.py.)"""
    import warnings

    import numpy as np

    token = parser._current_token
    text: str = parser.lexer.input.content
    start = token.span.start
    if token.text != "[" or text.find("]", start, start + _FAST_LIST) >= 0 or len(text) - start < _FAST_LIST:
        return parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_integer)

    def fail(msg: str, at: int):
        parser.raise_error(f"spx.const: {msg}", at, at + 1)

    end = text.find("]", start)
    if end < 0:
        fail("the value list has no closing ']'", start)

    body = text[start + 1 : end]
    raw = body.encode() if body.isascii() else b"?"
    if raw.translate(None, _LIST_CHARS):
        fail("a long value list must hold plain decimal integers (no comments)",
             start + 1 + re.search(r"[^0-9,\- \t\r\n]", body).start())
    count = raw.count(b",") + 1
    if count > MAX_CONST_VALUES:
        fail(f"{count} values, more than the limit of {MAX_CONST_VALUES}", start)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy only warns when it stops early at malformed text
        try:
            values = np.fromstring(raw, dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or len(values) != count or not _plain_items(raw.translate(None, b" \t\r\n")):
        fail("malformed value list (expected decimal integers separated by commas)",
             start + 1 + re.match(r"(?:\s*+-?\s*+\d++\s*+,)*+", body).end())
    if values.max() == np.iinfo(np.int64).max or values.min() == np.iinfo(np.int64).min:
        fail("a value is beyond the 64-bit integer range", start)
    parser._resume_from(end + 1)
    return values


def _plain_items(compact: bytes) -> bool:
    """Whether `compact` (digits, ',' and '-' only) is `-?digits(,-?digits)*`, by byte searches: numpy's
    reader, which has already rejected digits split by blanks, reads an empty item as 0."""
    return ((compact[:1].isdigit() or compact[:1] == b"-") and compact[-1:].isdigit() and b",," not in compact
            and b"-," not in compact and compact.count(b"-") == compact.count(b",-") + compact.startswith(b"-"))


def _decimal_pieces(values, size: int = 1 << 18):
    """`values` as comma-separated decimals, piece by piece (bounded memory), through a table of the
    strings when the values span a small range, as weights do (5x faster than str() per value)."""
    import numpy as np

    if values.size == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    table = np.array([str(v) for v in range(lo, hi + 1)], dtype=object) if hi - lo < 1 << 16 else None
    for i in range(0, values.size, size):
        chunk = values[i : i + size]
        yield ", ".join(table[chunk - lo].tolist() if table is not None else map(str, chunk.tolist()))


def _values(attr: DenseIntOrFPElementsAttr):
    """A dense integer payload as a flat numpy int64 array (an i64 payload: a read-only view of its bytes)."""
    import numpy as np

    t = attr.get_element_type()
    if isinstance(t, IntegerType) and t.width.data == 64 and t.signedness.data != Signedness.UNSIGNED:
        return np.frombuffer(attr.data.data, dtype="<i8").astype(np.int64, copy=False)
    values = attr.get_values()  # another integer type (generic form): Python ints, kept when past int64
    wide = any(not -(2**63) <= v < 2**63 for v in values)
    return np.array(values, dtype=object if wide else np.int64)


def _payload(shape: Sequence[int], values) -> DenseIntOrFPElementsAttr:
    """A tensor<shape x i64> payload; numpy integer arrays are packed directly (xDSL's from_list
    normalises value by value: slow for large weight and quantizer tables)."""
    import numpy as np

    if isinstance(values, np.ndarray) and (values.dtype.kind == "i" or (values.dtype.kind == "u" and values.max(initial=0) < 2**63)):
        data = np.ascontiguousarray(values.reshape(-1), dtype="<i8").tobytes()
        return DenseIntOrFPElementsAttr(TensorType(i64, list(shape)), BytesAttr(data))
    return DenseIntOrFPElementsAttr.from_list(TensorType(i64, list(shape)), [int(v) for v in values])


@irdl_op_definition
class InputReduceOp(IRDLOperation):
    """Keeps the first `n_max` active pixels (any channel > threshold) in raster order."""

    name = "spx.input_reduce"
    image = operand_def(TensorType)
    n_max = prop_def(IntegerAttr)
    threshold = prop_def(FloatAttr)
    activity = opt_prop_def(StringAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    search = opt_prop_def(StringAttr)
    feat = result_def(TensorType)
    hash = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$image attr-dict `:` type($image) `->` type($feat) `,` type($hash)"

    def __init__(self, image: SSAValue, n_max: int, threshold: float, feat_t: FixedType | None = None):
        h, w, c = image.type.get_shape()
        feat_t = feat_t or image.type.element_type.spec
        super().__init__(
            operands=[image],
            properties={"n_max": _int(n_max), "threshold": FloatAttr(float(threshold), f64)},
            result_types=[tensor([n_max, c], feat_t), hash_type(n_max, hash_width(h, w))],
        )

    def verify_(self) -> None:
        h, w, c = _fixed_tensor(self, self.image, "image", rank=3)
        if max(h, w) > MAX_IMAGE_SIDE:
            raise VerifyException(f"{_where(self)}: image {h}x{w} exceeds the largest supported side {MAX_IMAGE_SIDE}")
        n = self.n_max.value.data
        _positive(self, "n_max", n)
        _expect_shape(self, "feat", _fixed_tensor(self, self.feat, "feat", rank=2), (n, c))
        bits = _hash_tensor(self, self.hash, "hash", n)
        if bits < hash_width(h, w):
            raise VerifyException(
                f"{self.name}: hash ui{bits} cannot hold coordinates of a {h}x{w} image (needs ui{hash_width(h, w)})"
            )
        if not math.isfinite(self.threshold.value.data):
            raise VerifyException(f"{self.name}: threshold must be finite")
        _variant(self, "activity", self.activity, ACTIVITY_VARIANTS)
        _assignable(self, (self.image.type.element_type.spec, self.feat.type.element_type.spec))
        _divides(self, "pixel_parallel", self.pixel_parallel, n)
        if self.search is not None and self.search.data not in INPUT_SEARCHES:
            raise VerifyException(f"{self.name}: unknown search '{self.search.data}', expected one of "
                                  f"{', '.join(INPUT_SEARCHES)}")


@irdl_op_definition
class SparseConv2DOp(IRDLOperation):
    """Sparsity-preserving 'same' convolution, stride 1, bias at every active pixel."""

    name = "spx.sparse_conv2d"
    feat = operand_def(TensorType)
    hash = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    accum_type = opt_prop_def(Attribute)
    bias_mode = opt_prop_def(StringAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    filter_parallel = opt_prop_def(IntegerAttr)
    channel_parallel = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$feat `,` $hash `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)"

    def __init__(self, feat: SSAValue, hash: SSAValue, weight: SSAValue, bias: SSAValue, out_t: FixedType, accum_t: FixedType | None = None):
        n = feat.type.get_shape()[0]
        co = weight.type.get_shape()[3]
        props = {} if accum_t is None else {"accum_type": FixedPointType(accum_t)}
        super().__init__(operands=[feat, hash, weight, bias], properties=props, result_types=[tensor([n, co], out_t)])

    def verify_(self) -> None:
        n, ci = _fixed_tensor(self, self.feat, "feat", rank=2)
        _hash_tensor(self, self.hash, "hash", n)
        kh, kw, wci, co = _fixed_tensor(self, self.weight, "weight", rank=4)
        if wci != ci:
            raise VerifyException(f"{self.name}: weight expects {wci} input channels but feat has {ci} (feat {[n, ci]}, weight {[kh, kw, wci, co]})")
        _expect_shape(self, "bias", _fixed_tensor(self, self.bias, "bias", rank=1), (co,))
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result", rank=2), (n, co))
        _accum(self, self.feat, conv_terms(n, kh, kw, ci))
        _variant(self, "bias_mode", self.bias_mode, BIAS_VARIANTS)
        if variant(self, "bias_mode") == "nonzero" and self.accum_type is not None:
            spec = lambda v: v.type.element_type.spec  # noqa: E731
            exact = exact_sum_type(spec(self.feat), spec(self.weight), spec(self.bias), conv_terms(n, kh, kw, ci))
            acc, shift = self.accum_type.spec, self.accum_type.spec.frac_bits - exact.frac_bits
            if shift < 0 or acc.min_raw > exact.min_raw << shift or exact.max_raw << shift > acc.max_raw:
                raise VerifyException(f"{self.name}: bias_mode 'nonzero' needs exact accumulation: accum_type {acc} "
                                      f"does not hold the exact sum type {exact}")
        _divides(self, "pixel_parallel", self.pixel_parallel, n)
        _divides(self, "filter_parallel", self.filter_parallel, co)
        _divides(self, "channel_parallel", self.channel_parallel, ci)


@irdl_op_definition
class SparseActivationOp(IRDLOperation):
    """Elementwise activation on the non-empty slots; empty slots stay 0."""

    name = "spx.sparse_activation"
    feat = operand_def(TensorType)
    hash = operand_def(TensorType)
    kind = prop_def(StringAttr)
    table_size = opt_prop_def(IntegerAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$feat `,` $hash attr-dict `:` functional-type(operands, results)"

    def __init__(self, feat: SSAValue, hash: SSAValue, kind: str, out_t: FixedType):
        super().__init__(operands=[feat, hash], properties={"kind": StringAttr(kind)}, result_types=[tensor(feat.type.get_shape(), out_t)])

    def verify_(self) -> None:
        n, c = _fixed_tensor(self, self.feat, "feat", rank=2)
        _hash_tensor(self, self.hash, "hash", n)
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result", rank=2), (n, c))
        if self.kind.data not in SPARSE_ACTIVATIONS:
            raise VerifyException(f"{self.name}: unknown kind '{self.kind.data}', expected one of {', '.join(SPARSE_ACTIVATIONS)}")
        _table(self, self.kind.data)
        if self.kind.data in ("relu", "linear"):
            _assignable(self, (self.feat.type.element_type.spec, self.result.type.element_type.spec))
        _divides(self, "pixel_parallel", self.pixel_parallel, n)


@irdl_op_definition
class SparsePool2DOp(IRDLOperation):
    """Average or max pooling by `size` ('valid'); the first member slot carries each pooled pixel."""

    name = "spx.sparse_pool2d"
    feat = operand_def(TensorType)
    hash = operand_def(TensorType)
    size = prop_def(IntegerAttr)
    mode = prop_def(StringAttr)
    height = prop_def(IntegerAttr)
    width = prop_def(IntegerAttr)
    inactive = opt_prop_def(StringAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    channel_parallel = opt_prop_def(IntegerAttr)
    feat_out = result_def(TensorType)
    hash_out = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$feat `,` $hash attr-dict `:` functional-type(operands, results)"

    def __init__(self, feat: SSAValue, hash: SSAValue, size: int, mode: str, height: int, width: int, out_t: FixedType):
        n, c = feat.type.get_shape()
        props = {"size": _int(size), "mode": StringAttr(mode), "height": _int(height), "width": _int(width)}
        out_bits = hash_width(max(1, height // size), max(1, width // size))
        super().__init__(operands=[feat, hash], properties=props, result_types=[tensor([n, c], out_t), hash_type(n, out_bits)])

    def verify_(self) -> None:
        n, c = _fixed_tensor(self, self.feat, "feat", rank=2)
        _hash_tensor(self, self.hash, "hash", n)
        p, h, w = self.size.value.data, self.height.value.data, self.width.value.data
        _positive(self, "size", p)
        _positive(self, "height", h)
        _positive(self, "width", w)
        if p > min(h, w):
            raise VerifyException(f"{self.name}: pool size {p} exceeds the {h}x{w} image")
        if self.mode.data not in POOL_MODES:
            raise VerifyException(f"{self.name}: unknown mode '{self.mode.data}', expected one of {', '.join(POOL_MODES)}")
        _check_image_size(self, self.hash, h, w)
        _expect_shape(self, "feat_out", _fixed_tensor(self, self.feat_out, "feat_out", rank=2), (n, c))
        in_t, out_t = self.feat.type.element_type.spec, self.feat_out.type.element_type.spec
        if self.mode.data == "avg":
            try:
                in_t = average_type(in_t, p, out_t)  # the rounded average, then one conversion
            except FixedPointError as err:
                raise VerifyException(f"{_where(self)}: {err}") from None
        _assignable(self, (in_t, out_t))
        bits = _hash_tensor(self, self.hash_out, "hash_out", n)
        if bits < hash_width(h // p, w // p):
            raise VerifyException(f"{self.name}: hash_out ui{bits} cannot hold coordinates of the pooled {h // p}x{w // p} image")
        _variant(self, "inactive", self.inactive, INACTIVE_VARIANTS)
        if self.inactive is not None and self.mode.data != "max":
            raise VerifyException(f"{self.name}: 'inactive' applies to max pooling only (avg counts inactive pixels as 0)")
        _divides(self, "pixel_parallel", self.pixel_parallel, n)
        _divides(self, "channel_parallel", self.channel_parallel, c)


@irdl_op_definition
class SparseFlattenOp(IRDLOperation):
    """Scatters the sparse features into the flat dense vector `[(h*W + w)*C + c]`."""

    name = "spx.sparse_flatten"
    feat = operand_def(TensorType)
    hash = operand_def(TensorType)
    height = prop_def(IntegerAttr)
    width = prop_def(IntegerAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$feat `,` $hash attr-dict `:` functional-type(operands, results)"

    def __init__(self, feat: SSAValue, hash: SSAValue, height: int, width: int):
        n, c = feat.type.get_shape()
        props = {"height": _int(height), "width": _int(width)}
        super().__init__(operands=[feat, hash], properties=props, result_types=[tensor([height * width * c], feat.type.element_type)])

    def verify_(self) -> None:
        n, c = _fixed_tensor(self, self.feat, "feat", rank=2)
        _hash_tensor(self, self.hash, "hash", n)
        h, w = self.height.value.data, self.width.value.data
        _positive(self, "height", h)
        _positive(self, "width", w)
        _check_image_size(self, self.hash, h, w)
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result", rank=1), (h * w * c,))
        if self.result.type.element_type != self.feat.type.element_type:
            raise VerifyException(f"{self.name}: result element type {self.result.type.element_type} must equal the feature type {self.feat.type.element_type}")
        _divides(self, "pixel_parallel", self.pixel_parallel, n)


@irdl_op_definition
class DenseOp(IRDLOperation):
    """y = x @ W + b, accumulated exactly (or in `accum_type`), converted into the result type."""

    name = "spx.dense"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    accum_type = opt_prop_def(Attribute)
    reuse_factor = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, weight: SSAValue, bias: SSAValue, out_t: FixedType, accum_t: FixedType | None = None):
        n_out = weight.type.get_shape()[1]
        props = {} if accum_t is None else {"accum_type": FixedPointType(accum_t)}
        super().__init__(operands=[x, weight, bias], properties=props, result_types=[tensor([n_out], out_t)])

    def verify_(self) -> None:
        (n_in,) = _fixed_tensor(self, self.input, "input", rank=1)
        wi, wo = _fixed_tensor(self, self.weight, "weight", rank=2)
        if wi != n_in:
            raise VerifyException(f"{self.name}: weight {[wi, wo]} expects {wi} inputs but input has shape {[n_in]}")
        _expect_shape(self, "bias", _fixed_tensor(self, self.bias, "bias", rank=1), (wo,))
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result", rank=1), (wo,))
        _accum(self, self.input, n_in)
        _divides(self, "reuse_factor", self.reuse_factor, n_in * wo)


@irdl_op_definition
class ActivationOp(IRDLOperation):
    """Elementwise (or, for softmax, vector-wise) activation on a dense tensor."""

    name = "spx.activation"
    input = operand_def(TensorType)
    kind = prop_def(StringAttr)
    table_size = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, kind: str, out_t: FixedType):
        super().__init__(operands=[x], properties={"kind": StringAttr(kind)}, result_types=[tensor(x.type.get_shape(), out_t)])

    def verify_(self) -> None:
        shape = _fixed_tensor(self, self.input, "input")
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result"), shape)
        if self.kind.data not in ACTIVATIONS:
            raise VerifyException(f"{self.name}: unknown kind '{self.kind.data}', expected one of {', '.join(ACTIVATIONS)}")
        if self.kind.data == "softmax" and len(shape) != 1:
            raise VerifyException(f"{self.name}: softmax needs a rank-1 input, got shape {list(shape)}")
        _table(self, self.kind.data)
        if self.kind.data in ("relu", "linear"):
            _assignable(self, (self.input.type.element_type.spec, self.result.type.element_type.spec))


def _quantizer_table(op: IRDLOperation, table_shape: Sequence[int], in_value: SSAValue, out_value: SSAValue) -> None:
    """Checks the `kif` table (k, i, f per element, i + f >= 0), the modes, and that the result type
    holds every element's values exactly (and the input, aligned to it, fits the arithmetic limit)."""
    kif_type = op.kif.type
    if not isinstance(kif_type.element_type, IntegerType):
        raise VerifyException(f"{op.name}: kif must hold integers, got {kif_type}")
    _expect_shape(op, "kif", kif_type.get_shape(), (*table_shape, 3))
    if op.quant.data not in QUANT_MODES:
        raise VerifyException(f"{op.name}: unknown quantization mode '{op.quant.data}', expected one of {', '.join(QUANT_MODES)}")
    if op.overflow.data not in HGQ_OVERFLOW_MODES:
        raise VerifyException(f"{op.name}: unknown overflow mode '{op.overflow.data}', expected one of {', '.join(HGQ_OVERFLOW_MODES)}")
    values = op.kif.get_values()
    k, i, f = values[0::3], values[1::3], values[2::3]
    if any(v not in (0, 1) for v in k):
        raise VerifyException(f"{op.name}: k must be 0 or 1")
    if any(a + b < 0 for a, b in zip(i, f)):
        raise VerifyException(f"{op.name}: every element needs i + f >= 0")
    out_t, in_t = out_value.type.element_type.spec, in_value.type.element_type.spec  # type: ignore[attr-defined]
    used = [(a, b, c) for a, b, c in zip(k, i, f) if a + b + c > 0]
    need_f = max((c for _, _, c in used), default=out_t.frac_bits)
    signed = any(a for a, _, _ in used)
    need_i = max((b for _, b, _ in used), default=0) + int(out_t.signed)  # an unsigned element needs the sign bit too
    if out_t.frac_bits < need_f or out_t.int_bits < need_i or (signed and not out_t.signed):
        raise VerifyException(f"{op.name}: result type {out_t} does not hold every element's values "
                              f"(needs {need_f} fraction bits, {need_i} integer bits{', signed' if signed else ''})")
    if in_t.int_bits + max(out_t.frac_bits, in_t.frac_bits) > 61:
        raise VerifyException(f"{op.name}: input {in_t} aligned to {out_t.frac_bits} fraction bits exceeds the 62-bit arithmetic limit")


@irdl_op_definition
class QuantizeOp(IRDLOperation):
    """Per-element fixed-point quantization (HGQ2 `kif` quantizers): element e of the input is rounded
    to 2^-f_e by `quant`, then brought into k_e-signed, i_e-integer-bit range by `overflow`
    (ap_fixed<k+i+f, k+i> semantics; an element with k+i+f = 0 is 0, and SAT_SYM is symmetric for
    every width). `kif` holds (k, i, f) per element: shape = input shape + [3]."""

    name = "spx.quantize"
    input = operand_def(TensorType)
    kif = prop_def(DenseIntOrFPElementsAttr)
    quant = prop_def(StringAttr)
    overflow = prop_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, kif, quant: str, overflow: str, out_t: FixedType):
        props = {"kif": _payload(kif.shape, kif), "quant": StringAttr(quant), "overflow": StringAttr(overflow)}
        super().__init__(operands=[x], properties=props, result_types=[tensor(x.type.get_shape(), out_t)])

    def verify_(self) -> None:
        shape = _fixed_tensor(self, self.input, "input")
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result"), shape)
        _quantizer_table(self, shape, self.input, self.result)


@irdl_op_definition
class SparseQuantizeOp(IRDLOperation):
    """spx.quantize of sparse features: slot s, channel c uses the table entry of its pixel,
    kif[h_s - 1, w_s - 1, c] (HGQ2's per-position input quantizers); empty slots stay 0."""

    name = "spx.sparse_quantize"
    feat = operand_def(TensorType)
    hash = operand_def(TensorType)
    kif = prop_def(DenseIntOrFPElementsAttr)
    quant = prop_def(StringAttr)
    overflow = prop_def(StringAttr)
    height = prop_def(IntegerAttr)
    width = prop_def(IntegerAttr)
    pixel_parallel = opt_prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$feat `,` $hash attr-dict `:` functional-type(operands, results)"

    def __init__(self, feat: SSAValue, hash: SSAValue, kif, quant: str, overflow: str, out_t: FixedType):
        h, w, _, _ = kif.shape
        props = {"kif": _payload(kif.shape, kif), "quant": StringAttr(quant),
                 "overflow": StringAttr(overflow), "height": _int(h), "width": _int(w)}
        super().__init__(operands=[feat, hash], properties=props, result_types=[tensor(feat.type.get_shape(), out_t)])

    def verify_(self) -> None:
        n, c = _fixed_tensor(self, self.feat, "feat", rank=2)
        _hash_tensor(self, self.hash, "hash", n)
        h, w = self.height.value.data, self.width.value.data
        _positive(self, "height", h)
        _positive(self, "width", w)
        _check_image_size(self, self.hash, h, w)
        _expect_shape(self, "result", _fixed_tensor(self, self.result, "result", rank=2), (n, c))
        _quantizer_table(self, (h, w, c), self.feat, self.result)
        _divides(self, "pixel_parallel", self.pixel_parallel, n)


SPX = Dialect(
    "spx",
    [ConstOp, InputReduceOp, SparseConv2DOp, SparseActivationOp, SparsePool2DOp, SparseFlattenOp, DenseOp, ActivationOp,
     QuantizeOp, SparseQuantizeOp],
    [FixedPointType],
)
