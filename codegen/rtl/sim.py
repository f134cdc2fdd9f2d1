"""RTL simulation of the rtl target: the generated Verilog + tb.cpp built by Verilator and run.

The Verilator build is a codegen/cache.py entry keyed on every generated file, the Verilator version
and the flags. Inputs are checked and quantized in Python exactly like the NumPy target
(`spx_ir.fixed.quantize`), packed into the `x` port's words, streamed one event per clock through
the pipeline, and the `out` words unpacked into raw integers of the output types.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codegen import cache
from codegen.events import batch
from codegen.rtl import ports
from spx_ir.fixed import FixedType, quantize, to_float
from spx_ir.text import SpxError

# The C++ of a big Verilated design is compiled once and runs a few thousand clocks: -O0 everywhere
# (Verilator's makefile defaults to -Os) builds 14x14 neutrino in 32 s instead of 76 s; its run time
# stays negligible (1,000 events: 0.04 s). See bench/results/rtl_seed_models.md.
VERILATOR_FLAGS = ("--cc", "--exe", "--build", "-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                   "--x-assign", "fast", "--x-initial", "fast",
                   "-MAKEFLAGS", "OPT_FAST=-O0", "-MAKEFLAGS", "OPT_SLOW=-O0", "-MAKEFLAGS", "OPT_GLOBAL=-O0")
CXX_FLAGS = "-O0 -std=c++17"


def require(tool: str) -> str:
    """Path of `tool`, or a one-line error naming the Debian package."""
    path = shutil.which(tool)
    if path is None:
        raise SpxError(f"error: {tool} is not installed (Debian/Ubuntu: apt-get install -y {tool})")
    return path


def tool_version(tool: str) -> str:
    """`verilator-5.006`, `yosys-0.23`: the label measured figures carry."""
    require(tool)
    flag = "--version" if tool == "verilator" else "-V"
    out = subprocess.run([tool, flag], capture_output=True, text=True).stdout
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return f"{tool}-{match.group(1) if match else 'unknown'}"


def verilator_build(files: dict, module: str, timeout: float | None = None) -> Path:
    """Path of the cached simulator binary for the generated `files` ({name: text})."""
    require("verilator")
    verilog, tb = files[f"{module}.v"], files["tb.cpp"]
    material = {"verilog": verilog.encode(), "tb": tb.encode(), "module": module,
                "verilator": tool_version("verilator"), "flags": list(VERILATOR_FLAGS), "cxx": CXX_FLAGS}

    def build(directory: Path) -> None:
        src = directory / "src"
        src.mkdir()
        (src / f"{module}.v").write_text(verilog)
        (src / "tb.cpp").write_text(tb)
        cmd = ["verilator", *VERILATOR_FLAGS, "--top-module", module, "-Mdir", str(src / "obj"),
               "-CFLAGS", f"{CXX_FLAGS} -DVTOP=V{module} -DVTOP_H='\"V{module}.h\"'",
               "-o", "sim", f"{module}.v", "tb.cpp"]
        try:
            run = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpxError(f"error: verilator build of {module} timed out after {timeout} s") from None
        if run.returncode != 0:
            lines = [ln for ln in (run.stderr + run.stdout).splitlines() if "rror" in ln] or run.stderr.splitlines()
            raise SpxError(f"error: verilator build of {module} failed: {(lines or ['?'])[0].strip()}")
        shutil.move(str(src / "obj" / "sim"), directory / "sim")
        shutil.rmtree(src)

    return cache.entry("rtl-verilator", material, build) / "sim"


def run_events(binary: Path, in_words: np.ndarray, out_words: int, gap: int = 0,
               timeout: float | None = None) -> tuple[np.ndarray, dict]:
    """Streams events (rows of uint32 port words) through the simulator: (out words, stats)."""
    n = len(in_words)
    with tempfile.TemporaryDirectory(prefix="spx-rtl-") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        np.ascontiguousarray(in_words, dtype="<u4").tofile(src)
        try:
            run = subprocess.run([str(binary), str(src), str(dst), str(n), str(gap)], capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpxError(f"error: RTL simulation timed out after {timeout} s") from None
        if run.returncode != 0:
            raise SpxError(f"error: RTL simulation failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
        out = np.fromfile(dst, dtype="<u4").reshape(n, out_words)
    stats = {}
    for line in run.stdout.splitlines():
        key, _, value = line.partition(" ")
        stats[key] = float(value)
    return out, stats


class RtlSim:
    """predict / predict_raw of the Verilated design (same interface as the other targets)."""

    def __init__(self, result: dict):
        meta = result["meta"]
        self.meta = meta
        self.files = result["files"]
        self.INPUT_SHAPE = tuple(meta["input"]["shape"])
        self.input_t = FixedType.parse(meta["input"]["type"])
        self.output_types = [FixedType.parse(o["type"]) for o in meta["outputs"]]
        self.output_shapes = [tuple(o["shape"]) for o in meta["outputs"]]
        self.binary = verilator_build(self.files, meta["module"])
        self.in_words = -(-meta["input"]["bits"] // 32)
        self.out_words = -(-meta["output_bits"] // 32)
        self.last_stats: dict = {}

    def _raw_input(self, x) -> np.ndarray:
        x = batch(x, self.INPUT_SHAPE)
        flat = x.reshape(len(x), -1).astype(np.float64)
        bad = ~np.isfinite(flat)
        if bad.any():
            raise ValueError(f"predict: event {int(np.argwhere(bad)[0][0])} contains NaN or Inf")
        raw = np.zeros(flat.shape, dtype=np.int64)
        nonzero = flat != 0
        raw[nonzero] = quantize(flat[nonzero], self.input_t)  # 0 is 0 in every type and mode
        return raw

    def predict_raw(self, x):
        raw = self._raw_input(x)
        if len(raw) == 0:
            outs = [np.zeros((0, *s), np.int64) for s in self.output_shapes]
        else:
            words, self.last_stats = run_events(self.binary, ports.pack(raw, self.input_t.width, 4), self.out_words)
            layout = [(s, t.width, t.signed) for s, t in zip(self.output_shapes, self.output_types)]
            outs = ports.unpack(words, layout)
        return outs[0] if len(outs) == 1 else outs

    def predict(self, x):
        outs = self.predict_raw(x)
        outs = outs if isinstance(outs, list) else [outs]
        floats = [to_float(o, t) for o, t in zip(outs, self.output_types)]
        return floats[0] if len(floats) == 1 else floats


def load(module, **options) -> RtlSim:
    from codegen.rtl.emit import build

    return RtlSim(build(module, **options))


class XlsJit(RtlSim):
    """The optimised XLS IR of the top run by XLS's JIT (the IR the Verilog is generated from):
    a quick functional check of the lowering for the tests; `RtlSim` simulates the Verilog itself."""

    def __init__(self, module):
        import xls

        from codegen.rtl.lower import TOP, lower

        low = lower(module)
        self.meta = {"input": {"bits": low.input_bits}, "output_bits": low.output_bits}
        self.INPUT_SHAPE = low.input_shape
        self.input_t = low.input_t
        self.output_types = [t for _, t in low.outputs]
        self.output_shapes = [s for s, _ in low.outputs]
        from codegen.rtl.emit import optimize

        self._jit = xls.Package.parse_ir(optimize(low.ir, TOP, 60)[0]).get_function(TOP).to_jit()
        self.last_stats = {}

    def predict_raw(self, x):
        import xls

        raw = self._raw_input(x)
        in_bytes = ports.pack(raw, self.input_t.width)
        n_bytes = -(-self.meta["output_bits"] // 8)
        rows = []
        for row in in_bytes:
            value = self._jit.run([xls.Value.from_bits(xls.Bits.from_bytes(self.meta["input"]["bits"], bytes(row)))])
            rows.append(np.frombuffer(value.get_bits().to_bytes()[:n_bytes].ljust(n_bytes, b"\0"), np.uint8))
        words = np.array(rows, dtype=np.uint8).reshape(len(raw), n_bytes)
        outs = ports.unpack(words, [(s, t.width, t.signed) for s, t in zip(self.output_shapes, self.output_types)])
        return outs[0] if len(outs) == 1 else outs
