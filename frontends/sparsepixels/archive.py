"""Reads a Keras 3 `.keras` file (a zip of config.json, metadata.json, model.weights.h5) with json and
h5py only: no Keras import, nothing in the file is executed.

Weights: Keras 3 stores each layer's variables under `layers/<snake_case class name>[_k]/...`
(k counts earlier layers of the same class, in model order), a sub-object's under its attribute
name, and one object's variables as `vars/0, 1, ...`: its trainable variables in creation order,
then the non-trainable ones.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spx_ir.text import SpxError

MAX_CONFIG_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 2 << 30
SUPPORTED = "Keras 3 .keras files saved by sparsepixels 0.3.x with hgq2 0.2.x"


def snake_case(name: str) -> str:
    """Keras 3's naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class Layer:
    """One layer of the functional graph: its class, config, inputs and weights group."""
    name: str
    class_name: str
    module: str
    config: dict
    inputs: list[tuple[str, int]]  # (producing layer, output index)
    weights: object = None  # h5py group (or None)
    where: str = field(init=False)

    def __post_init__(self):
        self.where = f"layer {self.name[:80]!r} ({self.class_name[:80]})"

    def vars(self, *path: str) -> list[np.ndarray]:
        """The variables vars/0, vars/1, ... of this layer or of its sub-object `path`."""
        group = self.weights
        for part in path:
            if group is None or part not in group:
                return []
            group = group[part]
        if group is None or "vars" not in group:
            return []
        v = group["vars"]
        return [np.asarray(v[str(i)][()]) for i in range(len(v))]

    def sub(self, *candidates: str) -> str | None:
        """The first of the candidate sub-object names present in the weights (attribute names)."""
        for c in candidates:
            if self.weights is not None and c in self.weights:
                return c
        return None


@dataclass
class Archive:
    name: str
    layers: list[Layer]
    inputs: list[str]
    outputs: list[tuple[str, int]]
    keras_version: str


def _tensor_refs(node_args, where: str) -> list[tuple[str, int]]:
    refs = []

    def walk(x):
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            history = x.get("config", {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
                raise SpxError(f"error: {where}: malformed input reference in the model config")
            refs.append((history[0], int(history[2])))
        elif isinstance(x, (list, tuple)):
            for item in x:
                walk(item)
        elif isinstance(x, dict):
            for item in x.values():
                walk(item)

    walk(node_args)
    return refs


def _refs(value) -> list:
    """[[layer, node, index], ...] (Keras writes a single one unnested)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 3 for v in value):
        raise SpxError(f"error: malformed model inputs/outputs in config.json; supported: {SUPPORTED}")
    return value


def read(path) -> tuple[Archive, object]:
    """(the model graph, the open h5py file of its weights: close it when done). One-line errors."""
    import h5py

    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as err:
        raise SpxError(f"{path}: error: not a Keras 3 .keras archive ({type(err).__name__})") from None
    with zf:
        names = set(zf.namelist())
        for need in ("config.json", "model.weights.h5"):
            if need not in names:
                raise SpxError(f"{path}: error: not a Keras 3 .keras archive (no {need}); supported: {SUPPORTED}")
        for member, limit in (("config.json", MAX_CONFIG_BYTES), ("model.weights.h5", MAX_WEIGHTS_BYTES)):
            if zf.getinfo(member).file_size > limit:
                raise SpxError(f"{path}: error: {member} is larger than {limit >> 20} MiB")
        try:
            config = json.loads(zf.read("config.json"))
            metadata = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
        except (ValueError, UnicodeDecodeError) as err:
            raise SpxError(f"{path}: error: config.json is not valid JSON ({type(err).__name__})") from None
        weights_bytes = zf.read("model.weights.h5")
    version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
    if not version.startswith("3."):
        raise SpxError(f"{path}: error: saved by Keras {version or 'of unknown version'}; supported: {SUPPORTED}")
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise SpxError(f"{path}: error: the model is a {str(kind)[:40]!r}, not a functional model; supported: {SUPPORTED}")
    body = config.get("config", {})
    try:
        h5 = h5py.File(io.BytesIO(weights_bytes), "r")
    except OSError:
        raise SpxError(f"{path}: error: model.weights.h5 is not a readable HDF5 file") from None
    layers, used = [], {}
    groups = h5["layers"] if "layers" in h5 else {}
    for entry in body.get("layers", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise SpxError(f"{path}: error: malformed layer entry in config.json; supported: {SUPPORTED}")
        cls = str(entry.get("class_name"))
        key = snake_case(cls)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        name = str(entry.get("name", entry["config"].get("name")))
        where = f"layer '{name}' ({cls})"
        inputs = [ref for node in entry.get("inbound_nodes", []) for ref in _tensor_refs(node.get("args", []), where)]
        layers.append(Layer(name, cls, str(entry.get("module", "")), entry["config"], inputs,
                            groups[key] if key in groups else None))
    outputs = [(str(o[0]), int(o[2])) for o in _refs(body.get("output_layers", []))]
    inputs = [str(i[0]) for i in _refs(body.get("input_layers", []))]
    return Archive(str(body.get("name", "model")), layers, inputs, outputs, version), h5


def is_keras3_archive(path) -> bool:
    """True for a zip holding config.json + model.weights.h5 not saved by tf-keras (Keras 2): those are
    ours to read (a Keras version other than 3 is then reported by `read`)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not {"config.json", "model.weights.h5"} <= names or "metadata.json" not in names:
                return False
            meta = json.loads(zf.read("metadata.json"))
            return isinstance(meta, dict) and not str(meta.get("keras_version", "")).startswith("2.")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return False
