"""Registry entry for the `vitis` target (Vitis HLS project; C simulation through g++)."""

from codegen.vitis import csim as _csim
from codegen.vitis import emit as _emit


class VitisTarget:
    """io_parallel Vitis HLS project: firmware/, tb/, build_prj.tcl (see codegen/vitis/emit.py)."""

    name = "vitis"

    def emit(self, module, out_dir, **options):
        """Writes the project; options: force, part, clock_period, events, tb_events."""
        return _emit.emit(module, out_dir, **options)

    def load(self, module):
        """C simulation of the generated C++: predict / predict_raw / trace like the numpy target."""
        return _csim.load(module)


TARGET = VitisTarget()
