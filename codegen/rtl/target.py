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

    def synth(self, project_dir, timeout=None) -> dict:
        """Measured figures of the whole model in an spx project written with the rtl target:
        {latency, ii, lut, ff, dsp, source} (the hook `spx sweep` calls; `spx synth` gives more)."""
        from pathlib import Path

        from codegen.rtl.synth import synth
        from spx_ir.text import SpxError, parse_module

        project = Path(project_dir)
        module = parse_module((project / "model.mlir").read_text(), str(project / "model.mlir"))
        report = synth(project / "rtl", module, timeout=timeout, per_op=False, log=lambda *_: None)
        if report["timeouts"]:
            raise SpxError(f"error: rtl synth stopped: {report['timeouts'][0]}")
        m, src = report["model_figures"], report["sources"]
        return {"latency": m["latency_cycles"], "ii": m["ii_cycles"], "lut": m["lut"], "ff": m["ff"],
                "dsp": m["dsp"], "source": f"{src['latency_cycles']} (latency, II), {src['resources']} (resources)"}


TARGET = RtlTarget()
