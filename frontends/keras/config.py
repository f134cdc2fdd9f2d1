"""hls4ml-style configuration: precisions, reuse and parallel factors per model, layer type or name.

    cfg = config_from_keras_model(model, granularity="name", default_precision="fixed<16,6>")
    cfg["LayerName"]["dense1"]["Precision"] = {"result": "fixed<12,4>", "accum": "fixed<24,10>"}
    cfg["LayerName"]["dense1"]["ReuseFactor"] = 4

A layer's setting is looked up in LayerName, then LayerType (class name), then Model. `Precision`
is a string (the result type; also the weight/bias type of float layers) or a dict with any of
result / accum / weight / bias. QKeras quantizers always take precedence over the config.
"""

from __future__ import annotations

from spx_ir.fixed import FixedPointError, FixedType

PRECISION_KEYS = ("result", "accum", "weight", "bias")
LAYER_KEYS = ("Precision", "ReuseFactor", "ParallelFactor")


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


class LayerConfig:
    """Resolved settings of one layer."""

    def __init__(self, config: dict | None, layer_name: str, layer_class: str):
        config = config or {}
        self.where = f"config for layer '{layer_name}'"
        self._levels = [
            config.get("LayerName", {}).get(layer_name, {}),
            config.get("LayerType", {}).get(layer_class, {}),
            config.get("Model", {}),
        ]
        for level in self._levels[:2]:
            unknown = set(level) - set(LAYER_KEYS)
            if unknown:
                raise ValueError(f"{self.where}: unknown key(s) {sorted(unknown)}; valid keys: {', '.join(LAYER_KEYS)}")

    def _lookup(self, key: str):
        for level in self._levels:
            if key in level:
                return level[key], level is self._levels[-1]
        return None, True

    def precision(self, which: str, fallback: FixedType | None = None) -> FixedType | None:
        """The `which` (result/accum/weight/bias) type: the layer's own setting, else the model default
        (for accum only when explicitly given), else `fallback`."""
        for level in self._levels:
            p = level.get("Precision")
            if p is None:
                continue
            if isinstance(p, dict):
                unknown = set(p) - set(PRECISION_KEYS)
                if unknown:
                    raise ValueError(f"{self.where}: unknown precision key(s) {sorted(unknown)}; valid: {', '.join(PRECISION_KEYS)}")
                if which in p:
                    return self._parse(p[which])
                continue
            if which == "accum":
                continue  # a plain string never sets the accumulator: exact by default
            return self._parse(p)
        return fallback

    def explicit_result(self) -> FixedType | None:
        """The result type only if the layer itself (name or type level) sets one."""
        for level in self._levels[:2]:
            p = level.get("Precision")
            if isinstance(p, str):
                return self._parse(p)
            if isinstance(p, dict) and "result" in p:
                return self._parse(p["result"])
        return None

    def int_setting(self, key: str, default: int | None) -> int | None:
        value, _ = self._lookup(key)
        if value is None:
            return default
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{self.where}: {key} must be a positive integer, got {value!r}")
        return value

    def _parse(self, text) -> FixedType:
        try:
            return FixedType.parse(str(text))
        except FixedPointError as err:
            raise ValueError(f"{self.where}: {err}") from None
