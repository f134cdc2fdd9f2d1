"""Host C++ toolchain for C simulation: locate g++ and the ap_types headers, compile with a cache.

Builds go through `codegen.cache.entry` (content-keyed, validated, locked, atomic). `build_key`
describes a build completely: the compiler's path and `--version`, the flags, the digest of every
file of the ap_types include directory, and the caller's sources (every generated file's bytes).
`compile_cpp` adds the content of every project header the sources include (g++ -MM) to that.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from codegen import cache

CXX_STD = "c++14"  # the standard of build_prj.tcl too: C simulation checks the code Vitis compiles
CXX_FLAGS = ("-O2", f"-std={CXX_STD}", "-Wall", "-Wextra")
_SHOWN_ERRORS = 3


class ToolchainError(RuntimeError):
    """The host toolchain (g++ or the ap_types headers) is missing."""


class CompileError(ToolchainError):
    """g++ rejected the code; the message names the file and line of the first errors."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.stderr = stderr


def find_gxx() -> str:
    """Path of the C++ compiler: $CXX if set, else g++."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"C++ compiler {name!r} not found on PATH: install g++ "
                             "(e.g. `apt-get install g++`) or set CXX")
    return path


def ap_types_include() -> Path:
    """Directory holding ap_fixed.h: $XILINX_HLS/include, else the copy shipped with hls4ml."""
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx and (Path(xilinx) / "include" / "ap_fixed.h").is_file():
        return Path(xilinx) / "include"
    spec = importlib.util.find_spec("hls4ml")  # locate the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "templates" / "vivado" / "ap_types"
        if (candidate / "ap_fixed.h").is_file():
            return candidate
    raise ToolchainError("ap_fixed.h not found: `pip install hls4ml` or set XILINX_HLS "
                         "to a Vitis HLS installation")


def cache_dir() -> Path:
    return cache.cache_root()


@functools.lru_cache(maxsize=None)
def _compiler_version(gxx: str) -> str:
    return subprocess.run([gxx, "--version"], capture_output=True, text=True, check=True).stdout


@functools.lru_cache(maxsize=None)
def _directory_digests(directory: str) -> dict[str, str]:
    root = Path(directory)
    return {str(p.relative_to(root)): _digest(p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def base_flags(shared: bool = False, extra_flags=()) -> list[str]:
    flags = [*CXX_FLAGS, "-isystem", str(ap_types_include())]
    return flags + (["-fPIC", "-shared"] if shared else []) + [str(f) for f in extra_flags]


def build_key(gxx: str, flags: list[str], sources: dict[str, bytes]) -> dict:
    """Everything that determines a build's output (see the module docstring)."""
    include = str(ap_types_include())
    return {"compiler": [gxx, _compiler_version(gxx)], "flags": flags, "ap_types": _directory_digests(include),
            "sources": dict(sources)}


def run_gxx(gxx: str, flags: list[str], sources, output: Path, cwd: Path | None = None) -> None:
    """Compiles `sources` into `output`; CompileError naming the first errors if g++ fails."""
    result = subprocess.run([gxx, *flags, *map(str, sources), "-o", str(output)], capture_output=True,
                            text=True, cwd=cwd)
    if result.returncode != 0:
        raise CompileError(_describe_errors(result.stderr, [Path(s) for s in sources]), result.stderr)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _project_headers(gxx: str, flags: list[str], sources: list[Path], base: Path) -> list[str]:
    """Non-system headers the sources include (-MM leaves out system and -isystem headers), relative
    to `base` when inside it, so a copy of the project elsewhere still hits the cache."""
    headers = set()
    for source in sources:
        result = subprocess.run([gxx, *flags, "-MM", str(source)], capture_output=True, text=True)
        for dep in result.stdout.replace("\\\n", " ").partition(":")[2].split():
            path = Path(dep).resolve()
            if path not in sources:
                headers.add(str(path.relative_to(base)) if path.is_relative_to(base) else str(path))
    return sorted(headers)


def compile_cpp(sources, output, *, shared: bool = False, extra_flags=()) -> Path:
    """Compile C++ sources into an executable (or a shared library) at `output`, using the cache."""
    gxx = find_gxx()
    sources = [Path(s).resolve() for s in sources]
    base = sources[0].parent
    output = Path(output)
    flags = base_flags(shared, extra_flags)

    def rel(path: Path) -> str:  # relative to the first source: a copy of the project elsewhere hits
        return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)

    files = {rel(s): s.read_bytes() for s in sources}
    for header in _project_headers(gxx, flags, sources, base):
        files.setdefault(header, (base / header).read_bytes())

    def build(work: Path) -> None:
        run_gxx(gxx, flags, sources, work / "artifact")

    artifact = cache.entry("cxx", build_key(gxx, flags, files), build) / "artifact"
    # Copy then rename, so a process still running or dlopen-ing the old output is not disturbed.
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=output.parent, prefix=output.name, delete=False) as tmp:
        pass
    shutil.copy2(artifact, tmp.name)
    os.replace(tmp.name, output)
    return output


_ERROR_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?:fatal )?error: (?P<msg>.*)$",
                         re.MULTILINE)


def _describe_errors(stderr: str, sources: list[Path]) -> str:
    """One message: the first g++ errors as file:line: message, each with its source line."""
    errors = list(_ERROR_LINE.finditer(stderr))
    if not errors:
        tail = stderr.strip().splitlines()[-5:]
        return "g++ failed compiling {}:\n  {}".format(", ".join(map(str, sources)), "\n  ".join(tail))
    lines = [f"g++ found {len(errors)} error(s); first:"]
    for error in errors[:_SHOWN_ERRORS]:
        where = f"{error['file']}:{error['line']}" + (f":{error['col']}" if error["col"] else "")
        lines.append(f"  {where}: error: {error['msg']}")
        try:
            code = Path(error["file"]).read_text().splitlines()[int(error["line"]) - 1]
            lines.append(f"      {code.strip()}")
        except (OSError, IndexError, UnicodeDecodeError):
            pass
    return "\n".join(lines)
