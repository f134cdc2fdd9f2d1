"""Textual IR: parse and print spx modules; user errors become one-line `file:line:col: error: ...`."""

from __future__ import annotations

import io

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from spx_ir.dialect import SPX


class SpxError(Exception):
    """A user-facing error: its message is one line, printed without a traceback."""


def context() -> Context:
    """A context with the builtin, func and spx dialects loaded."""
    ctx = Context()
    for dialect in (Builtin, Func, SPX):
        ctx.load_dialect(dialect)
    return ctx


def _parser(text: str, filename: str):
    """xDSL's parser, refusing a dense literal whose type holds more than MAX_CONST_VALUES values
    before xDSL expands a splat (`dense<1> : tensor<100000000xi64>`: 3 GB and 80 s for a 300-byte
    file). (Overrides `_parse_dense_literal_type`: private API of the pinned xDSL 0.74.0.)"""
    import math

    from xdsl.parser import Parser

    from spx_ir.dialect import MAX_CONST_VALUES

    class _Parser(Parser):
        def _parse_dense_literal_type(self):
            start = self.pos
            dense_type = super()._parse_dense_literal_type()
            count = math.prod(dense_type.get_shape())
            if count > MAX_CONST_VALUES:
                self.raise_error(f"a dense literal of {count} values, more than the limit of {MAX_CONST_VALUES}",
                                 start, self.pos)
            return dense_type

    return _Parser(context(), text, filename)


def parse_module(text: str, filename: str = "<stdin>") -> ModuleOp:
    """Parses and verifies a module; raises SpxError with `file:line:col: error: msg`."""
    try:
        module = _parser(text, filename).parse_module()
        verify(module, filename)
    except ParseError as err:
        line, col = _line_col(err.span)
        raise SpxError(f"{filename}:{line}:{col}: error: {err.msg}") from None
    except VerifyException as err:  # raised while parsing, e.g. an integer beyond its type's range
        first = str(err).strip().splitlines()[0] if str(err).strip() else "verification failed"
        raise SpxError(f"{filename}: error: {first}") from None
    except RecursionError:
        raise SpxError(f"{filename}: error: attributes, types or regions nested too deeply") from None
    except (OverflowError, ValueError) as err:  # e.g. an integer attribute beyond its type's range
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpxError(f"{filename}: error: {first}") from None
    return module


def verify(module: ModuleOp, where: str = "<module>") -> None:
    """Verifies a module; raises SpxError naming the failing op."""
    try:
        module.verify()
    except VerifyException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "verification failed"
        raise SpxError(f"{where}: error: {first}") from None


def print_module(module: ModuleOp) -> str:
    """The module's textual form (stable: print(parse(print(m))) == print(m))."""
    out = io.StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue() + "\n"


def _line_col(span) -> tuple[int, int]:
    text = span.input.content
    before = text[: span.start]
    return before.count("\n") + 1, span.start - (before.rfind("\n") + 1) + 1


def load_npy(path, where: str):
    """A .npy array from a user-given path; SpxError `<where>: no such file` / `not a .npy array` /
    `holds N bytes, its header claims ...` (checked before anything is allocated)."""
    import math
    from pathlib import Path

    import numpy as np

    if not Path(path).is_file():
        raise SpxError(f"{where}: no such file")
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            available = Path(path).stat().st_size - f.tell()
        if dtype.hasobject:
            raise SpxError(f"{where}: not a numeric .npy array (dtype {dtype})")
        needed = math.prod(shape) * dtype.itemsize
        if needed > available:
            raise SpxError(f"{where}: .npy header claims shape {shape} of {dtype} ({needed} bytes) "
                           f"but the file holds {available}")
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError):
        raise SpxError(f"{where}: not a .npy array") from None
