"""The `numpy` target: turns an spx module into a Python program over the reference kernels.

The same generated program text serves both uses, so they cannot disagree:
- `load(module)` executes it in-process (kernels imported normally);
- `emit(module, out_dir)` writes it as ONE standalone file that needs only numpy: the source of
  `spx_ir/fixed.py`, `spx_ir/tables.py` and `codegen/numpy/kernels.py` is embedded above it, and
  the weights go into a sibling `.npz`.

The program defines `predict(x)`, `predict_raw(x)`, `trace(x)` and `diagnostics(x)`; see RUNTIME.
"""

from __future__ import annotations

import ast
import inspect
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from codegen.names import layer_identifiers, model_identifier, safe_identifier
from codegen.writer import OutputDir
from spx_ir import dialect as spx
from spx_ir.builder import model_function, model_input
from spx_ir.fixed import FixedType, threshold_raw
from spx_ir.graph import layer_names, topological_ops
from spx_ir.text import SpxError

# Runtime part of every generated program: input checks, batching, tracing. It uses the names the
# program section defines: INPUT_T, INPUT_SHAPE, OUTPUT_TYPES, LAYERS and _program(x, rec).
RUNTIME = '''
CHUNK = 2048  # events per _program call: large enough to amortise the per-call overhead


def _check_input(x):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"predict: input dtype {x.dtype} is not numeric")
    if x.shape == INPUT_SHAPE:
        x = x[None]
    if x.ndim != len(INPUT_SHAPE) + 1 or x.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"predict: expected input shape (B, {', '.join(map(str, INPUT_SHAPE))}) or {INPUT_SHAPE}, got {x.shape}")
    return x


def _raw_dtype(t):
    """The narrowest integer dtype holding every raw value of t (object: Python ints, wide types)."""
    if is_wide(t):
        return object
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32):
        if np.iinfo(dtype).min <= t.min_raw and t.max_raw <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def _quantize_input(x, first, image):
    """Writes quantize() of the events first, first+1, ... in x into image, an all-zero raw buffer of
    x's shape; returns the flat indices written (reset them to 0 to reuse the buffer). Zeros stay 0
    in every mode, so only the non-zeros (NaN and Inf among them: rejected here) are converted."""
    flat = x.reshape(-1)
    nonzero = np.flatnonzero(flat != 0)  # (flatnonzero of a bool array is the fast one)
    values = flat[nonzero].astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"predict: event {first + int(nonzero[np.argmax(bad)]) // x[0].size} contains NaN or Inf")
    image.reshape(-1)[nonzero] = quantize(values, INPUT_T)
    return nonzero


def _run(x, record):
    x = _check_input(x)
    # one raw input buffer for all chunks: the images are mostly 0, so refilling it is cheap
    buffer = np.zeros((min(len(x), CHUNK),) + INPUT_SHAPE, dtype=_raw_dtype(INPUT_T))
    outs = []
    for start in range(0, max(len(x), 1), CHUNK):
        rec = (lambda *item: record(start, *item)) if record else (lambda *item: None)
        chunk = x[start:start + CHUNK]
        image = buffer[:len(chunk)]
        written = _quantize_input(chunk, start, image)
        outs.append(_program(image, rec))
        image.reshape(-1)[written] = 0
    return [np.concatenate(parts) for parts in zip(*outs)]


def predict_raw(x):
    """Raw integer outputs (one array per model output, or the array if there is one)."""
    outs = _run(x, None)
    return outs[0] if len(outs) == 1 else outs


def predict(x):
    """Float outputs: the exact values of the fixed-point results."""
    outs = [to_float(o, t) for o, t in zip(_run(x, None), OUTPUT_TYPES)]
    return outs[0] if len(outs) == 1 else outs


def _collect(x):
    parts = {}

    def record(start, layer, t, clipped, value, hash=None, dropped=None):
        entry = parts.setdefault(layer, {"value": [], "hash": [], "clipped": [], "dropped": [], "type": t})
        entry["value"].append(value)
        entry["clipped"].append(clipped)
        if hash is not None:
            entry["hash"].append(hash)
        if dropped is not None:
            entry["dropped"].append(dropped)

    _run(x, record)
    return {k: {f: (np.concatenate(v) if isinstance(v, list) and v else v) for f, v in e.items()} for k, e in parts.items()}


def trace(x):
    """Every layer's output as floats: {layer: array}; sparse layers also give {layer + ':hash': coords}."""
    out = {}
    for layer, e in _collect(x).items():
        out[layer] = to_float(e["value"], e["type"])
        if len(e["hash"]):
            out[layer + ":hash"] = e["hash"]
    return out


def diagnostics(x):
    """{'dropped': active pixels beyond n_max per event, 'saturations': {layer: clipped values per event}}."""
    entries = _collect(x)
    dropped = [e["dropped"] for e in entries.values() if len(e["dropped"])]
    return {
        "dropped": dropped[0] if dropped else np.zeros(0, dtype=np.int64),
        "saturations": {layer: e["clipped"] for layer, e in entries.items()},
    }
'''

EMBEDDED_MODULES = ("spx_ir.fixed", "spx_ir.tables", "codegen.numpy.kernels")


class _Program:
    """Generates the program section for one model function."""

    def __init__(self, module: ModuleOp):
        self.fn = model_function(module)
        self.module = module
        self.values: dict[SSAValue, str] = {}
        self.types: dict[FixedType, str] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.decls: list[str] = []
        self.body: list[str] = []

    def type_name(self, t) -> str:
        t = t.spec if isinstance(t, spx.FixedPointType) else t
        if t not in self.types:
            self.types[t] = f"T{len(self.types)}"
            self.decls.append(f"{self.types[t]} = FixedType({t.width}, {t.int_bits}, {t.signed}, {t.quant!r}, {t.overflow!r})")
        return self.types[t]

    def elem(self, v: SSAValue) -> str:
        return self.type_name(v.type.element_type)

    def name(self, v: SSAValue) -> str:
        if v not in self.values:
            self.values[v] = f"v{len(self.values)}"
        return self.values[v]

    def acc(self, op) -> str:
        return "None" if op.accum_type is None else self.type_name(op.accum_type)

    def table(self, op, in_v: SSAValue, out_v: SSAValue) -> str:
        kind = op.kind.data
        if kind not in ("sigmoid", "tanh", "softmax"):
            return "None"
        name = f"TABLE{len(self.decls)}"
        size = op.table_size.value.data if op.table_size is not None else None
        if kind == "softmax":
            n = in_v.type.get_shape()[-1]
            self.decls.append(f"{name} = softmax_tables({self.elem(in_v)}, {n}, table_size={size})")
        else:
            size_arg = "" if size is None else f", {size}"
            self.decls.append(f"{name} = {kind}_table({self.elem(in_v)}, {self.elem(out_v)}{size_arg})")
        return name

    def generate(self, names: dict) -> str:
        fn = self.fn
        arg = model_input(fn)
        self.values[arg] = "x"
        for op in topological_ops(self.module):
            self.body.append(self.line(op, names.get(op)))
        shape = tuple(arg.type.get_shape())
        header = [
            f"INPUT_SHAPE = {shape}",
            f"INPUT_T = {self.elem(arg)}",
        ]
        ret = fn.body.block.last_op
        out_types = ", ".join(self.elem(v) for v in ret.operands)
        lines = self.decls + header + [f"OUTPUT_TYPES = [{out_types}]", f"LAYERS = {list(names.values())!r}", "", "",
                                       "def _program(x, rec):"]
        return "\n".join(lines + [f"    {b}" for b in self.body if b]) + "\n"

    def line(self, op, layer: str | None) -> str:
        n, e = self.name, self.elem
        if isinstance(op, spx.ConstOp):
            key = n(op.result)
            self.weights[key] = op.raw()
            return f"{key} = W[{key!r}]"
        if isinstance(op, func.ReturnOp):
            return f"return [{', '.join(n(v) for v in op.operands)}]"
        if isinstance(op, spx.InputReduceOp):
            in_t = op.image.type.element_type.spec
            thr = threshold_raw(op.threshold.value.data, in_t)
            f, h = n(op.feat), n(op.hash)
            return (f"{f}, {h}, dropped, c = input_reduce({n(op.image)}, {e(op.image)}, {thr}, {op.n_max.value.data}, {e(op.feat)}, "
                    f"{spx.variant(op, 'activity')!r}); "
                    f"rec({layer!r}, {e(op.feat)}, c, {f}, {h}, dropped)")
        if isinstance(op, spx.SparseConv2DOp):
            r = n(op.result)
            return (f"{r}, c = sparse_conv2d({n(op.feat)}, {n(op.hash)}, {e(op.feat)}, {n(op.weight)}, {e(op.weight)}, "
                    f"{n(op.bias)}, {e(op.bias)}, {self.acc(op)}, {e(op.result)}, {spx.variant(op, 'bias_mode')!r}); "
                    f"rec({layer!r}, {e(op.result)}, c, {r}, {n(op.hash)})")
        if isinstance(op, spx.SparseActivationOp):
            r = n(op.result)
            return (f"{r}, c = sparse_activation({n(op.feat)}, {n(op.hash)}, {e(op.feat)}, {op.kind.data!r}, {e(op.result)}, "
                    f"{self.table(op, op.feat, op.result)}); rec({layer!r}, {e(op.result)}, c, {r}, {n(op.hash)})")
        if isinstance(op, spx.SparsePool2DOp):
            f, h = n(op.feat_out), n(op.hash_out)
            return (f"{f}, {h}, c = sparse_pool2d({n(op.feat)}, {n(op.hash)}, {e(op.feat)}, {op.size.value.data}, {op.mode.data!r}, "
                    f"{op.height.value.data}, {op.width.value.data}, {e(op.feat_out)}, {spx.variant(op, 'inactive')!r}); "
                    f"rec({layer!r}, {e(op.feat_out)}, c, {f}, {h})")
        if isinstance(op, (spx.QuantizeOp, spx.SparseQuantizeOp)):
            r, table = n(op.result), f"kif{len(self.weights)}"
            self.weights[table] = np.array(op.kif.get_values(), dtype=np.int64).reshape(op.kif.type.get_shape())
            modes = f"{op.quant.data!r}, {op.overflow.data!r}, {e(op.result)}"
            if isinstance(op, spx.QuantizeOp):
                return (f"{r}, c = quantize_elements({n(op.input)}, {e(op.input)}, W[{table!r}], {modes}); "
                        f"rec({layer!r}, {e(op.result)}, c, {r})")
            return (f"{r}, c = sparse_quantize({n(op.feat)}, {n(op.hash)}, {e(op.feat)}, W[{table!r}], {modes}); "
                    f"rec({layer!r}, {e(op.result)}, c, {r}, {n(op.hash)})")
        if isinstance(op, spx.SparseFlattenOp):
            r = n(op.result)
            return (f"{r} = sparse_flatten({n(op.feat)}, {n(op.hash)}, {op.height.value.data}, {op.width.value.data}); "
                    f"rec({layer!r}, {e(op.result)}, np.zeros(len({r}), np.int64), {r})")
        if isinstance(op, spx.DenseOp):
            r = n(op.result)
            return (f"{r}, c = dense({n(op.input)}, {e(op.input)}, {n(op.weight)}, {e(op.weight)}, {n(op.bias)}, {e(op.bias)}, "
                    f"{self.acc(op)}, {e(op.result)}); rec({layer!r}, {e(op.result)}, c, {r})")
        if isinstance(op, spx.ActivationOp):
            r = n(op.result)
            return (f"{r}, c = activation({n(op.input)}, {e(op.input)}, {op.kind.data!r}, {e(op.result)}, "
                    f"{self.table(op, op.input, op.result)}); rec({layer!r}, {e(op.result)}, c, {r})")
        raise SpxError(f"error: the numpy target does not support op '{op.name}'")


def generate(module: ModuleOp) -> tuple[str, dict[str, np.ndarray]]:
    """(program section source, weights by name) for a verified module."""
    program = _Program(module)
    source = program.generate(layer_identifiers(module))
    return source + RUNTIME, program.weights


def load(module: ModuleOp) -> SimpleNamespace:
    """Runs the generated program in-process: an object with predict/predict_raw/trace/diagnostics."""
    from codegen.numpy import kernels
    from spx_ir import fixed, tables

    source, weights = generate(module)
    namespace = {"np": np, "W": weights}
    for mod in (fixed, tables, kernels):
        namespace.update({k: v for k, v in vars(mod).items() if not k.startswith("__")})
    exec(compile(source, f"<spx numpy program {model_identifier(module)}>", "exec"), namespace)
    # the program knows layers by their safe identifiers; in-process results use the IR's layer names
    names = layer_names(module)
    key = {ident: names[op] for op, ident in layer_identifiers(module).items()}.get

    def renamed(d: dict) -> dict:
        return {key(k.split(":")[0], k.split(":")[0]) + k[len(k.split(":")[0]):]: v for k, v in d.items()}

    def trace(x):
        return renamed(namespace["trace"](x))

    def diagnostics(x):
        result = namespace["diagnostics"](x)
        return {**result, "saturations": renamed(result["saturations"])}

    return SimpleNamespace(predict=namespace["predict"], predict_raw=namespace["predict_raw"], trace=trace,
                           diagnostics=diagnostics, LAYERS=[key(k, k) for k in namespace["LAYERS"]],
                           INPUT_SHAPE=namespace["INPUT_SHAPE"])


def _embedded_source() -> str:
    """The library modules' source with their spx-internal imports removed (checked for name clashes)."""
    import importlib

    chunks, seen = [], {}
    for name in EMBEDDED_MODULES:
        src = inspect.getsource(importlib.import_module(name))
        tree = ast.parse(src)
        drop = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("spx_ir", "codegen", "__future__"):
                drop.update(range(node.lineno, node.end_lineno + 1))
            for target in _defined_names(node):
                assert target not in seen or target.startswith("__"), f"{name} redefines {target} of {seen.get(target)}"
                seen[target] = name
        lines = [line for i, line in enumerate(src.splitlines(), 1) if i not in drop]
        chunks.append(f"# ---- embedded from {name} ----\n" + "\n".join(lines))
    return "\n\n".join(chunks)


def _defined_names(node) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def standalone_files(module: ModuleOp, name: str | None = None) -> dict[str, bytes]:
    """{file name: content} of the standalone reference: `<name>.py` (numpy only) and `<name>.npz`.

    `name` (default: the model function's) goes through `codegen.names.safe_identifier`: the file
    holds no text from the model besides safe identifiers and numbers."""
    name = safe_identifier(name if name is not None else model_function(module).sym_name.data)
    source, weights = generate(module)
    header = (
        f'"""spx NumPy reference for model `{name}` (generated; needs only numpy).\n\n'
        f"    import {name}; y = {name}.predict(x)   # x: (B, *INPUT_SHAPE) floats\n"
        f'"""\nfrom __future__ import annotations\n\nimport os\nimport sys\nimport types\n\nimport numpy as np\n\n'
        # dataclasses look their module up in sys.modules: stand in while a loader that did not
        # register this module (importlib.util.module_from_spec + exec_module) runs it
        "_PLACEHOLDER = None if __name__ in sys.modules else sys.modules.setdefault(__name__, types.ModuleType(__name__))\n\n"
    )
    loader = (f'\n\nif _PLACEHOLDER is not None and sys.modules.get(__name__) is _PLACEHOLDER:\n    del sys.modules[__name__]\n'
              f'\n# ---- model program ----\nW = dict(np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "{name}.npz")))\n')
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    return {f"{name}.py": (header + _embedded_source() + loader + source).encode(), f"{name}.npz": buffer.getvalue()}


def emit(module: ModuleOp, out_dir: str | Path, name: str | None = None) -> Path:
    """Writes `<name>.py` (standalone: numpy only) and `<name>.npz` into out_dir (through
    `codegen.writer.OutputDir`: nothing outside it); returns the .py path."""
    out = OutputDir(out_dir)
    paths = [out.write_bytes(rel, data) for rel, data in standalone_files(module, name).items()]
    return paths[0]
