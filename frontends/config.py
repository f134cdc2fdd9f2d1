"""hls4ml-style configuration, read once for every front end (QKeras lowering, sparsepixels importer).

    {"Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1},
     "LayerType": {"Dense": {...}},
     "LayerName": {"conv1": {"Precision": {"result": "fixed<12,4>", "accum": "fixed<24,10>"},
                             "PixelParallelFactor": 4, "FiltParallelFactor": 2}}}

A layer's setting is looked up in LayerName, then LayerType (class name), then Model. An hls4ml
project file (with `HLSConfig` holding the above) is read too. Every key is checked: a key spx does
not know is an error naming it (typos such as `Modle` or `ReuseFactr` never pass silently); keys that
hls4ml writes but that do not change what spx emits (IGNORED_*) are accepted and ignored.

Schedule keys become the schedule attributes of the layer's ops (`apply_schedule`):
  PixelParallelFactor -> pixel_parallel       FiltParallelFactor -> filter_parallel (sparse_conv2d)
  ChanParallelFactor  -> channel_parallel     ParallelFactor     -> pixel_parallel (sparse ops)
  Variant: tree | stream (input_reduce)       -> search = tree | stream (spx_ir.schedule)
  TableSize T (sigmoid, tanh, softmax)        -> table_size = T (a power of two in [2, 65536])
  ReuseFactor R: dense reuse_factor = R; on ops without a reuse attribute, the op's main parallel
  factor becomes trip / R (sparse_conv2d: filter_parallel = Co / R; other sparse ops:
  pixel_parallel = N / R), rounded down to a divisor of the trip count.
A parallel factor larger than its loop, or not dividing it, becomes the largest divisor of the trip
count not above it (hls4ml's flatten `ParallelFactor` counts output positions, spx's loop is the N
slots). Explicit parallel keys win over ReuseFactor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from spx_ir.fixed import FixedPointError, FixedType

TOP_KEYS = ("Model", "LayerName", "LayerType")
IGNORED_TOP_KEYS = ("KerasModel", "KerasJson", "KerasH5", "OutputDir", "ProjectName", "Part", "Board",
                    "ClockPeriod", "ClockUncertainty", "Backend", "IOType", "Version", "Stamp", "WriterConfig")
PRECISION_KEYS = ("result", "accum", "weight", "bias", "default")
IGNORED_PRECISION_KEYS = ("maximum", "table", "exp_table", "inv_table", "scale", "pool", "kernel")
SCHEDULE_KEYS = ("PixelParallelFactor", "FiltParallelFactor", "ChanParallelFactor", "ParallelFactor", "Variant")
LAYER_KEYS = ("Precision", "ReuseFactor", "TableSize") + SCHEDULE_KEYS
IGNORED_LAYER_KEYS = ("Trace", "Strategy", "ConvImplementation", "ParallelizationFactor", "Implementation",
                      "BramFactor", "accum_t")
MODEL_KEYS = ("Precision", "ReuseFactor")
IGNORED_MODEL_KEYS = ("Strategy", "BramFactor", "TraceOutput", "PipelineStyle", "PipelineInterval",
                      "ChannelsLastConversion", "TransposeOutputs")
VARIANTS = ("tree", "stream")  # input_reduce search structures (spx_ir.schedule.SEARCHES)


class ConfigError(ValueError):
    """A user error in a configuration (one line)."""


def _check_keys(where: str, level, valid: tuple, ignored: tuple = ()) -> dict:
    if level is None:
        raise ConfigError(f"config: {where} is empty (give it settings or remove it)")
    if not isinstance(level, Mapping):
        raise ConfigError(f"config: {where} must be a mapping, got {type(level).__name__}")
    unknown = [str(k) for k in level if k not in valid and k not in ignored]
    if unknown:
        raise ConfigError(f"config: {where}: unknown key(s) {', '.join(repr(k) for k in sorted(unknown))}; "
                          f"valid keys: {', '.join(valid)}")
    return dict(level)


def _mapping(where: str, value) -> Mapping:
    return _check_keys(where, value, tuple(value) if isinstance(value, Mapping) else ())


class ModelConfig:
    """A validated config: `layer(name, class_name)` gives one layer's settings."""

    def __init__(self, config: Mapping | None):
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise ConfigError(f"config must be a mapping (Model / LayerName / LayerType), got {type(config).__name__}")
        if "HLSConfig" in config:  # an hls4ml project file
            _check_keys("top level", config, ("HLSConfig",), IGNORED_TOP_KEYS)
            config = config["HLSConfig"]
            if not isinstance(config, Mapping):
                raise ConfigError(f"config: HLSConfig must be a mapping, got {type(config).__name__}")
        config = _check_keys("top level", config, TOP_KEYS)
        self.model = _check_keys("Model", config["Model"], MODEL_KEYS, IGNORED_MODEL_KEYS) if "Model" in config else {}
        self.by_name = {str(k): _check_keys(f"LayerName '{k}'", v, LAYER_KEYS, IGNORED_LAYER_KEYS)
                        for k, v in _mapping("LayerName", config.get("LayerName", {})).items()}
        self.by_type = {str(k): _check_keys(f"LayerType '{k}'", v, LAYER_KEYS, IGNORED_LAYER_KEYS)
                        for k, v in _mapping("LayerType", config.get("LayerType", {})).items()}

    def layer(self, name: str, class_name: str) -> LayerConfig:
        return LayerConfig(self, name, class_name)

    def check_layer_names(self, names: Iterable[str]) -> None:
        """Every LayerName entry must name a layer of the model (catches misspelt layer names)."""
        missing = sorted(set(self.by_name) - set(names))
        if missing:
            raise ConfigError(f"config: LayerName {', '.join(repr(m) for m in missing)} is not a layer of the model")


class LayerConfig:
    """Resolved settings of one layer."""

    def __init__(self, config: ModelConfig | Mapping | None, layer_name: str, layer_class: str):
        if not isinstance(config, ModelConfig):
            config = ModelConfig(config)
        self.where = f"config for layer '{layer_name}'"
        self._levels = [config.by_name.get(layer_name, {}), config.by_type.get(layer_class, {}), config.model]

    def _lookup(self, key: str):
        for level in self._levels:
            if key in level:
                return level[key]
        return None

    def _precisions(self):
        """(level index, setting) of each Precision given, most specific first; 'auto' counts as unset."""
        for n, level in enumerate(self._levels):
            p = level.get("Precision")
            if p is None or p == "auto":
                continue
            if isinstance(p, Mapping):
                unknown = set(p) - set(PRECISION_KEYS) - set(IGNORED_PRECISION_KEYS)
                if unknown:
                    raise ConfigError(f"{self.where}: unknown precision key(s) {sorted(map(str, unknown))}; "
                                      f"valid: {', '.join(PRECISION_KEYS)}")
                p = {k: v for k, v in p.items() if v != "auto" and k in PRECISION_KEYS}
            elif not isinstance(p, str):
                raise ConfigError(f"{self.where}: Precision must be a string or a mapping, got {p!r}")
            yield n, p

    def precision(self, which: str, fallback: FixedType | None = None) -> FixedType | None:
        """The `which` (result/accum/weight/bias) type: the layer's own setting, else the model default
        (for accum only when explicitly given), else `fallback`."""
        for _, p in self._precisions():
            if isinstance(p, dict):
                if which in p:
                    return self._parse(p[which])
                if "default" in p and which != "accum":
                    return self._parse(p["default"])
                continue
            if which == "accum":
                continue  # a plain string never sets the accumulator: exact by default
            return self._parse(p)
        return fallback

    def explicit_result(self) -> FixedType | None:
        """The result type only if the layer itself (name or type level) sets one."""
        for n, p in self._precisions():
            if n == 2:
                break
            if isinstance(p, str):
                return self._parse(p)
            if "result" in p:
                return self._parse(p["result"])
        return None

    def int_setting(self, key: str, default: int | None) -> int | None:
        value = self._lookup(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{self.where}: {key} must be a positive integer, got {value!r}")
        return value

    def table_size(self) -> int | None:
        from spx_ir.tables import check_table

        value = self.int_setting("TableSize", None)
        if value is not None:
            try:
                check_table(value)
            except ValueError as err:
                raise ConfigError(f"{self.where}: TableSize {str(err).removeprefix('tables: table_size ')}") from None
        return value

    def variant(self) -> str | None:
        value = self._lookup("Variant")
        if value is not None and value not in VARIANTS:
            raise ConfigError(f"{self.where}: Variant must be one of {', '.join(VARIANTS)}, got {value!r}")
        return value

    def _parse(self, text) -> FixedType:
        try:
            return FixedType.parse(str(text))
        except FixedPointError as err:
            raise ConfigError(f"{self.where}: {err}") from None


def _largest_divisor(trip: int, value: int) -> int:
    return max(d for d in range(1, min(trip, value) + 1) if trip % d == 0)


def apply_schedule(op, cfg: LayerConfig) -> None:
    """Sets the schedule attributes of one op from its layer's settings (see the module docstring)."""
    from xdsl.dialects.builtin import IntegerAttr, StringAttr, i64

    from spx_ir import dialect as spx
    from spx_ir.schedule import knobs

    def trip(knob: str) -> int | None:
        return knobs(op).get(knob)  # the one rule of spx_ir.schedule

    def set_factor(knob: str, value: int) -> None:
        if not hasattr(op, knob) or trip(knob) is None:
            return
        setattr(op, knob, IntegerAttr(_largest_divisor(trip(knob), value), i64))

    reuse = cfg.int_setting("ReuseFactor", None)
    if reuse is not None and reuse > 1:
        if isinstance(op, spx.DenseOp):
            op.reuse_factor = IntegerAttr(reuse, i64)
        else:
            knob = "filter_parallel" if isinstance(op, spx.SparseConv2DOp) else "pixel_parallel"
            t = trip(knob) if hasattr(op, knob) else None
            if t is not None:
                setattr(op, knob, IntegerAttr(_largest_divisor(t, max(1, t // reuse)), i64))
    for key, knob in (("PixelParallelFactor", "pixel_parallel"), ("ParallelFactor", "pixel_parallel"),
                      ("FiltParallelFactor", "filter_parallel"), ("ChanParallelFactor", "channel_parallel")):
        value = cfg.int_setting(key, None)
        if value is not None:
            set_factor(knob, value)
    size = cfg.table_size()
    if size is not None and isinstance(op, (spx.ActivationOp, spx.SparseActivationOp)) and op.kind.data in spx.TABLE_KINDS:
        op.table_size = IntegerAttr(size, i64)
    variant = cfg.variant()
    if variant is not None and isinstance(op, spx.InputReduceOp):
        op.search = StringAttr(variant)
