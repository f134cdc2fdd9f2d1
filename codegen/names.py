"""The one mapping from names found in models and IR to identifiers in generated code and file names.

Every target passes a function, layer or file name through `safe_identifier` before it reaches C++,
Verilog, Python or the file system, and never writes raw user text into code or comments. The result:
- matches `[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*`, at most 48 characters (no leading, trailing or
  double underscore: C and C++ reserve some of those);
- is no keyword or well-known identifier of C, C++, Verilog or Python, nor the name of a Python module
  a generated file might shadow (compared case-insensitively: file systems may fold case);
- keeps a name that is already safe unchanged, and otherwise appends 8 hex digits of the SHA-256 of the
  original text, so two different inputs never map to the same identifier by accident.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import re
import sys

MAX_LENGTH = 48

_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")

_C_CXX = """
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires restrict return short signed sizeof static static_assert static_cast struct switch
template this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq main std NULL EOF INFINITY NAN errno assert abs exit abort malloc free printf puts
size_t ptrdiff_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t
stdin stdout stderr FILE system ap_fixed ap_ufixed ap_int ap_uint ap_uint hls nnet spx
"""
_VERILOG = """
always always_comb always_ff always_latch assign begin case casex casez cmos deassign default defparam disable
edge else end endcase endfunction endmodule endprimitive endspecify endtable endtask event for force forever
fork function genvar generate endgenerate highz0 highz1 if ifnone initial inout input integer join large
localparam logic macromodule medium module nand negedge nmos nor not notif0 notif1 or output parameter pmos
posedge primitive pull0 pull1 pulldown pullup rcmos real realtime reg release repeat rnmos rpmos rtran
rtranif0 rtranif1 scalared signed small specify specparam strong0 strong1 supply0 supply1 table task time
tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned vectored wait wand weak0 weak1 while wire wor
xnor xor top clk rst reset
"""
_PYTHON_MODULES = """
numpy np math os sys re json typing dataclasses functools itertools collections pathlib builtins abc io
types enum random string time copy struct ctypes importlib site test tests spx spx_ir frontends passes
codegen xdsl self cls
"""

_RESERVED = frozenset(
    _C_CXX.split() + _VERILOG.split() + _PYTHON_MODULES.split() + keyword.kwlist + keyword.softkwlist
    + list(sys.builtin_module_names) + list(getattr(sys, "stdlib_module_names", ())) + dir(builtins)
)
_RESERVED_LOWER = frozenset(n.lower() for n in _RESERVED)


def safe_identifier(text: object, default: str = "model") -> str:
    """A deterministic identifier for `text` that is safe in every target language and as a file stem."""
    raw = str(text)
    if _SAFE.fullmatch(raw) and len(raw) <= MAX_LENGTH and raw.lower() not in _RESERVED_LOWER:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    stem = "_".join(re.findall(r"[A-Za-z0-9]+", raw.encode("ascii", "ignore").decode()))
    stem = stem[: MAX_LENGTH - 10]
    if not stem or not stem[0].isalpha():
        stem = default + ("_" + stem if stem else "")
        stem = stem[: MAX_LENGTH - 10]
    return f"{stem}_{digest}"


def is_safe_identifier(name: str) -> bool:
    """True if `name` passes `safe_identifier` unchanged."""
    return safe_identifier(name) == name


def model_identifier(module) -> str:
    """The identifier of a module's model function: C++ top function, Python module and file stem."""
    from spx_ir.builder import model_function

    return safe_identifier(model_function(module).sym_name.data)


def layer_identifiers(module) -> dict:
    """Op -> distinct safe identifier of its layer name (spx_ir.graph.layer_names), for every target."""
    from spx_ir.graph import layer_names

    names = layer_names(module)
    return dict(zip(names, unique_identifiers(names.values())))


def unique_identifiers(names) -> list[str]:
    """`safe_identifier` of each name, made distinct within the list by `_2`, `_3`, ... suffixes."""
    seen: set[str] = set()
    result = []
    for name in names:
        base = candidate = safe_identifier(name)
        k = 1
        while candidate.lower() in seen:
            k += 1
            candidate = f"{base}_{k}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result
