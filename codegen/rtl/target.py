"""Registry entry for the `rtl` target (Verilog through XLS; Verilator simulation, Yosys synthesis)."""

from codegen.rtl import emit as _emit
from codegen.rtl import sim as _sim


class RtlTarget:
    """Pipelined Verilog through XLS (see codegen/rtl/emit.py)."""

    name = "rtl"

    def emit(self, module, out_dir, **options):
        """Writes the project; options: clock_period (ns), pipeline_stages, delay_model."""
        return _emit.emit(module, out_dir, **options)

    def load(self, module):
        """Verilator simulation of the generated Verilog: predict / predict_raw like the numpy target."""
        return _sim.load(module)


TARGET = RtlTarget()
