"""Command-line entry points: `spx-opt` (IR in, passes, IR out) and `spx` (compile/predict/...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _read_input(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: error: no such file")
    return p.read_text(), path


def _load_plugin(module: str) -> None:
    import importlib

    from spx_ir.text import SpxError

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise SpxError(f"error: cannot load plugin module '{module}': {err}") from None


def spx_opt(argv: list[str] | None = None) -> int:
    """mlir-opt-style driver: parse, verify, run a pass pipeline, print."""
    from passes.registry import available_passes, describe_pass, run_pipeline
    from spx_ir.text import SpxError, parse_module, print_module

    ap = argparse.ArgumentParser(prog="spx-opt", description="Run spx passes on spx IR.")
    ap.add_argument("file", nargs="?", default="-", help="input .mlir file, or - for stdin")
    ap.add_argument("-p", "--passes", default="", help="pass pipeline, e.g. 'canonicalize,spx-unroll{pixel=4}'")
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    ap.add_argument("--list-passes", action="store_true", help="list the available passes and exit")
    ap.add_argument("--load", action="append", default=[], metavar="MODULE", help="import a Python module that registers passes (repeatable)")
    args = ap.parse_args(argv)
    try:
        for module in args.load:
            _load_plugin(module)
        if args.list_passes:
            for cls in available_passes().values():
                print(describe_pass(cls))
            return 0
        text, name = _read_input(args.file)
        module = parse_module(text, name)
        if args.passes:
            run_pipeline(module, args.passes)
        out = print_module(module)
        if args.output == "-":
            sys.stdout.write(out)
        else:
            Path(args.output).write_text(out)
        return 0
    except (SpxError, FileNotFoundError) as err:
        return _fail(str(err))


def spx(argv: list[str] | None = None) -> int:
    """The `spx` command: subcommands grow with the project."""
    ap = argparse.ArgumentParser(prog="spx", description="spx: sparse CNNs to FPGA HLS C++.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("opt", help="same as spx-opt", add_help=False)
    args, rest = ap.parse_known_args(argv)
    if args.command == "opt":
        return spx_opt(rest)
    return _fail(f"spx: error: unknown command '{args.command}'")


def spx_opt_main() -> None:
    sys.exit(spx_opt())


def spx_main() -> None:
    sys.exit(spx())
