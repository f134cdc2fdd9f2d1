"""C simulation of the vitis target: the generated HLS C++ compiled by g++ and run in-process.

`load(module)` builds a cache entry (codegen.cache, kind `vitis-csim`) holding the project files, a
small bridge (templates/csim_bridge.cpp: `extern "C"` entry points taking raw int64 events) and the
shared library g++ made of them (-O2 -std=c++14 as build_prj.tcl, -Wall -Wextra -Werror). The entry's key covers every
one of those files' bytes, the compiler and its version, the flags and the ap_types headers; after
loading, the library must report this module's IR hash and buffer sizes, or it is not used.
Inputs are checked in Python (shape, dtype, NaN/Inf) and quantized exactly as the NumPy target does
(`spx_ir.fixed.quantize`) BEFORE entering C++, a chunk of events at a time: memory beyond the
outputs stays bounded whatever the batch size.
"""

from __future__ import annotations

import ctypes
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codegen import cache
from codegen.events import batch
from codegen.vitis import toolchain
from codegen.vitis.emit import project_files
from codegen.vitis.model import Model
from codegen.vitis.render import _fill, output_code
from codegen.writer import OutputDir
from spx_ir.fixed import quantize, to_float
from spx_ir.text import SpxError

# HLS pragmas are unknown to g++; everything else must compile warning-free.
WARNING_FLAGS = ("-Werror", "-Wno-unknown-pragmas")
CHUNK = 1024  # events per C++ call; chunks run on parallel threads
LIBRARY_NAME = "libspx_csim.so"

_I64P = ctypes.POINTER(ctypes.c_longlong)


def sources(module, model: Model) -> dict[str, bytes]:
    """Every file the C simulation is compiled from: the project (no test-bench data) and the bridge."""
    files = project_files(module, model, tb_events=0)
    files["csim_bridge.cpp"] = _fill("csim_bridge.cpp", name=model.name, ir_sha256=model.ir_hash,
                                     n_trace_total=sum(math.prod(t.shape) for t in model.traces),
                                     **output_code(model, " " * 8, "*sink++ = {}"))
    return {rel: text.encode() for rel, text in files.items()}


def build(module) -> tuple[Model, Path]:
    """The cache entry's shared library for `module` (built if needed); returns (model, library)."""
    model = Model(module)
    files = sources(module, model)
    gxx = toolchain.find_gxx()
    flags = toolchain.base_flags(True, WARNING_FLAGS)

    def compile_into(work: Path) -> None:
        out = OutputDir(work)
        for rel, data in files.items():
            out.write_bytes(rel, data)
        toolchain.run_gxx(gxx, flags, [work / "csim_bridge.cpp"], work / LIBRARY_NAME)

    entry = cache.entry("vitis-csim", toolchain.build_key(gxx, flags, files), compile_into)
    return model, entry / LIBRARY_NAME


class CSim:
    """predict / predict_raw / trace of the generated C++ (same interface as the NumPy target)."""

    def __init__(self, module):
        self.model, self.library = build(module)
        m = self.model
        self.INPUT_SHAPE = m.input_shape
        self.LAYERS = list(dict.fromkeys(t.key.split(":")[0] for t in m.traces))
        try:
            self._lib = ctypes.CDLL(str(self.library))
            self._lib.spx_ir_sha256.restype = ctypes.c_char_p
            identity = self._lib.spx_ir_sha256().decode()
        except (OSError, AttributeError) as err:
            raise SpxError(f"{self.library}: error: cannot load the C simulation library: {err}") from None
        if identity != m.ir_hash:  # another model's library: never run it
            raise SpxError(f"{self.library}: error: C simulation library was built for IR {identity[:16]}, "
                           f"not this model's {m.ir_hash[:16]}")
        self._lib.spx_size.argtypes, self._lib.spx_size.restype = [ctypes.c_int], ctypes.c_longlong
        self._lib.spx_run.argtypes = [ctypes.c_longlong, _I64P, _I64P, _I64P]
        self._lib.spx_run.restype = None
        self._sizes = (math.prod(m.input_shape), sum(o.size for o in m.outputs),
                       sum(math.prod(t.shape) for t in m.traces))
        got = tuple(self._lib.spx_size(i) for i in range(3))
        if got != self._sizes:
            raise RuntimeError(f"vitis csim: library {self.library} has sizes {got}, expected {self._sizes}")
        self._output_shapes = [v.type.get_shape() for v in m.returned]

    # ------------------------------------------------------------------------------ running

    def _raw_chunk(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Raw int64 inputs of events start..stop (quantized like the NumPy target; NaN/Inf refused)."""
        flat = x[start:stop].reshape(stop - start, -1)
        raw = np.zeros(flat.shape, dtype=np.int64)
        nonzero = flat != 0  # 0 is 0 in every type and mode
        values = flat[nonzero].astype(np.float64)
        if not np.isfinite(values).all():
            bad = ~np.isfinite(flat.astype(np.float64)).all(axis=1)
            raise ValueError(f"predict: event {start + int(np.argmax(bad))} contains NaN or Inf")
        raw[nonzero] = quantize(values, self.model.input_spec)
        return raw

    def _run(self, x, with_trace: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = batch(x, self.INPUT_SHAPE)
        n = len(x)
        _, n_out, n_trace = self._sizes
        out = np.zeros((n, n_out), dtype=np.int64)
        trace = np.zeros((n, n_trace), dtype=np.int64) if with_trace else None

        def run(start: int) -> None:  # each worker converts only its own chunk
            stop = min(start + CHUNK, n)
            raw = self._raw_chunk(x, start, stop)
            ptr = lambda a: a[start:stop].ctypes.data_as(_I64P)  # noqa: E731  rows are contiguous
            self._lib.spx_run(stop - start, raw.ctypes.data_as(_I64P), ptr(out), ptr(trace) if with_trace else None)

        starts = range(0, n, CHUNK)
        if len(starts) > 1:
            with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
                list(pool.map(run, starts))  # ctypes releases the GIL during the call
        elif n:
            run(0)
        return out, trace

    def _split(self, out: np.ndarray) -> list[np.ndarray]:
        parts, start = [], 0
        for shape in self._output_shapes:
            size = math.prod(shape)
            parts.append(out[:, start:start + size].reshape(len(out), *shape))
            start += size
        return parts

    def predict_raw(self, x):
        """Raw integer outputs (one array per model output, or the array if there is one)."""
        outs = self._split(self._run(x, False)[0])
        return outs[0] if len(outs) == 1 else outs

    def predict(self, x):
        """Float outputs: the exact values of the fixed-point results."""
        outs = [to_float(o, spec) for o, spec in zip(self._split(self._run(x, False)[0]), self.model.output_specs)]
        return outs[0] if len(outs) == 1 else outs

    def trace_raw(self, x) -> dict[str, np.ndarray]:
        """Every layer output as raw integers: {layer: raw}, plus {layer + ':hash': coordinates}."""
        _, trace = self._run(x, True)
        result, start = {}, 0
        for t in self.model.traces:
            size = math.prod(t.shape)
            result[t.key] = trace[:, start:start + size].reshape(len(trace), *t.shape)
            start += size
        for alias, key in self.model.trace_aliases.items():  # the hash a conv / activation layer read
            result[alias] = result[key]
        return result

    def trace(self, x) -> dict[str, np.ndarray]:
        """Every layer output as floats (hashes as integers), keyed like the NumPy target's trace."""
        specs = {t.key: t.spec for t in self.model.traces}
        return {k: v if specs.get(k) is None else to_float(v, specs[k]) for k, v in self.trace_raw(x).items()}


def load(module) -> CSim:
    """Compiles (or reuses) the C simulation of a verified module."""
    return CSim(module)
