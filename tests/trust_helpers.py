"""Helpers of the trust tests (issue 13): small models, hostile names, sandbox snapshots, subprocess runs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import StringAttr

from spx_ir.builder import ModelBuilder, model_function
from spx_ir.fixed import FixedType
from spx_ir.graph import topological_ops

ROOT = Path(__file__).resolve().parent.parent
IN_T = FixedType(8, 3)


def tiny_model(name: str = "tiny", seed: int = 0, layer_names: dict | None = None, sparse: bool = False):
    """A small model (dense, or input_reduce + conv + flatten + dense when sparse) whose function
    is called `name`; layer_names maps an op name (e.g. 'spx.dense') to a `layer` attribute."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.integers(-100, 100, size=s)  # noqa: E731
    if sparse:
        b = ModelBuilder(name, [4, 4, 1], FixedType(8, 1, signed=False))
        feat, hash_ = b.input_reduce(b.input, n_max=3, threshold=0.1)
        y = b.sparse_conv2d(feat, hash_, b.const(w(3, 3, 1, 2), IN_T), b.const(w(2), IN_T), FixedType(16, 6))
        x = b.sparse_flatten(y, hash_, 4, 4)
        x = b.dense(x, b.const(w(32, 3), IN_T), b.const(w(3), IN_T), FixedType(16, 8))
    else:
        b = ModelBuilder(name, [6], IN_T)
        x = b.dense(b.input, b.const(w(6, 3), IN_T), b.const(w(3), IN_T), FixedType(16, 8))
    module = b.finish([b.activation(x, "relu", FixedType(12, 6))])
    for op in topological_ops(module):
        if layer_names and op.name in layer_names:
            op.attributes["layer"] = StringAttr(layer_names[op.name])
    return module


def rename(module, name: str):
    model_function(module).sym_name = StringAttr(name)
    return module


def inputs(module, n: int = 16, seed: int = 1) -> np.ndarray:
    shape = tuple(model_function(module).body.block.args[0].type.get_shape())
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 3, (n, *shape)) * (rng.random((n, *shape)) < 0.5)


def cxx_payload(canary: Path) -> str:
    """A layer name that runs `touch canary` if pasted into C++ (namespace or function scope)."""
    return f'c1\nstatic int spx_pwn = system("touch {canary}");\n//'


def python_payload(canary: Path) -> str:
    """A name that runs `touch canary` if pasted into generated Python (string, docstring or code)."""
    return f"m'\"\"\"\nimport os; os.system('touch {canary}')\n\"\"\"'"


def snapshot(root: Path, skip=()) -> dict[str, tuple]:
    """(kind, size, mtime, digest) of everything under root, but the paths under `skip`."""
    skip = [Path(s) for s in skip]
    state = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not any((here / d) == s or (here / d).is_relative_to(s) for s in skip)]
        for name in dirnames + filenames:
            p = here / name
            if any(p == s or p.is_relative_to(s) for s in skip):
                continue
            st = p.lstat()
            if p.is_symlink():
                state[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                state[str(p)] = ("file", st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                state[str(p)] = ("dir",)
    return state


def run_spx(args, cache: Path, cwd: Path | None = None, timeout: int = 600, module: str = "spx") -> subprocess.CompletedProcess:
    """`python -m spx ARGS` (or spx.cli for spx-opt) in a subprocess with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPX_CACHE": str(cache)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    cmd = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def csim_worker(ir_text: str, x: np.ndarray, cache: str, repeats: int, barrier, results, key) -> None:
    """A process of the concurrency test: waits for the others, then loads the model's C simulation
    afresh `repeats` times (building it when the shared cache lacks it) and reports every output."""
    os.environ["SPX_CACHE"] = cache
    from spx.api import CompiledModel
    from spx_ir.text import parse_module

    module = parse_module(ir_text)
    try:
        barrier.wait(timeout=300)
        results.put((key, [CompiledModel(module).predict(x, backend="csim") for _ in range(repeats)]))
    except BaseException as err:  # reported, so the test names it instead of waiting
        results.put((key, f"{type(err).__name__}: {err}"))
