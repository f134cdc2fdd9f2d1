"""Code-generation targets behind one registry.

A target is an object with a `name` and `emit(module, out_dir) -> Path`. Built-in targets:
`numpy` (standalone NumPy reference) and, when present, `vitis` (HLS project) and `rtl`
(Verilog through XLS). Third parties
register more with `register_target(obj)` or an entry point in group `spx.targets`.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points

from spx_ir.text import SpxError

ENTRY_POINT_GROUP = "spx.targets"
BUILTIN_TARGETS = {"numpy": "codegen.numpy.target:TARGET", "vitis": "codegen.vitis.target:TARGET",
                   "rtl": "codegen.rtl.target:TARGET"}

_targets: dict = {}
_loaded = False
_lock = threading.RLock()  # the first call loads the targets; others wait for it (reentrant: a target may register more)


def register_target(target) -> object:
    """Makes a target available by its `name`."""
    if not (hasattr(target, "name") and callable(getattr(target, "emit", None))):
        raise TypeError(f"a target needs a `name` and an `emit(module, out_dir)` method, got {target!r}")
    with _lock:
        _targets[target.name] = target
    return target


def available_targets() -> dict:
    """Every target by name (built-in, entry points, registered); thread-safe."""
    global _loaded
    with _lock:
        if not _loaded:
            for spec in BUILTIN_TARGETS.values():
                module, attr = spec.split(":")
                try:
                    register_target(getattr(importlib.import_module(module), attr))
                except ModuleNotFoundError as err:
                    if err.name != module:
                        raise
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                register_target(ep.load())
            _loaded = True
        return dict(sorted(_targets.items()))


def get_target(name: str):
    targets = available_targets()
    if name not in targets:
        raise SpxError(f"error: unknown target '{name}'; available targets: {', '.join(targets)}")
    return targets[name]
