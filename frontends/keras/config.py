"""hls4ml-style configuration: precisions, reuse and parallel factors per model, layer type or name.

    cfg = config_from_keras_model(model, granularity="name", default_precision="fixed<16,6>")
    cfg["LayerName"]["dense1"]["Precision"] = {"result": "fixed<12,4>", "accum": "fixed<24,10>"}
    cfg["LayerName"]["dense1"]["ReuseFactor"] = 4

A layer's setting is looked up in LayerName, then LayerType (class name), then Model. `Precision`
is a string (the result type; also the weight/bias type of float layers) or a dict with any of
result / accum / weight / bias. QKeras quantizers always take precedence over the config.
The reader itself (key checks, schedule keys) is frontends.config, shared with the sparsepixels importer.
"""

from __future__ import annotations

from frontends.config import LAYER_KEYS, PRECISION_KEYS, ConfigError, LayerConfig, ModelConfig  # noqa: F401  (one reader)
from spx_ir.fixed import FixedType


def config_from_keras_model(model, granularity: str = "model", default_precision: str = "fixed<16,6>",
                            default_reuse_factor: int = 1) -> dict:
    """A config dict for `model` at the given granularity ('model', 'type' or 'name')."""
    if granularity not in ("model", "type", "name"):
        raise ValueError(f"config: granularity must be 'model', 'type' or 'name', got {granularity!r}")
    FixedType.parse(default_precision)  # fail early on a bad string
    cfg = {"Model": {"Precision": default_precision, "ReuseFactor": default_reuse_factor}}
    if granularity == "type":
        cfg["LayerType"] = {type(layer).__name__: {"Precision": default_precision} for layer in model.layers}
    if granularity == "name":
        cfg["LayerName"] = {
            layer.name: {"Precision": default_precision, "ReuseFactor": default_reuse_factor} for layer in model.layers
        }
    return cfg
