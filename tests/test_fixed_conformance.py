"""spx_ir.fixed against the real ap_fixed headers, bit for bit.

One generated C++ harness (one translation unit, compiled once and cached by compile_cpp) runs every
case; inputs go in through one binary file and results stream back on stdout, where they are compared
with the NumPy implementation while the harness keeps computing. A case is a target type (every
quantization x overflow mode pair over a spread of widths, integer bits and signedness) and one of:
  double  - `T v = (double)x` on values near and at rounding ties, out of range, huge, tiny, +-0;
  convert - `T v = s` from wider raw source types (more fraction bits, or fewer, and either sign);
  mul/add - `T v = a * b` and `T v = a + b` of two fixed values (exact product / sum, then assigned).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from codegen.vitis.toolchain import CompileError, ToolchainError, ap_types_include, compile_cpp, find_gxx
from spx_ir.fixed import (OVERFLOW_MODES, QUANT_MODES, FixedPointError, FixedType, convert, product_type,
                          quantize, sum_type)


def _missing_toolchain() -> str | None:
    try:
        find_gxx()
        ap_types_include()
    except ToolchainError as err:
        return str(err)
    return None


MISSING_TOOLCHAIN = _missing_toolchain()
pytestmark = pytest.mark.skipif(MISSING_TOOLCHAIN is not None, reason=MISSING_TOOLCHAIN or "")

VALUES_PER_CASE = 10_000
HARNESS_FLAGS = ("-O1",)  # thousands of ap_fixed instantiations: -O1 compiles far faster than -O2, runs as fast

# (width, int_bits, signed): W=1, I<0, I=0, I>W, widths 1..32 and some up to 48.
SHAPES = [(1, 1, True), (1, 1, False), (1, 0, True), (1, -2, False), (1, 4, True), (2, 5, False),
          (3, -2, True), (3, 0, False), (4, 0, True), (5, 2, False), (6, 9, True), (8, 3, True),
          (8, 3, False), (8, 10, False), (12, -3, True), (16, 6, True), (18, 8, False), (24, 0, True),
          (32, 16, True), (32, -4, False), (40, 20, True), (47, 24, False), (48, 8, True)]


@dataclass(frozen=True)
class Case:
    kind: str  # "double", "convert", "mul", "add"
    dst: FixedType
    operands: tuple[FixedType, ...]  # source type(s) of the raw inputs
    group: int  # index of the shared input array

    def describe(self) -> str:
        if self.kind == "double":
            return f"{self.dst.cpp()} = double"
        if self.kind == "convert":
            return f"{self.dst.cpp()} = {self.operands[0].cpp()}"
        op = "*" if self.kind == "mul" else "+"
        return f"{self.dst.cpp()} = {self.operands[0].cpp()} {op} {self.operands[1].cpp()}"

    def cpp_entry(self) -> str:
        types = ", ".join(t.cpp() for t in (*self.operands, self.dst))
        return f"run_{self.kind}<{types}>"


def input_groups(width: int, int_bits: int, signed: bool, flip: bool) -> list[tuple[str, tuple]]:
    """(kind, operand types) for one target shape; each group's inputs serve all 28 mode pairs."""
    more_frac = min(width + 14, 60)
    return [
        ("double", ()),
        ("convert", (FixedType(more_frac, int_bits + 5, True),)),  # more integer and fraction bits
        ("convert", (FixedType(more_frac, int_bits + 5, False),)),
        ("convert", (FixedType(width + 6, int_bits + 10, not signed),)),  # 4 fraction bits fewer
        ("mul", (FixedType((width + 1) // 2 + 3, (int_bits + 1) // 2 + 2, signed),
                 FixedType(width // 2 + 3, int_bits // 2 + 2, signed != flip))),
        ("add", (FixedType(min(width + 4, 56), int_bits + 1, signed),
                 FixedType(min(width + 2, 56), int_bits + 2, flip))),
    ]


def build_cases() -> tuple[list[Case], list[tuple[str, FixedType, tuple]]]:
    """All cases, plus the input groups (kind, target shape, operand types) they share."""
    cases, groups = [], []
    for index, (width, int_bits, signed) in enumerate(SHAPES):
        for kind, operands in input_groups(width, int_bits, signed, flip=index % 2 == 0):
            groups.append((kind, FixedType(width, int_bits, signed), operands))
            for quant in QUANT_MODES:
                for overflow in OVERFLOW_MODES:
                    dst = FixedType(width, int_bits, signed, quant, overflow)
                    cases.append(Case(kind, dst, operands, len(groups) - 1))
    return cases, groups


# ---------------------------------------------------------------------------------------------------
# Inputs


def tie_heavy_raws(src: FixedType, dst: FixedType, rng, n: int) -> np.ndarray:
    """Raw values of src: uniform, half of them scaled from around dst's range, extremes, and low bits
    (those dst drops) often exactly at or next to a rounding tie."""
    raw = rng.integers(src.min_raw, src.max_raw, n, endpoint=True)
    drop = src.frac_bits - dst.frac_bits
    if 0 < drop and dst.width + drop < 60:
        near = rng.integers(dst.min_raw - 2, dst.max_raw + 3, n) << drop
        raw = np.where(rng.random(n) < 0.5, near, raw)
        half = 1 << (drop - 1)
        low = rng.choice(np.array([0, half, half - 1, half + 1, (1 << drop) - 1], np.int64), n)
        raw = np.where(rng.random(n) < 0.5, ((raw >> drop) << drop) + low, raw)
        raw = np.clip(raw, src.min_raw, src.max_raw)
    edges = [src.min_raw, src.min_raw + 1, src.max_raw, src.max_raw - 1, 0, 1, -1 if src.signed else 2]
    raw[: len(edges)] = np.clip(edges, src.min_raw, src.max_raw)
    return raw.astype(np.int64)


def trailing_zero_raws(src: FixedType, rng, n: int) -> np.ndarray:
    """Raw operands for products: some with many trailing zeros, so exact ties occur."""
    raw = rng.integers(src.min_raw, src.max_raw, n, endpoint=True)
    shift = rng.integers(0, src.width, n)
    pick = rng.random(n) < 0.4
    raw = np.where(pick, (raw >> shift) << shift, raw)
    raw[:4] = [src.min_raw, src.max_raw, 0, src.max_raw // 2]
    return raw.astype(np.int64)


def double_inputs(t: FixedType, rng, n: int) -> np.ndarray:
    """Doubles around t: in range, out of range, at and next to ties, huge, tiny, signed zeros."""
    span = t.max_raw - t.min_raw + 1
    k = np.where(rng.random(n) < 0.6,
                 rng.integers(t.min_raw - 2, t.max_raw + 3, n),
                 rng.integers(t.min_raw - 4 * span, t.max_raw + 4 * span, n)).astype(np.float64)
    offset = rng.choice(np.array([0.0, 0.5, 0.25, 0.75, -0.5]), n)
    offset = np.where(rng.random(n) < 0.2, rng.random(n), offset)
    x = np.ldexp(k + offset, -t.frac_bits)
    nudge = rng.integers(-1, 2, n)  # one ulp below / at / above a tie
    x = np.where(nudge < 0, np.nextafter(x, -np.inf), np.where(nudge > 0, np.nextafter(x, np.inf), x))
    wild = rng.random(n) < 0.1
    x = np.where(wild, np.ldexp(rng.uniform(-1, 1, n), rng.integers(-80, 400, n)), x)
    specials = [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e300, -1e300, 2.0**70, -(2.0**70),
                np.ldexp(1.0, t.int_bits - 1), -np.ldexp(1.0, t.int_bits - 1)]
    x[: len(specials)] = specials
    return x


def group_inputs(kind: str, dst: FixedType, ops, rng, n: int) -> np.ndarray:
    """The 8-byte words one group feeds the harness (doubles bit-cast to int64)."""
    if kind == "double":
        return double_inputs(dst, rng, n).view(np.int64)
    if kind == "convert":
        return tie_heavy_raws(ops[0], dst, rng, n)
    if kind == "mul":
        return np.concatenate([trailing_zero_raws(t, rng, n) for t in ops])
    return np.concatenate([tie_heavy_raws(t, dst, rng, n) for t in ops])


def expected(case: Case, words: np.ndarray) -> np.ndarray:
    if case.kind == "double":
        return quantize(words.view(np.float64), case.dst)
    if case.kind == "convert":
        return convert(words, case.operands[0], case.dst)
    a_type, b_type = case.operands
    a, b = words[: len(words) // 2], words[len(words) // 2:]
    if case.kind == "mul":
        return convert(a * b, product_type(a_type, b_type), case.dst)
    exact = sum_type(a_type, b_type)
    total = convert(a, a_type, exact) + convert(b, b_type, exact)
    return convert(total, exact, case.dst)


# ---------------------------------------------------------------------------------------------------
# Harness

HARNESS_HEAD = r"""
#include <ap_fixed.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

template <class T> static inline int64_t raw_of(const T& x) { return (int64_t)x.V.get_VAL(); }
template <class T> static inline T from_raw(int64_t raw) { T x; x.V = raw; return x; }

template <class D> void run_double(const int64_t* in, int64_t* out, long n) {
  for (long i = 0; i < n; ++i) { double x; std::memcpy(&x, &in[i], 8); D d = x; out[i] = raw_of(d); }
}
template <class S, class D> void run_convert(const int64_t* in, int64_t* out, long n) {
  for (long i = 0; i < n; ++i) { D d = from_raw<S>(in[i]); out[i] = raw_of(d); }
}
template <class A, class B, class D> void run_mul(const int64_t* in, int64_t* out, long n) {
  for (long i = 0; i < n; ++i) { D d = from_raw<A>(in[i]) * from_raw<B>(in[n + i]); out[i] = raw_of(d); }
}
template <class A, class B, class D> void run_add(const int64_t* in, int64_t* out, long n) {
  for (long i = 0; i < n; ++i) { D d = from_raw<A>(in[i]) + from_raw<B>(in[n + i]); out[i] = raw_of(d); }
}

struct Case { void (*run)(const int64_t*, int64_t*, long); long offset; long n; };
"""

HARNESS_MAIN = r"""
int main(int argc, char** argv) {
  if (argc != 2) { std::fprintf(stderr, "usage: harness INPUT\n"); return 2; }
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f) { std::perror(argv[1]); return 2; }
  std::fseek(f, 0, SEEK_END);
  long words = std::ftell(f) / 8;
  std::fseek(f, 0, SEEK_SET);
  std::vector<int64_t> in(words);
  if ((long)std::fread(in.data(), 8, words, f) != words) { std::fprintf(stderr, "short read\n"); return 2; }
  std::fclose(f);
  std::vector<int64_t> out;
  for (const Case& c : CASES) {
    out.resize(c.n);
    c.run(in.data() + c.offset, out.data(), c.n);
    std::fwrite(out.data(), 8, c.n, stdout);
    std::fflush(stdout);  // a header assertion then names the exact case
  }
  return 0;
}
"""


def harness_source(cases: list[Case], offsets: list[int], n: int) -> str:
    rows = [f"  {{{c.cpp_entry()}, {offsets[c.group]}, {n}}}," for c in cases]
    return HARNESS_HEAD + "static const Case CASES[] = {\n" + "\n".join(rows) + "\n};\n" + HARNESS_MAIN


def run_conformance(cases, groups, workdir, n=VALUES_PER_CASE, seed=2024, max_shown=8):
    """Compile and run the harness on `cases`; return (values compared, mismatch report or "")."""
    rng = np.random.default_rng(seed)
    inputs = [group_inputs(kind, dst, ops, rng, n) for kind, dst, ops in groups]
    offsets = np.concatenate([[0], np.cumsum([len(w) for w in inputs])]).tolist()
    np.concatenate(inputs).astype("<i8").tofile(workdir / "inputs.bin")
    source = workdir / "fixed_harness.cpp"
    source.write_text(harness_source(cases, offsets, n))
    exe = compile_cpp([source], workdir / "fixed_harness", extra_flags=HARNESS_FLAGS)

    examples, bad_values, bad_cases, compared = [], 0, 0, 0
    with subprocess.Popen([str(exe), str(workdir / "inputs.bin")], stdout=subprocess.PIPE) as proc:
        for case in cases:
            data = proc.stdout.read(8 * n)
            assert len(data) == 8 * n, f"harness stopped early at {case.describe()}"
            got = np.frombuffer(data, "<i8")
            words = inputs[case.group]
            want = expected(case, words)
            compared += n
            bad = np.flatnonzero(want != got)
            bad_values, bad_cases = bad_values + bad.size, bad_cases + (bad.size > 0)
            for i in bad[:2][: max_shown - len(examples)]:
                shown = repr(float(words.view(np.float64)[i])) if case.kind == "double" else \
                    int(words[i]) if case.kind == "convert" else (int(words[i]), int(words[n + i]))
                examples.append(f"  {case.describe()}: input {shown} expected {want[i]} got {got[i]}")
    assert proc.returncode == 0, f"harness exited with {proc.returncode}"
    if not bad_values:
        return compared, ""
    return compared, f"{bad_values} values in {bad_cases} of {len(cases)} cases differ; first:\n" + \
        "\n".join(examples)


def test_numpy_matches_ap_fixed_headers(tmp_path):
    cases, groups = build_cases()
    compared, mismatches = run_conformance(cases, groups, tmp_path)
    assert len(cases) == len(SHAPES) * 6 * len(QUANT_MODES) * len(OVERFLOW_MODES)
    assert compared == len(cases) * VALUES_PER_CASE
    assert not mismatches, "spx_ir.fixed differs from ap_fixed: " + mismatches


# ---------------------------------------------------------------------------------------------------
# The toolchain the harness relies on


def test_compile_cache_and_header_tracking(tmp_path, monkeypatch):
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "cache"))
    (tmp_path / "value.h").write_text("#define VALUE 3\n")
    (tmp_path / "main.cpp").write_text('#include "value.h"\nint main() { return VALUE; }\n')
    exe = compile_cpp([tmp_path / "main.cpp"], tmp_path / "main")
    assert subprocess.run([exe]).returncode == 3
    [artifact] = (tmp_path / "cache").glob("cxx/*/artifact")
    built = artifact.stat().st_mtime_ns
    exe.unlink()
    assert subprocess.run([compile_cpp([tmp_path / "main.cpp"], tmp_path / "main")]).returncode == 3
    assert artifact.stat().st_mtime_ns == built  # a cache hit: g++ did not run again
    (tmp_path / "value.h").write_text("#define VALUE 5\n")  # an edited header invalidates it
    assert subprocess.run([compile_cpp([tmp_path / "main.cpp"], tmp_path / "main")]).returncode == 5


def test_compile_error_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "broken.cpp"
    source.write_text("int f() {\n  return missing_name;\n}\n")
    with pytest.raises(CompileError) as info:
        compile_cpp([source], tmp_path / "broken.so", shared=True)
    message = str(info.value)
    assert f"{source}:2:10: error:" in message and "missing_name" in message
    assert "return missing_name;" in message  # the offending line is quoted


def test_headers_abort_where_convert_refuses(tmp_path):
    """A rounding assignment dropping more fraction bits than the source has aborts ap_fixed's C
    simulation; dropping exactly as many works. convert mirrors both."""
    src, fits, too_far = FixedType(4, 2), FixedType(2, 4, quant="RND"), FixedType(2, 5, quant="RND")
    source = tmp_path / "abort.cpp"
    source.write_text(HARNESS_HEAD + f"""
int main(int argc, char**) {{
  {src.cpp()} s = from_raw<{src.cpp()}>(-7);
  if (argc == 1) {{ {fits.cpp()} d = s; std::printf("%lld\\n", (long long)raw_of(d)); }}
  else {{ {too_far.cpp()} d = s; std::printf("%lld\\n", (long long)raw_of(d)); }}
  return 0;
}}
""")
    exe = compile_cpp([source], tmp_path / "abort", extra_flags=HARNESS_FLAGS)
    fine = subprocess.run([exe], capture_output=True, text=True)
    assert fine.returncode == 0 and int(fine.stdout) == convert(-7, src, fits)
    aborted = subprocess.run([exe, "x"], capture_output=True, text=True)
    assert aborted.returncode != 0 and "Assertion" in aborted.stderr
    with pytest.raises(FixedPointError, match="aborts ap_fixed C simulation"):
        convert(-7, src, too_far)
