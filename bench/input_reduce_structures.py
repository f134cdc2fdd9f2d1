"""rtl target: input_reduce alone, rank select (codegen/rtl/ops.py input_reduce, the default) against
the former merge tree (input_reduce_merge), on the neutrino bench's image (HxWx1, 8-bit unsigned,
threshold 0): XLS pipeline stages at 5 ns, Yosys `synth_xilinx -family xcup` LUT/FF, and the seconds and
peak memory of XLS (optimise + schedule + Verilog) and Yosys, each in a capped child process.

    python bench/input_reduce_structures.py [--sizes 14 21] [--n 8] [--structures rank merge]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rtl_seed_models import IN_T, in_child  # noqa: E402
from codegen.rtl import emit as rtl_emit  # noqa: E402
from codegen.rtl import ops  # noqa: E402
from codegen.rtl.emit import DEFAULT_CLOCK_NS, DEFAULT_DELAY_MODEL  # noqa: E402
from codegen.rtl.synth import ToolTimeout, pipeline_stages, yosys  # noqa: E402
from codegen.rtl.xlsir import Package  # noqa: E402
from spx_ir import dialect as spx  # noqa: E402
from spx_ir.builder import ModelBuilder  # noqa: E402
from spx_ir.fixed import threshold_raw  # noqa: E402
from spx_ir.text import SpxError  # noqa: E402

STRUCTURES = {"rank": ops.input_reduce, "merge": ops.input_reduce_merge}


def op_ir(size: int, n_max: int, structure: str) -> str:
    b = ModelBuilder(f"ir_{size}", [size, size, 1], IN_T)
    feat, hash_ = b.input_reduce(b.input, n_max=n_max, threshold=0.0)
    op = feat.owner
    assert isinstance(op, spx.InputReduceOp)
    hb = hash_.type.element_type.width.data
    pkg = Package("bench")
    fn = pkg.function("input_reduce")
    x = fn.param(size * size * IN_T.width, "x")
    f, h = STRUCTURES[structure](fn, x, (size, size, 1), IN_T, threshold_raw(0.0, IN_T), n_max,
                                 feat.type.element_type.spec, hb)
    fn.returns(f, h)
    return pkg.text("input_reduce")


def _xls(ir: str):
    t0 = time.time()
    _, verilog = rtl_emit.codegen(ir, "input_reduce", "input_reduce", DEFAULT_CLOCK_NS, None, DEFAULT_DELAY_MODEL)
    return verilog, round(time.time() - t0, 1)


def measure(size: int, n_max: int, structure: str, timeout: float) -> dict:
    row = {"size": size, "n": n_max, "structure": structure}
    (verilog, row["xls_s"]), row["xls_mb"] = in_child(_xls, op_ir(size, n_max, structure))
    row["stages"] = pipeline_stages(verilog)
    try:
        (res, secs), _ = in_child(yosys, verilog, "input_reduce", timeout, False)
        row.update(lut=res["lut"], ff=res["ff"], yosys_s=round(secs, 1), yosys_mb=res["peak_mb"])
    except (ToolTimeout, SpxError) as err:
        row["error"] = str(err)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[14])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--structures", nargs="+", default=["rank", "merge"], choices=sorted(STRUCTURES))
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    print("| HxW | N | structure | LUT | FF | stages @5ns | LUT/pixel | XLS s / MB | Yosys s / MB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        for s in args.structures:
            print(f"  measuring {size}x{size} {s} ...", file=sys.stderr, flush=True)
            r = measure(size, args.n, s, args.timeout)
            if "error" in r:
                print(f"| {size}x{size} | {args.n} | {s} | {r['error']} | | {r['stages']} | | {r['xls_s']} / {r['xls_mb']} | |")
            else:
                print(f"| {size}x{size} | {args.n} | {s} | {r['lut']} | {r['ff']} | {r['stages']} | "
                      f"{r['lut'] / size ** 2:.1f} | {r['xls_s']} / {r['xls_mb']} | {r['yosys_s']} / {r['yosys_mb']:.0f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
