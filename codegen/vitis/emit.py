"""The `vitis` target: writes a Vitis HLS project (io_parallel C++) for a verified spx module.

Project layout (hls4ml-like):
  firmware/<name>.cpp, <name>.h  top function: one templated kernel call per op, in program order
  firmware/parameters.h          array sizes, one typedef per value, one config struct per op
  firmware/weights/*.h           weights and biases as raw integers (value = raw * 2^-F: exact)
  firmware/tables.h              sigmoid / tanh / softmax tables of spx_ir.tables, as raw integers
  firmware/spx/*.h               the kernel library (codegen/vitis/include/spx), copied
  tb/<name>_test.cpp, tb_data/   C-simulation test bench and reference events (NumPy target)
  build_prj.tcl, README.md       Vitis HLS script (csim / csynth / cosim / export) and how to run it
  spx_project.json               marks the directory as an spx project (name, version, IR hash, files)

The generated C++ holds no arithmetic, only declarations, constants read off the IR and calls; the
semantics live in the kernel library. The top function is a DATAFLOW region; a value read by several
layers is cloned first (spx::clone) so that every array has a single reader.

The project is built in three steps: codegen/vitis/model.py reads the module into a Model (arrays,
constants, one config and call per op), codegen/vitis/render.py turns it into C++ text, and this
file assembles and writes the project (test-bench events and their NumPy-reference outputs, the
marker, the writer's checks).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from codegen.vitis.model import Model
from codegen.vitis.render import (_fill, output_code, render_const, render_parameters, render_tables,
                                  render_top, render_top_header, spx_version)
from codegen.vitis.toolchain import CXX_STD
from codegen.writer import OutputDir
from spx_ir.fixed import quantize
from spx_ir.text import SpxError

LIBRARY = Path(__file__).parent / "include" / "spx"
MARKER = "spx_project.json"
DEFAULT_PART = "xcu250-figd2104-2L-e"
DEFAULT_CLOCK_NS = 5.0
TB_EVENTS = 100


def _data_lines(raw: np.ndarray) -> str:
    return "".join(" ".join(map(str, row)) + "\n" for row in raw.tolist())


def reference_events(model: Model, n: int, seed: int = 0) -> np.ndarray:
    """Test-bench events: sparse images (density 2..20 %) spanning the input type's range and beyond
    (saturating, negative), plus an empty image and a full one."""
    rng = np.random.default_rng(seed)
    t = model.input_spec
    lo, hi = t.min_raw * 2.0 ** -t.frac_bits, t.max_raw * 2.0 ** -t.frac_bits
    span = max(hi - lo, 2.0 ** -t.frac_bits)
    x = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(n, *model.input_shape))
    density = rng.uniform(0.02, 0.2, size=(n,) + (1,) * len(model.input_shape))
    x *= rng.random(x.shape) < density
    if n > 0:
        x[0] = 0.0
    if n > 1:
        x[1] = rng.uniform(lo, hi + 0.1 * span, size=model.input_shape)
    return x


# -------------------------------------------------------------------------------- the project


def read_marker(out: OutputDir) -> dict | None:
    """The vitis marker of an earlier emit in `out` (a JSON object by spx), else None."""
    text = out.read_text(MARKER)
    try:
        info = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return info if isinstance(info, dict) and (info.get("generator") == "spx" or info.get("spx") == 1) else None


def _check_out_dir(out: OutputDir, force: bool) -> list[str]:
    """Refuses an existing directory that is not an spx project; returns files a previous emit wrote."""
    if out.root.exists() and not out.root.is_dir():
        raise SpxError(f"error: output path {out.root} exists and is not a directory")
    info = read_marker(out)
    if info is not None:
        files = info.get("files", [])
        return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []
    if out.root.is_dir() and any(out.root.iterdir()) and not force:
        raise SpxError(f"error: output directory {out.root} exists and is not an spx project (no valid {MARKER}); "
                       "refusing to write into it (use force=True / --force)")
    return []


def project_files(module: ModuleOp, model: Model | None = None, *, part: str = DEFAULT_PART,
                  clock_period: float = DEFAULT_CLOCK_NS, events=None, tb_events: int = TB_EVENTS) -> dict[str, str]:
    """{relative path: text} of every file of the project but the marker (pure: writes nothing)."""
    model = model or Model(module)
    name = model.name
    files = {f"firmware/{name}.cpp": render_top(model), f"firmware/{name}.h": render_top_header(model),
             "firmware/parameters.h": render_parameters(model)}
    for array in model.consts.values():
        files[f"firmware/weights/{array.name}.h"] = render_const(model, array)
    if model.tables:
        files["firmware/tables.h"] = render_tables(model)
    for header in sorted(LIBRARY.glob("*.h")):
        files[f"firmware/spx/{header.name}"] = header.read_text()
    x = reference_events(model, tb_events) if events is None else np.asarray(events, dtype=np.float64)
    x_raw, y_raw = _expected(module, model, x)
    files["tb_data/tb_input_raw.dat"] = _data_lines(x_raw)
    files["tb_data/tb_output_raw.dat"] = _data_lines(y_raw)
    tb_code = output_code(model, " " * 8, "got.push_back({})")
    files[f"tb/{name}_test.cpp"] = _fill("testbench.cpp", name=name, **tb_code)
    files["build_prj.tcl"] = _fill("build_prj.tcl", name=name, part=_tcl_word(part), clock_period=f"{clock_period:g}",
                                   std=CXX_STD)
    files["README.md"] = _fill("README.md", name=name, part=_tcl_word(part), clock_period=f"{clock_period:g}", std=CXX_STD,
                               version=spx_version(), n_events=len(x))
    return files


def _tcl_word(part: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(part)):
        raise SpxError(f"error: vitis target: FPGA part {part!r} is not a part name (letters, digits, '.', '_', '-')")
    return str(part)


def emit(module: ModuleOp, out_dir, *, force: bool = False, part: str = DEFAULT_PART,
         clock_period: float = DEFAULT_CLOCK_NS, events=None, tb_events: int = TB_EVENTS) -> Path:
    """Writes the Vitis HLS project for a verified module into out_dir; returns out_dir.

    events: float images [B, *input_shape] for the test bench (default: `tb_events` random ones);
    their expected outputs come from the NumPy reference target. Every file goes through
    `codegen.writer.OutputDir` (checked paths, no symlinks followed, atomic, mode 0644)."""
    clock_period = float(clock_period)
    if not (math.isfinite(clock_period) and clock_period > 0):
        raise SpxError(f"error: vitis target: clock period {clock_period} ns is not a positive number")
    model = Model(module)
    out = OutputDir(out_dir)
    previous = _check_out_dir(out, force)
    files = project_files(module, model, part=part, clock_period=clock_period, events=events, tb_events=tb_events)
    for rel, text in files.items():
        out.write_text(rel, text)
    for rel in set(previous) - set(files) - {MARKER}:  # files of an earlier emit no longer produced
        try:
            path = out.path(rel)
        except SpxError:
            continue  # a marker naming paths spx never writes: not ours to delete
        if path.is_file() and not path.is_symlink():
            path.unlink()
    info = {"generator": "spx", "target": "vitis", "name": model.name, "version": spx_version(),
            "ir_sha256": model.ir_hash, "part": part, "clock_period": clock_period,
            "files": sorted(files)}
    out.write_text(MARKER, json.dumps(info, indent=1) + "\n")
    return out.root


def _expected(module: ModuleOp, model: Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw inputs, raw expected outputs concatenated per event) from the NumPy reference target."""
    from codegen.numpy.emit import load

    if x.shape[1:] != model.input_shape:
        shape = ", ".join(map(str, model.input_shape))
        raise SpxError(f"error: test-bench events must have shape (B, {shape}), got {x.shape}")
    n = len(x)
    if n == 0:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
    outs = load(module).predict_raw(x)
    outs = outs if isinstance(outs, list) else [outs]
    return quantize(x, model.input_spec).reshape(n, -1), np.concatenate([o.reshape(n, -1) for o in outs], axis=1)
