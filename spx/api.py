"""The public Python API: compile a Keras model or spx IR, predict with a chosen backend, write targets.

    import spx
    cm = spx.compile(keras_model, config=cfg)          # lower + default pipeline
    y = cm.predict(x)                                   # NumPy reference (bit-exact oracle)
    y = cm.predict(x, backend="csim")                   # C simulation of the generated HLS C++
    y = cm.predict(x, backend="rtl")                    # Verilator simulation of the rtl target
    cm.write("out/")                                    # model.mlir + numpy/ + vitis/ projects
"""

from __future__ import annotations

import json
from pathlib import Path

from spx_ir.text import SpxError, parse_module, print_module

DEFAULT_PIPELINE = "canonicalize"
MARKER = "spx_project.json"
BACKENDS = ("numpy", "csim", "rtl")
BACKEND_TARGETS = {"numpy": "numpy", "csim": "vitis", "rtl": "rtl"}


def default_pipeline() -> str:
    """canonicalize, then typing/schedule/estimate passes when they are installed."""
    from passes import available_passes

    names = [DEFAULT_PIPELINE] + [p for p in ("spx-fixed-point", "spx-unroll", "spx-estimate") if p in available_passes()]
    return ",".join(names)


class CompiledModel:
    """An optimised spx module plus lazily built backends."""

    def __init__(self, module):
        self.module = module
        self._backends: dict = {}

    @property
    def name(self) -> str:
        from spx_ir.builder import model_function

        return model_function(self.module).sym_name.data

    @property
    def ir(self) -> str:
        return print_module(self.module)

    def backend(self, name: str):
        if name not in BACKENDS:
            raise SpxError(f"error: unknown backend '{name}'; available backends: {', '.join(BACKENDS)}")
        if name not in self._backends:
            from codegen import get_target

            self._backends[name] = get_target(BACKEND_TARGETS[name]).load(self.module)
        return self._backends[name]

    def predict(self, x, backend: str = "numpy"):
        return self.backend(backend).predict(x)

    def predict_raw(self, x, backend: str = "numpy"):
        return self.backend(backend).predict_raw(x)

    def trace(self, x):
        return self.backend("numpy").trace(x)

    def diagnostics(self, x):
        """Per event: active pixels dropped by input_reduce and values clipped per layer."""
        return self.backend("numpy").diagnostics(x)

    def write(self, out_dir, targets=("numpy", "vitis"), force: bool = False) -> Path:
        """Writes model.mlir, one sub-directory per target and the marker file into out_dir.

        Everything is built in a staging directory inside out_dir and moved into place when complete
        (codegen.writer.OutputDir.staged): a failed target leaves an existing project as it was and
        creates nothing. Entries spx owns (model.mlir, the target directories, the marker) are
        replaced whole; anything else in out_dir is left alone."""
        from codegen import get_target
        from codegen.names import model_identifier

        targets = list(targets)
        emitters = [get_target(t) for t in targets]  # unknown targets fail before anything is written
        out = prepare_output_dir(out_dir, force)
        with out.staged(last=(MARKER,)) as stage:
            stage.write_text("model.mlir", self.ir)
            for t, target in zip(targets, emitters):
                target.emit(self.module, stage.mkdir(t))
            marker = {"spx": 1, "model": model_identifier(self.module), "targets": targets}
            stage.write_text(MARKER, json.dumps(marker, indent=1) + "\n")
        return out.root


def read_marker(out_dir) -> dict | None:
    """The project marker of out_dir if it is a valid one (a JSON object {"spx": 1, "model": str,
    "targets": [str]} written by spx, next to a model.mlir), else None."""
    from codegen.writer import OutputDir

    out = OutputDir(out_dir)
    text = out.read_text(MARKER, limit=1 << 16)
    try:
        info = json.loads(text) if text is not None else None
    except ValueError:
        return None
    valid = (isinstance(info, dict) and info.get("spx") == 1 and isinstance(info.get("model"), str)
             and isinstance(info.get("targets"), list) and all(isinstance(t, str) for t in info["targets"])
             and (out.root / "model.mlir").is_file() and not (out.root / "model.mlir").is_symlink())
    return info if valid else None


def prepare_output_dir(out_dir, force: bool):
    """An `OutputDir` for out_dir: new, empty or an spx project; anything else is refused unless forced."""
    from codegen.writer import OutputDir

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SpxError(f"{out}: error: output path exists and is not a directory")
    busy = out.is_dir() and any(not p.name.startswith(".spx-staging-") for p in out.iterdir())  # not another compile's
    if busy and read_marker(out) is None and not force:
        raise SpxError(f"{out}: error: directory exists and is not an spx project (use --force to write into it)")
    return OutputDir(out)


def load_model_file(path, config: dict | None = None) -> object:
    """A Keras model (.keras/.h5) or spx IR (.mlir); one-line errors for missing/unloadable files.
    A Keras 3 .keras (sparsepixels + HGQ2) is read without Keras and returned lowered (with `config`)."""
    p = Path(path)
    if not p.is_file():
        raise SpxError(f"{path}: error: no such file")
    if p.suffix == ".mlir":
        return parse_module(read_text_file(p), str(p))
    if p.suffix == ".keras":
        import frontends.sparsepixels as sparsepixels

        if sparsepixels.is_keras3_archive(p):
            return sparsepixels.load(p, config)
        import zipfile

        if not zipfile.is_zipfile(p):
            raise SpxError(f"{path}: error: not a Keras .keras archive (a .keras file is a zip)")
    if p.suffix in (".keras", ".h5"):
        import frontends.keras  # noqa: F401  registers custom objects (and forces Keras 2)
        import tf_keras

        try:
            return tf_keras.models.load_model(str(p), compile=False)
        except Exception as err:  # noqa: BLE001  any loader failure is the user's file
            first_error = err
        # A model saved under floatx float64 (DESIGN.md section 5) holds float64 layers, which QKeras'
        # quantizers (they compute in floatx) can only be called in under floatx float64.
        floatx = tf_keras.backend.floatx()
        try:
            tf_keras.backend.set_floatx("float64")
            return tf_keras.models.load_model(str(p), compile=False)
        except Exception:  # noqa: BLE001  report the first attempt's cause
            raise SpxError(f"{path}: error: cannot load Keras model: {_load_error(first_error)}") from None
        finally:
            tf_keras.backend.set_floatx(floatx)
    raise SpxError(f"{path}: error: unknown model format '{p.suffix}' (expected .keras, .h5 or .mlir)")


def _load_error(err: Exception) -> str:
    """One line from a Keras loading exception: the layer it names and the underlying cause."""
    import re

    text = str(err).strip()
    layer = re.search(r'layer "([^"]+)" \(type (\w+)\)', text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = next((line for line in lines[1:] if not line.startswith(("Call arguments", "•"))),
                 lines[0] if lines else type(err).__name__)
    cause = cause if len(cause) <= 300 else cause[:300] + "..."
    return f"layer '{layer[1]}' ({layer[2]}): {cause}" if layer else cause


def one_line(err: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, shortened (a loader may put a whole config in it)."""
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else type(err).__name__
    return first if len(first) <= limit else first[:limit - 3] + "..."


def load_config(path) -> dict | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise SpxError(f"{path}: error: no such file")
    try:
        if p.suffix in (".yml", ".yaml"):
            import yaml

            return yaml.safe_load(p.read_text())
        return json.loads(p.read_text())
    except Exception as err:  # noqa: BLE001
        raise SpxError(f"{path}: error: cannot read config: {one_line(err)}") from None


def compile(model, config: dict | None = None, pipeline: str | None = None) -> CompiledModel:  # noqa: A001
    """Lowers a Keras model (tf-keras/QKeras, or a live Keras 3 sparsepixels model), or takes an spx
    module / .mlir / .keras path (tf-keras or sparsepixels), and runs the pipeline."""
    from xdsl.dialects.builtin import ModuleOp

    from passes import run_pipeline

    if isinstance(model, (str, Path)):
        model = load_model_file(model, config)
    elif not isinstance(model, ModuleOp):
        import frontends.sparsepixels as sparsepixels

        if sparsepixels.is_keras3_model(model):  # a live Keras 3 (sparsepixels + HGQ2) model
            model = sparsepixels.from_model(model, config)
    if not isinstance(model, ModuleOp):
        from frontends.keras.lower import from_keras

        model = from_keras(model, config)
    run_pipeline(model, default_pipeline() if pipeline is None else pipeline)
    return CompiledModel(model)


def open_project(out_dir) -> CompiledModel:
    """Loads the compiled model of an spx output directory (its marker must be valid)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise SpxError(f"{out}: error: no such project directory")
    if read_marker(out) is None:
        raise SpxError(f"{out}: error: not an spx project (no valid {MARKER})")
    return CompiledModel(parse_module(read_text_file(out / "model.mlir"), str(out / "model.mlir")))


def read_text_file(path) -> str:
    """A user-given text file's content; SpxError naming it when missing, unreadable or not UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise SpxError(f"{path}: error: no such file")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise SpxError(f"{path}: error: cannot read: {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise SpxError(f"{path}:{line}: error: not UTF-8 text (byte {err.start})") from None
