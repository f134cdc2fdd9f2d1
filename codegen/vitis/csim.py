"""C simulation of the vitis target: the generated HLS C++ compiled by g++ and run in-process.

`load(module)` writes the project into the cache ($SPX_CACHE/vitis-csim/<hash>), adds a small
bridge (templates/csim_bridge.cpp: `extern "C"` entry points taking raw int64 events), compiles it
with `toolchain.compile_cpp(shared=True)` (-O2 -std=c++17, -Wall -Wextra -Werror, cached by content
hash) and loads it with ctypes. Inputs are checked in Python (shape, dtype, NaN/Inf) and quantized
exactly as the NumPy target does (`spx_ir.fixed.quantize`) BEFORE entering C++; buffer sizes are
checked against the library's own, so the C++ never reads or writes out of bounds.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codegen.vitis import toolchain
from codegen.vitis.emit import LIBRARY, TEMPLATES, Model, _fill, emit, output_code
from spx_ir.fixed import quantize, to_float

# HLS pragmas are unknown to g++; everything else must compile warning-free.
WARNING_FLAGS = ("-Werror", "-Wno-unknown-pragmas")
CHUNK = 1024  # events per C++ call; chunks run on parallel threads

_I64P = ctypes.POINTER(ctypes.c_longlong)


def _source_digest() -> str:
    """Digest of everything besides the IR that shapes the generated code."""
    h = hashlib.sha256()
    for path in sorted(LIBRARY.glob("*.h")) + sorted(TEMPLATES.glob("*")) + [Path(__file__).with_name("emit.py")]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build(module, build_dir: Path | None = None) -> tuple[Model, Path]:
    """Writes the project and the bridge, compiles it; returns (model, shared library path)."""
    model = Model(module)
    key = hashlib.sha256((model.ir_hash + _source_digest()).encode()).hexdigest()[:20]
    build_dir = Path(build_dir) if build_dir else toolchain.cache_dir() / "vitis-csim" / f"{model.name}-{key}"
    emit(module, build_dir, force=True, tb_events=0)
    bridge = build_dir / "csim_bridge.cpp"
    text = _fill("csim_bridge.cpp", name=model.name, n_trace_total=sum(math.prod(t.shape) for t in model.traces),
                 **output_code(model, " " * 8, "*sink++ = {}"))
    if not bridge.is_file() or bridge.read_text() != text:
        tmp = bridge.with_name(f".{bridge.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, bridge)
    lib = toolchain.compile_cpp([bridge], build_dir / f"lib{model.name}_csim.so", shared=True,
                                extra_flags=WARNING_FLAGS)
    return model, lib


class CSim:
    """predict / predict_raw / trace of the generated C++ (same interface as the NumPy target)."""

    def __init__(self, module, build_dir: Path | None = None):
        self.model, self.library = build(module, build_dir)
        m = self.model
        self.INPUT_SHAPE = m.input_shape
        self.LAYERS = list(dict.fromkeys(t.key.split(":")[0] for t in m.traces))
        self._lib = ctypes.CDLL(str(self.library))
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

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x)
        shape = self.INPUT_SHAPE
        if x.dtype.kind not in "biuf":
            raise ValueError(f"predict: input dtype {x.dtype} is not numeric")
        if x.shape == shape:
            x = x[None]
        if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
            dims = ", ".join(map(str, shape))
            raise ValueError(f"predict: expected input shape (B, {dims}) or {shape}, got {x.shape}")
        x = x.astype(np.float64)
        if x.size and not np.isfinite(x.min() + x.max()):  # NaN and Inf propagate into min / max
            bad = ~np.isfinite(x).reshape(len(x), math.prod(shape)).all(axis=1)
            raise ValueError(f"predict: event {int(np.argmax(bad))} contains NaN or Inf")
        return x

    def _run(self, x, with_trace: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = self._check(x)
        n = len(x)
        n_in, n_out, n_trace = self._sizes
        raw = np.zeros((n, n_in), dtype=np.int64)
        flat, nonzero = x.reshape(n, n_in), x.reshape(n, n_in) != 0
        raw[nonzero] = quantize(flat[nonzero], self.model.input_spec)  # 0 is 0 in every type and mode
        out = np.zeros((n, n_out), dtype=np.int64)
        trace = np.zeros((n, n_trace), dtype=np.int64) if with_trace else None

        def run(start: int) -> None:
            stop = min(start + CHUNK, n)
            ptr = lambda a: a[start:stop].ctypes.data_as(_I64P)  # noqa: E731  rows are contiguous
            self._lib.spx_run(stop - start, ptr(raw), ptr(out), ptr(trace) if with_trace else None)

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


def load(module, build_dir: Path | None = None) -> CSim:
    """Compiles (or reuses) the C simulation of a verified module."""
    return CSim(module, build_dir)
