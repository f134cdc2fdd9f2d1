"""Pass registry and pipeline strings (`-p 'a,b{opt=1 other=x}'`, as in mlir-opt/xdsl-opt).

Register a pass from anywhere with the decorator

    from passes import register_pass
    @register_pass
    @dataclass(frozen=True)
    class MyPass(ModulePass):
        name = "my-pass"
        factor: int = 2
        def apply(self, ctx, module): ...

or, from another installed package, with an entry point in its pyproject.toml:

    [project.entry-points."spx.passes"]
    my-pass = "my_package.my_module:MyPass"
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import threading
from importlib.metadata import entry_points

from xdsl.passes import ModulePass, PassPipeline, get_pass_option_infos
from xdsl.utils.arg_spec import parse_pipeline as _parse_specs
from xdsl.utils.exceptions import ArgSpecParseError

from spx_ir.text import SpxError

ENTRY_POINT_GROUP = "spx.passes"
BUILTIN_PASS_MODULES = ("passes.canonicalize", "passes.fixed_point", "passes.unroll", "passes.estimate", "passes.tune")

_registry: dict[str, type[ModulePass]] = {}
_loaded = False
_lock = threading.RLock()  # the first call loads the passes; others wait for it (reentrant: imports register)


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Class decorator: makes a ModulePass available to `spx-opt -p` and `run_pipeline`."""
    if not (isinstance(cls, type) and issubclass(cls, ModulePass)):
        raise TypeError(f"register_pass expects a ModulePass subclass, got {cls!r}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"pass {cls.__name__} must be a @dataclass(frozen=True)")
    with _lock:
        existing = _registry.get(cls.name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"pass name '{cls.name}' is already registered by {existing.__module__}.{existing.__qualname__}")
        _registry[cls.name] = cls
    return cls


def available_passes() -> dict[str, type[ModulePass]]:
    """All registered passes: built-in ones, entry points of group `spx.passes`, and decorated ones."""
    global _loaded
    with _lock:
        if not _loaded:
            for module in BUILTIN_PASS_MODULES:
                importlib.import_module(module)
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                register_pass(ep.load())
            _loaded = True
        return dict(sorted(_registry.items()))


def describe_pass(cls: type[ModulePass]) -> str:
    """`name{opt: type = default ...}  first docstring line`."""
    options = " ".join(f"{o.name}: {o.expected_type}" + (f" = {o.default_value}" if o.default_value is not None else "") for o in get_pass_option_infos(cls))
    doc = (cls.__doc__ or "").strip().splitlines()
    return f"{cls.name}" + (f"{{{options}}}" if options else "") + (f"  {doc[0]}" if doc else "")


def _quote_paths(text: str) -> str:
    """Quotes unquoted option values holding characters xDSL's pass syntax has no token for
    (`profile=data/x.npy` -> `profile="data/x.npy"`)."""
    def quote(m: re.Match) -> str:
        value = m[2]
        if re.fullmatch(r"[\w.+-]*", value) or '"' in value:
            return m[0]
        return f'{m[1]}="{value}"'
    return re.sub(r'([\w-]+)=([^\s,{}"]+)', quote, text)


def parse_pipeline(text: str) -> PassPipeline:
    """Builds a pipeline from `a,b{opt=1}`; unknown passes/options raise SpxError listing the valid ones."""
    passes = available_passes()
    try:
        specs = list(_parse_specs(_quote_paths(text)))
    except ArgSpecParseError as err:  # a BaseException in xdsl
        raise SpxError(f"error: malformed pipeline '{text}': {str(err).splitlines()[-1].strip()}") from None
    built = []
    for spec in specs:
        cls = passes.get(spec.name)
        if cls is None:
            raise SpxError(f"error: unknown pass '{spec.name}'; available passes: {', '.join(passes)}")
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in spec.normalize_parameter_names().parameters:
            if key not in valid:
                listing = ", ".join(valid) if valid else "none"
                raise SpxError(f"error: unknown option '{key}' for pass '{spec.name}'; valid options: {listing}")
        try:
            built.append(cls.from_pass_spec(spec))
        except (ValueError, TypeError) as err:
            raise SpxError(f"error: pass '{spec.name}': {err}; options: {describe_pass(cls)}") from None
    return PassPipeline(tuple(built))


def run_pipeline(module, pipeline: str | PassPipeline, verify_each: bool = True):
    """Applies a pipeline in place and returns the module; each pass's output is verified."""
    from xdsl.utils.exceptions import DiagnosticException

    from spx_ir.text import context, verify

    if isinstance(pipeline, str):
        pipeline = parse_pipeline(pipeline)
    ctx = context()
    for p in pipeline.passes:
        try:
            p.apply(ctx, module)
        except DiagnosticException as err:
            raise SpxError(f"error: pass '{p.name}' failed: {str(err).strip().splitlines()[0]}") from None
        if verify_each:
            verify(module, f"after pass '{p.name}'")
    return module
