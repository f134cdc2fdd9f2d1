"""Command-line entry points: `spx-opt` (IR in, passes, IR out) and `spx` (compile/predict/...).

Both run inside one error boundary (`_boundary`): a user error (SpxError, a missing or unreadable
file, a bad argument: argparse errors included) becomes exactly one line on stderr and exit 1; an
internal error becomes one line and exit 70 (SPX_DEBUG=1 shows the traceback). Library log output
(TensorFlow, absl, QKeras warnings) is silenced before TensorFlow is imported. A subcommand added to
the `handlers` table of `spx` gets all of this for free.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

EXIT_USER, EXIT_INTERNAL = 1, 70


class _Parser(argparse.ArgumentParser):
    """argparse with errors raised (one line, exit 1 through the boundary) instead of exit 2 + usage."""

    def error(self, message):
        from spx_ir.text import SpxError

        raise SpxError(f"{self.prog}: error: {message}")


def _fail(message: str, code: int = EXIT_USER) -> int:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    print("; ".join(lines) or "error", file=sys.stderr)
    return code


def _quiet_libraries() -> None:
    """Silences TensorFlow / absl / Keras log output; effective for TF when called before it loads."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    for name in ("tensorflow", "absl", "h5py", "keras", "tf_keras", "qkeras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _boundary(run) -> int:
    """Runs `run()` and turns every exception into one line on stderr (see the module docstring)."""
    from spx_ir.text import SpxError

    try:
        from codegen.vitis.toolchain import ToolchainError
    except ImportError:  # pragma: no cover  (the vitis target is optional)
        ToolchainError = SpxError  # noqa: N806
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except SpxError as err:
        return _fail(str(err))
    except ToolchainError as err:
        if type(err).__name__ == "CompileError":  # the generated C++ must compile: an spx bug
            return _internal(err)
        return _fail(f"error: {err}")
    except OSError as err:
        if err.strerror is None:  # raised with a message of ours
            return _fail(str(err))
        where = f"{err.filename}: " if err.filename else ""
        return _fail(f"{where}error: {err.strerror}")
    except RecursionError:
        return _fail("error: input nested too deeply")
    except MemoryError:
        return _fail("error: out of memory (input too large)")
    except Exception as err:  # noqa: BLE001
        return _internal(err)


def _internal(err: BaseException) -> int:
    if os.environ.get("SPX_DEBUG"):
        raise err
    text = str(err).strip().splitlines()
    return _fail(f"internal error: {type(err).__name__}: {text[0] if text else ''} "
                 "(a bug in spx: please report it; SPX_DEBUG=1 shows the traceback)", EXIT_INTERNAL)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Points file descriptor 2 at /dev/null (native libraries' log lines) while Python's
    sys.stderr keeps writing to the original stderr. Only for the console entry points."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    original = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = original


def _read_input(path: str) -> tuple[str, str]:
    from spx.api import read_text_file

    if path == "-":
        from spx_ir.text import SpxError

        try:
            return sys.stdin.buffer.read().decode("utf-8"), "<stdin>"
        except UnicodeDecodeError as err:
            raise SpxError(f"<stdin>: error: not UTF-8 text (byte {err.start})") from None
    return read_text_file(path), path


def _load_plugin(module: str) -> None:
    import importlib

    from spx_ir.text import SpxError

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise SpxError(f"error: cannot load plugin module '{module}': {err}") from None


def spx_opt(argv: list[str] | None = None) -> int:
    """mlir-opt-style driver: parse, verify, run a pass pipeline, print."""
    _quiet_libraries()
    return _boundary(lambda: _spx_opt(argv))


def _spx_opt(argv) -> int:
    from passes.registry import available_passes, describe_pass, run_pipeline
    from spx_ir.text import parse_module, print_module

    ap = _Parser(prog="spx-opt", description="Run spx passes on spx IR.")
    ap.add_argument("file", nargs="?", default="-", help="input .mlir file, or - for stdin")
    ap.add_argument("-p", "--passes", default="", help="pass pipeline, e.g. 'canonicalize,spx-unroll{pixel=4}'")
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    ap.add_argument("--list-passes", action="store_true", help="list the available passes and exit")
    ap.add_argument("--load", action="append", default=[], metavar="MODULE", help="import a Python module that registers passes (repeatable)")
    args = ap.parse_args(argv)
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
        _write_output_file(args.output, out)
    return 0


def _write_output_file(path: str, text: str) -> None:
    """Writes a user-named output file (replaced atomically; a directory or missing parent is an error)."""
    from spx_ir.text import SpxError

    p = Path(path)
    if p.is_dir():
        raise SpxError(f"{path}: error: is a directory (expected an output file)")
    if not p.parent.is_dir():
        raise SpxError(f"{path}: error: directory {p.parent} does not exist")
    if not p.name or p.name in (".", ".."):
        raise SpxError(f"{path}: error: not a file name")
    if p.is_symlink():
        raise SpxError(f"{path}: error: refusing to write through a symlink")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    from spx_ir.text import SpxError, load_npy

    backend = open_project(args.project).backend(args.backend)  # errors of the model name the project
    x = load_npy(args.input, f"{args.input}: error")
    try:
        y = backend.predict(x)
    except ValueError as err:  # the backends' input checks: shape, dtype, NaN / Inf
        raise SpxError(f"{args.input}: error: {err}") from None
    if Path(args.output).is_dir():
        raise SpxError(f"{args.output}: error: is a directory (expected an output .npy file)")
    np.save(args.output, y)
    print(f"wrote {args.output}: {np.shape(y)} from {args.backend}")
    return 0


def _report(args) -> int:
    from passes import available_passes, run_pipeline
    from spx.api import open_project
    from spx_ir.text import SpxError, parse_module

    from spx.api import read_text_file

    path = Path(args.target)
    if path.is_dir():
        module = open_project(path).module
    elif path.is_file():
        module = parse_module(read_text_file(path), str(path))
    else:
        raise FileNotFoundError(f"{args.target}: error: no such file or directory")
    if "spx-estimate" not in available_passes():
        raise SpxError("error: the cost model (spx-estimate) is not available")
    if args.target_kind == "rtl":
        from passes.rtl_cost_model import report_table

        run_pipeline(module, "spx-estimate{target=rtl}")
        print(report_table(module))
    else:
        from passes.cost_model import report_table

        run_pipeline(module, "spx-estimate")
        print("Estimate for target vitis (the Vitis HLS design; passes/cost_model.py).")
        print(report_table(module))
    if path.is_dir():
        from codegen.rtl.synth import measured_summary

        measured = measured_summary(path / "rtl")
        if measured:
            print(measured)
    return 0


def _synth(args) -> int:
    from codegen.rtl.synth import synth, table, write_reports
    from spx.api import open_project

    cm = open_project(args.project)
    project = Path(args.project) / "rtl"
    report = synth(project, cm.module, timeout=args.timeout, per_op=not args.model_only,
                   log=lambda m: print(m, file=sys.stderr))
    print(table(report))
    json_path, png = write_reports(project, report)
    print(f"wrote {json_path}" + (f" and {png}" if report["ops"] else ""))
    return 0


def _demo(args) -> int:
    from spx.demo import main as demo_main

    return demo_main(args)


def _sweep(args) -> int:
    from spx.sweep import main as sweep_main

    return sweep_main(args)


def spx(argv: list[str] | None = None) -> int:
    """The `spx` command: compile, predict, report, demo (and `opt`, same as spx-opt)."""
    _quiet_libraries()
    return _boundary(lambda: _spx(argv))


def _spx(argv) -> int:
    ap = _Parser(prog="spx", description="spx: sparse CNNs to FPGA HLS C++.")
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
    p.add_argument("--backend", default="numpy", choices=("numpy", "csim", "rtl"))
    r = sub.add_parser("report", help="estimated latency/resources per op (cost model)")
    r.add_argument("target", help="an spx output directory or an .mlir file")
    r.add_argument("--target", dest="target_kind", choices=("vitis", "rtl"), default="vitis",
                   help="which design the estimate is for (default vitis; rtl: the fully parallel XLS design)")
    y = sub.add_parser("synth", help="measured latency/II (Verilator) and resources (Yosys) of the rtl target")
    y.add_argument("project", help="an spx output directory compiled with --targets ...,rtl")
    y.add_argument("--timeout", type=float, default=None, help="seconds per tool run (stopped cleanly, not recorded)")
    y.add_argument("--model-only", action="store_true", help="skip the per-op syntheses")
    d = sub.add_parser("demo", help="end-to-end demo on real data")
    d.add_argument("--dataset", default="mnist", choices=("mnist", "lartpc", "jets"))
    d.add_argument("--out", default="out/demo", help="output directory for projects, tables and plots")
    d.add_argument("--quick", action="store_true", help="fewer models and epochs (for tests)")
    w = sub.add_parser("sweep", help="design-space sweep on Dask (train, compile, verify, estimate, synth per point)")
    w.add_argument("sweep", help="sweep file (.yml/.yaml/.json)")
    w.add_argument("-o", "--output", required=True, help="sweep directory (points/, results.csv/.md, plots)")
    w.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786 "
                                       "(default: an embedded LocalCluster, one worker per core)")
    w.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: one per core)")
    w.add_argument("--retries", type=int, default=2, help="retries of a point whose worker died (default 2)")
    w.add_argument("--retry-failed", action="store_true", help="recompute points recorded as failed")
    w.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach --scheduler (default 10)")
    args, rest = ap.parse_known_args(argv)
    if args.command == "opt":
        return _spx_opt(rest)
    if rest:
        return _fail(f"spx {args.command}: error: unrecognized arguments: {' '.join(rest)}")
    handlers = {"compile": _compile, "predict": _predict, "report": _report, "demo": _demo, "synth": _synth,
                "sweep": _sweep}
    return handlers[args.command](args)


def spx_opt_main() -> None:
    with _native_stderr_silenced():
        code = spx_opt()
    sys.exit(code)


def spx_main() -> None:
    with _native_stderr_silenced():
        code = spx()
    sys.exit(code)


if __name__ == "__main__":
    spx_main()
