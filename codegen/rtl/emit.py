"""The `rtl` target's project: XLS IR -> XLS optimiser -> XLS pipeline scheduler/codegen -> Verilog.

`build(module, options)` returns the generated files as {name: text} plus metadata; it is cached by
codegen/cache.py on the IR text, the options and this package's source (XLS is slow on big designs).
`emit(module, out_dir)` writes them into DIR through codegen/writer.py:

    <model>.ir          XLS IR as lowered (one function per op + the top `spx_top`)
    <model>.opt.ir      the same after XLS's optimiser (everything inlined into the top)
    <model>.v           pipelined Verilog: clk, rst, in_valid, x -> out_valid, out
    tb.cpp              Verilator testbench: streams events (one per clock), measures latency and II
    synth.ys            Yosys script (synth_xilinx -family xcup)
    rtl.json            ports, layout, options, schedule notes (read by the simulator and `spx synth`)
    README.md
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from codegen import cache
from codegen.names import safe_identifier
from codegen.rtl.lower import SCHEDULE_NOTES, TOP, lower
from codegen.writer import OutputDir
from spx_ir.builder import model_function
from spx_ir.text import SpxError, print_module

DEFAULT_CLOCK_NS = 5.0
DEFAULT_DELAY_MODEL = "sky130"   # XLS delay models: unit, asap7, sky130 (sky130 is the closest to FPGA)
TEMPLATES = Path(__file__).with_name("templates")


def _source_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted(here.glob("*.py")) + sorted(TEMPLATES.glob("*")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


OPT_TIMEOUT_S = 120     # XLS's optimiser has pathological inputs (minutes, GBs); past this: unoptimised
OPT_MEMORY_BYTES = 8 << 30


def _optimize_child(ir: str, top: str, conn) -> None:
    """Child process: XLS's optimiser under a memory cap; sends (True, IR) or (False, why). Its C++
    abort dump goes nowhere (stderr closed): a crash reaches the parent as a closed pipe."""
    import faulthandler
    import os
    import resource

    faulthandler.disable()   # a test runner's crash dump would still reach its own copy of stderr
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    resource.setrlimit(resource.RLIMIT_AS, (OPT_MEMORY_BYTES, OPT_MEMORY_BYTES))
    try:
        import xls

        conn.send((True, xls.optimize_ir(ir, top)))
    except BaseException as err:  # noqa: BLE001  reported to the parent, which falls back
        text = str(err).strip()
        conn.send((False, text.splitlines()[0] if text else type(err).__name__))
    finally:
        conn.close()


def optimize(ir: str, top: str, timeout: float = OPT_TIMEOUT_S) -> tuple[str, str | None]:
    """(IR after XLS's optimiser, None), or (the IR unchanged, why) when the optimiser fails, dies
    (e.g. past OPT_MEMORY_BYTES: noticed at once) or runs past `timeout` seconds (then killed)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_optimize_child, args=(ir, top, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):   # True on data and on the pipe closed by a dead child
            return ir, f"XLS optimiser stopped after {timeout:g} s; the unoptimised IR was scheduled"
        try:
            ok, payload = receive.recv()
        except EOFError:
            child.join(5)
            return ir, f"XLS optimiser died (exit {child.exitcode}); the unoptimised IR was scheduled"
        if ok:
            return payload, None
        return ir, f"XLS optimiser failed ({payload}); the unoptimised IR was scheduled"
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def codegen(ir: str, top: str, module_name: str, clock_ns: float, stages: int | None,
            delay_model: str = DEFAULT_DELAY_MODEL, times: dict | None = None) -> tuple[str, str]:
    """(optimised IR, pipelined Verilog) of function `top` of an XLS IR package; `times` (if given)
    receives the seconds of XLS's optimiser (`optimize`) and scheduler + Verilog codegen (`schedule`)."""
    import xls

    t0 = time.time()
    opt, note = optimize(ir, top)
    t1 = time.time()
    if note:
        print(f"warning: {module_name}: {note}", file=__import__("sys").stderr)
    pkg = xls.Package.parse_ir(opt)
    kwargs = dict(generator="pipeline", top=top, module_name=module_name, delay_model=delay_model,
                  input_valid_signal="in_valid", output_valid_signal="out_valid", reset="rst",
                  reset_data_path=False, flop_inputs=True, flop_outputs=True,
                  add_invariant_assertions=False)
    if stages:
        kwargs["pipeline_stages"] = int(stages)
    else:
        kwargs["clock_period_ps"] = int(round(clock_ns * 1000))
    try:
        result = pkg.schedule_and_codegen(**kwargs)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpxError(f"error: rtl target: XLS could not schedule {module_name} at {clock_ns} ns: {first}") from None
    verilog = result.get_verilog_text()
    if times is not None:
        times.update(optimize=round(t1 - t0, 2), schedule=round(time.time() - t1, 2))
    return opt, verilog


def build(module, clock_ns: float = DEFAULT_CLOCK_NS, stages: int | None = None,
          delay_model: str = DEFAULT_DELAY_MODEL) -> dict:
    """{'files': {name: text}, 'meta': {...}} for the model, from the cache when possible."""
    name = safe_identifier(model_function(module).sym_name.data)
    material = {"ir": print_module(module), "clock_ns": clock_ns, "stages": stages, "delay_model": delay_model,
                "source": _source_digest(), "xls": _xls_version()}

    def make(directory: Path) -> None:
        t0 = time.time()
        low = lower(module)
        times = {"lower": round(time.time() - t0, 2)}
        opt, verilog = codegen(low.ir, TOP, name, clock_ns, stages, delay_model, times)
        meta = {
            "model": name, "module": name, "top_function": TOP,
            "clock_ns": clock_ns, "pipeline_stages": stages, "delay_model": delay_model,
            "input": {"shape": list(low.input_shape), "type": str(low.input_t), "bits": low.input_bits},
            "outputs": [{"shape": list(s), "type": str(t), "width": t.width, "signed": t.signed} for s, t in low.outputs],
            "output_bits": low.output_bits,
            "functions": [{"layer": f.layer, "function": f.name, "op": f.op_name,
                           "ignored": {a: SCHEDULE_NOTES[a] for a in f.ignored}} for f in low.functions],
            "xls_seconds": round(time.time() - t0, 2), "xls_phase_seconds": times,
            "xls_version": _xls_version(),
        }
        files = {f"{name}.ir": low.ir, f"{name}.opt.ir": opt, f"{name}.v": verilog,
                 "tb.cpp": (TEMPLATES / "tb.cpp").read_text(),
                 "synth.ys": synth_script(name, f"{name}.v"),
                 "rtl.json": json.dumps(meta, indent=1) + "\n",
                 "README.md": readme(meta)}
        for fname, text in files.items():
            (directory / fname).write_text(text)

    entry = cache.entry("rtl-xls", material, make)
    meta = json.loads((entry / "rtl.json").read_text())
    files = {p.name: p.read_text() for p in entry.iterdir() if p.name != cache.MANIFEST}
    return {"files": files, "meta": meta, "dir": entry}


def _xls_version() -> str:
    from importlib.metadata import version

    return version("xls-python")


def synth_script(module_name: str, verilog: str) -> str:
    return (f"read_verilog -sv {verilog}\n"
            f"synth_xilinx -family xcup -top {module_name} -flatten\n"
            "stat\n"
            "ltp -noff\n")


def readme(meta: dict) -> str:
    notes = sorted({f"- `{a}`: {text}" for f in meta["functions"] for a, text in f["ignored"].items()})
    fn_lines = [f"- `{f['function']}`: {f['op']}" for f in meta["functions"]]
    return "\n".join([
        f"# RTL of `{meta['model']}` (spx rtl target, generated through XLS {meta['xls_version']})",
        "",
        f"Pipelined at {meta['clock_ns']} ns by XLS's scheduler (delay model `{meta['delay_model']}`); "
        "one event per clock (II = 1).",
        f"Top module `{meta['module']}`: `clk`, `rst`, `in_valid`, `x[{meta['input']['bits']}]` -> "
        f"`out_valid`, `out[{meta['output_bits']}]`.",
        "Port layout: element k of width w at bits [k*w, (k+1)*w), tensors row-major; `out` is the "
        "concatenation of the model outputs, the first in the low bits.",
        "",
        "Files: `*.ir` XLS IR as lowered (one function per op), `*.opt.ir` after XLS's optimiser, `*.v` "
        "Verilog, `tb.cpp` Verilator testbench, `synth.ys` Yosys script, `rtl.json` metadata.",
        "",
        "Simulate: `spx predict DIR X.npy -o Y.npy --backend rtl`. Measure: `spx synth DIR`.",
        "",
        "XLS functions (each can be scheduled and synthesized alone):",
        *fn_lines,
        "",
        "Schedule attributes:",
        *(notes or ["- none set; fully parallel form"]),
        "",
    ])


def emit(module, out_dir, clock_period: float = DEFAULT_CLOCK_NS, pipeline_stages: int | None = None,
         delay_model: str = DEFAULT_DELAY_MODEL, **_ignored) -> Path:
    """Writes the rtl project into out_dir (see the module docstring); returns out_dir.
    A failed build leaves no project behind that looks complete: rtl.json is written last."""
    out = OutputDir(out_dir)
    if (out.root / "rtl.json").exists():
        out.path("rtl.json").unlink()
    result = build(module, clock_period, pipeline_stages, delay_model)
    for fname in sorted(result["files"], key=lambda f: f == "rtl.json"):
        out.write_text(fname, result["files"][fname])
    return out.root
