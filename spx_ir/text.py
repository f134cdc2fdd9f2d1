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


def parse_module(text: str, filename: str = "<stdin>") -> ModuleOp:
    """Parses and verifies a module; raises SpxError with `file:line:col: error: msg`."""
    from xdsl.parser import Parser

    try:
        module = Parser(context(), text, filename).parse_module()
    except ParseError as err:
        line, col = _line_col(err.span)
        raise SpxError(f"{filename}:{line}:{col}: error: {err.msg}") from None
    verify(module, filename)
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
    """A .npy array from a user-given path; SpxError `<where>: no such file` / `not a .npy array`."""
    from pathlib import Path

    import numpy as np

    if not Path(path).is_file():
        raise SpxError(f"{where}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:
        raise SpxError(f"{where}: not a .npy array") from None
