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


def _compile(args) -> int:
    from spx.api import compile as spx_compile
    from spx.api import load_config

    cm = spx_compile(args.model, load_config(args.config), args.passes)
    targets = [t for t in args.targets.split(",") if t]
    out = cm.write(args.output, targets=targets, force=args.force)
    print(f"wrote {out}/model.mlir and targets {', '.join(targets)}")
    return 0


def _predict(args) -> int:
    import numpy as np

    from spx.api import open_project
    from spx_ir.text import load_npy

    cm = open_project(args.project)
    x = load_npy(args.input, f"{args.input}: error")
    try:
        y = cm.predict(x, backend=args.backend)
    except ValueError as err:
        raise FileNotFoundError(f"{args.input}: error: {err}") from None
    np.save(args.output, y)
    print(f"wrote {args.output}: {np.shape(y)} from {args.backend}")
    return 0


def _report(args) -> int:
    from passes import available_passes, run_pipeline
    from spx.api import open_project
    from spx_ir.text import SpxError, parse_module

    path = Path(args.target)
    if path.is_dir():
        module = open_project(path).module
    elif path.is_file():
        module = parse_module(path.read_text(), str(path))
    else:
        raise FileNotFoundError(f"{args.target}: error: no such file or directory")
    if "spx-estimate" not in available_passes():
        raise SpxError("error: the cost model (spx-estimate) is not available")
    from passes.cost_model import report_table

    run_pipeline(module, "spx-estimate")
    print(report_table(module))
    return 0


def _demo(args) -> int:
    from spx.demo import main as demo_main

    return demo_main(args)


def spx(argv: list[str] | None = None) -> int:
    """The `spx` command: compile, predict, report, demo (and `opt`, same as spx-opt)."""
    from spx_ir.text import SpxError

    ap = argparse.ArgumentParser(prog="spx", description="spx: sparse CNNs to FPGA HLS C++.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("opt", help="same as spx-opt", add_help=False)
    c = sub.add_parser("compile", help="lower a Keras model (.keras/.h5) or IR (.mlir) and emit targets")
    c.add_argument("model")
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--config", help="hls4ml-style config (.yml/.yaml/.json)")
    c.add_argument("-p", "--passes", default=None, help="pass pipeline (default: the standard pipeline)")
    c.add_argument("--targets", default="numpy,vitis", help="comma-separated targets (default numpy,vitis)")
    c.add_argument("--force", action="store_true", help="write into an existing directory that is not an spx project")
    p = sub.add_parser("predict", help="run a compiled model on a .npy input")
    p.add_argument("project")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--backend", default="numpy", choices=("numpy", "csim"))
    r = sub.add_parser("report", help="estimated latency/resources per op (cost model)")
    r.add_argument("target", help="an spx output directory or an .mlir file")
    d = sub.add_parser("demo", help="end-to-end demo on real data")
    d.add_argument("--dataset", default="mnist", choices=("mnist", "lartpc", "jets"))
    d.add_argument("--out", default="out/demo", help="output directory for projects, tables and plots")
    d.add_argument("--quick", action="store_true", help="fewer models and epochs (for tests)")
    args, rest = ap.parse_known_args(argv)
    if args.command == "opt":
        return spx_opt(rest)
    if rest:
        return _fail(f"spx {args.command}: error: unrecognized arguments: {' '.join(rest)}")
    handlers = {"compile": _compile, "predict": _predict, "report": _report, "demo": _demo}
    try:
        return handlers[args.command](args)
    except (SpxError, FileNotFoundError) as err:
        return _fail(str(err))


def spx_opt_main() -> None:
    sys.exit(spx_opt())


def spx_main() -> None:
    sys.exit(spx())
