"""Static check of a generated Vitis HLS project: the structure the cost model assumes, before Vitis.

`check_project(dir)` reads firmware/<name>.cpp and the kernel library copied into firmware/spx/
(`check_files` does the same on the {path: text} of `codegen.vitis.emit.project_files`, which the
test suite runs on every project it generates: tests/conftest.py) and returns the problems found
(empty = passes), each `file:line: message`:
  - partitioning: every array read inside an unrolled or pipelined loop (or by a helper called from
    one) is partitioned or reshaped where it is declared: `complete`, or `cyclic`/`block` with the
    factor the reading loop unrolls by; a kernel parameter not partitioned in the kernel must come
    from an array the top function partitions (weights and tables are globals: never);
  - division: every `/` and `%` outside compile-time code divides by a constant (a literal, a
    CONFIG_T field or a local constant of those), and never a 64-bit operand (`long long`, to_raw);
  - pragmas: every `variable=` / `port=` names a parameter or local of the enclosing function;
  - the compiler: g++ -std=c++14 -Wall -Wextra -Werror -fsyntax-only (HLS pragmas aside).
A light C++ reader, not a parser: it relies on the library's style (one statement per line, loops
as `for (...) {`), which the checks themselves keep honest on every generated project.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from codegen.names import is_safe_identifier
from codegen.vitis import toolchain

_FUNC = re.compile(r"(?:template\s*<[^{;]*?>\s*)?(?:static\s+|inline\s+)*[\w:<>,\s*&]+?\b(\w+)\s*\(([^;{}]*)\)\s*(?:const\s*)?\{")
_FOR = re.compile(r"\bfor\s*\(([^;]*);([^;]*);[^)]*\)\s*\{")
_PRAGMA_VAR = re.compile(r"#pragma\s+HLS\s+(\w+)[^\n]*?\b(?:variable|port)=(\w+)")
_PARTITION = re.compile(r"#pragma\s+HLS\s+(?:ARRAY_PARTITION|ARRAY_RESHAPE)\s+variable=(\w+)([^\n]*)")
_CONST_TOKEN = re.compile(r"^(\d+[uUlL]*|CONFIG_T::\w+|\w+::\w+)$")


@dataclass
class Function:
    name: str
    file: str
    line: int  # of the header
    params: list[str]
    array_params: list[str]
    body: str  # comment-free, between the braces
    body_line: int
    locals: set[str] = field(default_factory=set)
    local_arrays: set[str] = field(default_factory=set)
    partitioned: dict[str, str] = field(default_factory=dict)  # name -> pragma tail
    constants: set[str] = field(default_factory=set)
    reads_param: set[int] = field(default_factory=set)  # parameters this function (or a callee) reads


def _strip_comments(text: str) -> str:
    """Removes // and /* */ comments, keeping line breaks (line numbers stay valid)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m[0].count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _match_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `{` at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced braces")


def _split_args(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


@functools.lru_cache(maxsize=64)
def _parsed(source: str, rel: str) -> tuple[Function, ...]:
    """The functions of one file (cached: the library headers are the same in every project)."""
    return tuple(_functions(source, rel))


def _functions(source: str, rel: str) -> list[Function]:
    text = _strip_comments(source)
    funcs, pos = [], 0
    while (m := _FUNC.search(text, pos)) is not None:
        name = m[1]
        open_brace = m.end() - 1
        if name in ("if", "for", "while", "switch", "return") or re.match(r"\s*(struct|namespace|enum)\b", m[0]):
            pos = m.end()
            continue
        close = _match_brace(text, open_brace)
        params, arrays = [], []
        for p in _split_args(m[2]):
            pm = re.search(r"(\w+)\s*(\[|$)", p)
            if pm and p not in ("void",):
                params.append(pm[1])
                if pm[2] == "[":
                    arrays.append(pm[1])
        f = Function(name, rel, text.count("\n", 0, m.start()) + 1, params, arrays, text[open_brace + 1:close],
                     text.count("\n", 0, open_brace) + 1)
        f.local_arrays = set(re.findall(r"^\s*(?:const\s+|static\s+)*[\w:<>]+(?:\s+\w+)?\s+(\w+)\s*\[[^\]]+\]\s*(?:[;=,])",
                                        f.body, re.M))
        f.local_arrays |= set(re.findall(r",\s*(\w+)\s*\[[^\]]+\]\s*;", f.body))
        f.locals = set(re.findall(r"\b(?:[\w:]+|[\w:]+<[^;()]*?>)\s+(\w+)\s*(?:=|;|\[|,)", f.body)) | f.local_arrays
        f.partitioned = {v: tail for v, tail in _PARTITION.findall(f.body)}
        f.constants = _local_constants(f.body)
        funcs.append(f)
        pos = close + 1
    return funcs


def _local_constants(body: str) -> set[str]:
    """Names of `const unsigned|int` locals whose initialisers are compile-time constants."""
    decls = []
    for decl in re.findall(r"\bconst\s+(?:unsigned|int)\s+([^;]*);", body):
        decls += [tuple(part.split("=", 1)) for part in _split_args(decl) if "=" in part]
    constants: set[str] = set()
    while True:
        more = {n.strip() for n, e in decls if _is_constant_expr(e, constants)} - constants
        if not more:
            return constants
        constants |= more


def _is_constant_expr(expr: str, constants: set[str]) -> bool:
    tokens = re.findall(r"[A-Za-z_][\w:]*|\d+\w*", expr)
    return all(_CONST_TOKEN.match(t) or t in constants for t in tokens)


def _loops(body: str):
    """(loop bound expression, pragma kind 'unroll'|'pipeline'|None, body start, body end) per for loop."""
    for m in _FOR.finditer(body):
        start = m.end() - 1
        end = _match_brace(body, start)
        head = body[start + 1:end].lstrip().split("\n", 3)[:3]
        kinds = [p for p in ("UNROLL", "PIPELINE") if any(f"#pragma HLS {p}" in h for h in head)]
        bound = m[2].split("<", 1)[1].strip() if "<" in m[2] else m[2].strip()
        yield bound, kinds, start, end


def _unrolled_regions(body: str) -> list[tuple[int, int, str]]:
    """(start, end, bound of the unrolled loop) of every loop body that runs unrolled: loops with an
    UNROLL or PIPELINE pragma, and every loop nested in a pipelined one (HLS unrolls those)."""
    loops = list(_loops(body))
    regions = []
    for bound, kinds, start, end in loops:
        inside_pipeline = any("PIPELINE" in k and s < start and end < e for _, k, s, e in loops)
        if kinds or inside_pipeline:
            regions.append((start, end, bound))
    return regions


def _innermost(regions, pos: int):
    inner = [r for r in regions if r[0] < pos < r[1]]
    return min(inner, key=lambda r: r[1] - r[0]) if inner else None


def _reads(body: str, names) -> list[tuple[str, int]]:
    """(array, position) of every element read of the named arrays (assignments to them excluded)."""
    out = []
    for name in names:
        for m in re.finditer(rf"\b{re.escape(name)}\s*\[", body):
            close = _match_brace(body.replace("[", "{").replace("]", "}"), m.end() - 1)
            if not re.match(r"\s*=(?!=)", body[close + 1:]):
                out.append((name, m.start()))
    return out


def _calls(body: str, funcs: dict[str, Function]):
    """(callee, argument list, position) of calls to known functions."""
    for m in re.finditer(r"\b(\w+)\s*(?:<[^;(){}]*?>)?\s*(?:::\s*(\w+))?\s*\(", body):
        name = m[2] if m[2] in funcs else m[1]
        if name not in funcs or name in ("if", "for"):
            continue
        start = m.end() - 1
        end = _match_brace(body.replace("(", "{").replace(")", "}"), start)
        yield funcs[name], _split_args(body[start + 1:end]), m.start()


def _enough(tail: str, bound: str | None) -> bool:
    """Whether a partition pragma's tail serves the reads of a loop unrolled up to `bound`."""
    if "complete" in tail:
        return True
    factor = re.search(r"factor=(\S+)", tail)
    return factor is not None and bound is not None and factor[1] == bound


def _where(f: Function, pos: int) -> str:
    return f"{f.file}:{f.body_line + f.body.count(chr(10), 0, pos)}"


def check_files(files: Mapping[str, str], name: str) -> list[str]:
    """The partitioning, division and pragma checks (no compiler) of a project given as
    {relative path: text} (as codegen.vitis.emit.project_files returns it)."""
    rels = sorted(r for r in files if r.startswith("firmware/spx/") and r.endswith(".h")) + [f"firmware/{name}.cpp"]
    if rels[-1] not in files:
        return [f"{rels[-1]}: top function source not found"]
    funcs: dict[str, Function] = {}
    for rel in rels:
        for f in _parsed(files[rel], rel):
            funcs.setdefault(f.name, copy.copy(f))
    problems = []

    # which parameters each function reads (through its callees too), to a fixed point
    for f in funcs.values():
        f.reads_param = {i for i, p in enumerate(f.params) if any(a == p for a, _ in _reads(f.body, [p]))}
    changed = True
    while changed:
        changed = False
        for f in funcs.values():
            for callee, args, _ in _calls(f.body, funcs):
                for i in callee.reads_param:
                    if i < len(args) and args[i] in f.params and f.params.index(args[i]) not in f.reads_param:
                        f.reads_param.add(f.params.index(args[i]))
                        changed = True

    needs_caller: dict[str, set[int]] = {}  # function -> parameters read unrolled, not partitioned inside
    for f in funcs.values():
        declared = set(f.params) | f.locals
        for kind, var in _PRAGMA_VAR.findall(f.body):
            if var not in declared:
                problems.append(f"{f.file}:{f.line}: pragma HLS {kind} in {f.name} names '{var}', which it does not declare")
        regions = _unrolled_regions(f.body)
        arrays = set(f.array_params) | f.local_arrays
        reads = [(a, pos) for a, pos in _reads(f.body, arrays) if _innermost(regions, pos)]
        for callee, args, pos in _calls(f.body, funcs):
            if _innermost(regions, pos):
                reads += [(args[i], pos) for i in callee.reads_param if i < len(args) and args[i] in arrays]
        for array, pos in reads:
            bound = _innermost(regions, pos)[2]
            if array in f.partitioned:
                if not _enough(f.partitioned[array], bound):
                    problems.append(f"{_where(f, pos)}: '{array}' read in a loop unrolled up to {bound} in {f.name} "
                                    f"is partitioned {f.partitioned[array].strip()!r}, too little")
            elif array in f.local_arrays:
                problems.append(f"{_where(f, pos)}: local array '{array}' read in an unrolled loop of {f.name} is not partitioned")
            else:
                needs_caller.setdefault(f.name, set()).add(f.params.index(array))
        problems += _divisions(f)

    # the top function hands partitioned arrays to the kernels that need them
    top = funcs.get(name)
    if top is None:
        return problems + [f"firmware/{name}.cpp: top function {name} not found"]
    for callee, args, pos in _calls(top.body, funcs):
        for i in sorted(needs_caller.get(callee.name, ())):
            arg = args[i] if i < len(args) else "?"
            if arg not in top.partitioned:
                problems.append(f"{_where(top, pos)}: {callee.name} reads its parameter '{callee.params[i]}' in an "
                                f"unrolled loop ({callee.file}), but it is not partitioned there and the top function "
                                f"passes '{arg}', which is not partitioned either")
    return problems


def _divisions(f: Function) -> list[str]:
    problems = []
    for line_no, line in enumerate(f.body.split("\n")):
        if line.strip().startswith("#") or re.search(r"\bconstexpr\b|\bstatic_assert\b", line):
            continue
        for m in re.finditer(r"(?<![/*])([/%])(?![/*=])\s*(\(?[\w:]+(?:\s*\*\s*[\w:]+)*\)?)", line):
            divisor = m[2].strip("()")
            if not _is_constant_expr(divisor, f.constants):
                problems.append(f"{f.file}:{f.body_line + line_no}: '{m[1]}' by the non-constant '{divisor}' in {f.name}")
            elif re.search(r"long long|to_raw\(|\bLL\b|\d+LL", line):
                problems.append(f"{f.file}:{f.body_line + line_no}: '{m[1]}' on a 64-bit operand in {f.name}")
    return problems


def compile_check(project: Path, name: str) -> list[str]:
    """g++ -std=c++14 -Wall -Wextra -Werror -fsyntax-only on the firmware (pragmas aside)."""
    cmd = [toolchain.find_gxx(), f"-std={toolchain.CXX_STD}", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           "-fsyntax-only", "-isystem", str(toolchain.ap_types_include()), f"firmware/{name}.cpp"]
    run = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    if run.returncode == 0:
        return []
    lines = run.stderr.strip().splitlines() or ["(no output)"]
    first = next((line for line in lines if "error" in line), lines[0])
    return [f"firmware/{name}.cpp: g++ -std={toolchain.CXX_STD} -Wall -Wextra -Werror: {first}"]


def check_project(project, *, compile: bool = True) -> list[str]:
    """Every problem found in the project at `project` (empty when it passes)."""
    project = Path(project)
    name = json.loads((project / "spx_project.json").read_text()).get("name")
    if not isinstance(name, str) or not is_safe_identifier(name):  # it becomes a path below
        return [f"spx_project.json: 'name' {name!r} is not a name spx emits"]
    firmware = [project / "firmware" / f"{name}.cpp", *sorted((project / "firmware" / "spx").glob("*.h"))]
    problems = check_files({str(p.relative_to(project)): p.read_text() for p in firmware if p.is_file()}, name)
    return problems + (compile_check(project, name) if compile else [])
