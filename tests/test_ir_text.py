"""Large IR files (issue 13 finding 11): spx.const's value lists are read by numpy straight from the text;
the result equals xDSL's own token-by-token parse, round-trips exactly, and malformed or hostile lists are
one-line errors naming line:col. Speed is measured by bench/ir_parse.py, not here."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_ir import dialect
from spx_ir.builder import ModelBuilder, model_function
from spx_ir.fixed import FixedType
from spx_ir.text import SpxError, parse_module, print_module

ROOT = Path(__file__).resolve().parent.parent
W8, W62 = FixedType(8, 3), FixedType(62, 20)


def consts(module) -> list[np.ndarray]:
    return [op.raw() for op in model_function(module).body.block.ops if isinstance(op, dialect.ConstOp)]


def big_model(units: int = 256, seed: int = 0):
    """About 5 MB of text: a 4096 x units int8 dense, plus a dense whose 62-bit weights hit both limits."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder("big", [64, 64, 1], FixedType(8, 1, signed=False))
    feat, hash_ = b.input_reduce(b.input, n_max=8, threshold=0.1)
    x = b.sparse_flatten(feat, hash_, 64, 64)
    y = b.dense(x, b.const(rng.integers(-128, 128, (4096, units)), W8), b.const(rng.integers(-128, 128, units), W8),
                FixedType(16, 6))
    wide = rng.integers(W62.min_raw, W62.max_raw, (units, 300), endpoint=True)
    wide[0, :4] = [W62.min_raw, W62.max_raw, 0, -1]
    z = b.dense(y, b.const(wide, W62), b.const(np.zeros(300, np.int64), W8), FixedType(100, 40))
    return b.finish([z])


def const_ir(body: str, n: int, t: str = "!spx.fixed<8, 3>") -> str:
    return (f"builtin.module {{\n  func.func @f() -> tensor<{n}x{t}> {{\n"
            f"    %0 = spx.const [{body}] : tensor<{n}x{t}>\n    func.return %0 : tensor<{n}x{t}>\n  }}\n}}\n")


def test_a_large_module_round_trips_exactly():
    module = big_model()
    text = print_module(module)
    assert len(text) > 5e6
    parsed = parse_module(text, "big.mlir")
    assert print_module(parsed) == text
    for got, want in zip(consts(parsed), consts(module), strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int64
    assert consts(parsed)[2][0, :4].tolist() == [W62.min_raw, W62.max_raw, 0, -1]


def test_the_examples_parse_as_xdsl_parses_them(monkeypatch):
    """IR printed before the fast reader existed: the same module either way."""
    for path in sorted((ROOT / "examples").glob("*.mlir")):
        text = path.read_text()
        fast = parse_module(text, str(path))
        assert max(v.size for v in consts(fast)) * 3 > dialect._FAST_LIST  # a list long enough for numpy
        monkeypatch.setattr(dialect, "_FAST_LIST", 1 << 60)
        slow = parse_module(text, str(path))
        monkeypatch.undo()
        assert print_module(fast) == print_module(slow)
        for a, b in zip(consts(fast), consts(slow), strict=True):
            np.testing.assert_array_equal(a, b)


# every character a plain list holds, to compare numpy's reading with xDSL's on short lists
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789,- \n\t", max_size=30))
def test_the_numpy_reader_accepts_exactly_what_xdsl_accepts(body):
    n = max(1, body.count(",") + 1)
    results = []
    for limit in (0, 1 << 60):  # 0: every list through numpy; 2^60: none
        dialect._FAST_LIST = limit
        try:
            results.append(consts(parse_module(const_ir(body, n)))[0].tolist())
        except SpxError as err:
            assert "\n" not in str(err)
            results.append("error")
        finally:
            dialect._FAST_LIST = 1 << 12
    assert results[0] == results[1], body


def _long(values: str, count: int = 3000) -> str:
    return ", ".join(["1"] * count) + values


@pytest.mark.parametrize("tail,n,message,at", [  # at: the offending character's index in tail (-1: the '[')
    (", 2 // comment\n, 3", 3002, "must hold plain decimal integers", 4),
    (", 0x10", 3001, "must hold plain decimal integers", 3),
    (", 1\u00e9", 3001, "must hold plain decimal integers", 3),
    (", , 2", 3002, "malformed value list", 1),
    (", 2,", 3002, "malformed value list", 4),
    (", 2 3", 3002, "malformed value list", 1),
    (", --3", 3001, "malformed value list", 1),
    (", 99999999999999999999", 3001, "beyond the 64-bit integer range", -1),
    (", 200", 3001, r"raw value 200 is out of range \[-128, 127\]", None),
    (", 2", 3000, "3001 values given for a tensor of shape", None),
])
def test_a_malformed_long_list_is_one_line_naming_its_place(tail, n, message, at):
    with pytest.raises(SpxError, match=message) as err:
        parse_module(const_ir(_long(tail), n), "m.mlir")
    assert "\n" not in str(err.value)
    if at is not None:
        col = len("    %0 = spx.const [") + 1 + (len(_long("")) + at if at >= 0 else -1)
        assert str(err.value).startswith(f"m.mlir:3:{col}: error: spx.const: "), str(err.value)


def test_hostile_lists_fail_fast():
    """No closing bracket, too many values, blanks where backtracking would be quadratic: errors, no hang."""
    with pytest.raises(SpxError, match="m.mlir:3:20: error: spx.const: the value list has no closing"):
        parse_module("builtin.module {\n  func.func @f() {\n    %0 = spx.const [" + "1, " * 5000, "m.mlir")
    monkeypatched = dialect.MAX_CONST_VALUES
    try:
        dialect.MAX_CONST_VALUES = 4000
        with pytest.raises(SpxError, match="5000 values, more than the limit of 4000"):
            parse_module(const_ir(", ".join(["1"] * 5000), 5000))
    finally:
        dialect.MAX_CONST_VALUES = monkeypatched
    with pytest.raises(SpxError, match="malformed value list"):
        parse_module(const_ir("1," + " " * 2_000_000 + ", 2", 3))


@pytest.mark.parametrize("argv", [["opt"], ["compile", "-o", "{out}", "--targets", "numpy"], ["report"]])
def test_every_command_reads_lists_with_numpy(tmp_path, monkeypatch, capsys, argv):
    """A long list holding a hex integer: xDSL's parser accepts it, the numpy reader refuses it."""
    from spx.cli import spx, spx_opt

    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "cache"))
    text = print_module(big_model(units=4))
    marker = "spx.const ["
    at = text.index(marker) + len(marker)
    path = tmp_path / "hex.mlir"
    path.write_text(text[:at] + "0x1, " + text[at + text[at:].index(",") + 2:])
    if argv[0] == "opt":
        code = spx_opt([str(path)])
    else:
        code = spx([argv[0], str(path), *[a.format(out=tmp_path / "p") for a in argv[1:]]])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0, err
    assert "must hold plain decimal integers" in err and err.startswith(f"{path}:5:22: error: spx.const: "), err


def test_a_generic_form_payload_of_another_integer_type_is_checked_by_value():
    """ui64 2^64-1 is not the raw -1 (no reinterpretation of the payload's bytes)."""
    text = const_ir("1, 2", 2).replace("spx.const [1, 2] : tensor<2x!spx.fixed<8, 3>>", '"spx.const"() <{value = '
                                       'dense<[18446744073709551615, 1]> : tensor<2xui64>}> : () -> tensor<2x!spx.fixed<8, 3>>')
    with pytest.raises(SpxError, match=r"raw value 18446744073709551615 is out of range \[-128, 127\]"):
        parse_module(text)
    small = parse_module(text.replace("18446744073709551615", "7").replace("ui64", "i32"))
    assert consts(small)[0].tolist() == [7, 1]


@pytest.mark.parametrize("payload", ["dense<1>", 'dense<"0x0100000000000000">'])
def test_a_huge_splat_is_refused_before_it_is_expanded(payload):
    """A 300-byte splat over 10^8 (or 4 * 10^9) values: one located error at once, nothing allocated."""
    for count in (100_000_000, 4_000_000_000):
        text = ("builtin.module {\n  func.func @m(%0: tensor<2x2x1x!spx.fixed<8, 1, unsigned>>) -> "
                "tensor<2x2x1x!spx.fixed<8, 1, unsigned>> {\n"
                f'    %1 = "spx.const"() <{{value = {payload} : tensor<{count}xi64>}}> : () -> '
                f"tensor<{count}x!spx.fixed<8, 3>>\n"
                "    func.return %0 : tensor<2x2x1x!spx.fixed<8, 1, unsigned>>\n  }\n}\n")
        with pytest.raises(SpxError, match=rf"^x.mlir:3:\d+: error: a dense literal of {count} values, more than the limit"):
            parse_module(text, "x.mlir")
