"""The static check of generated projects (codegen/vitis/check.py) and the exactness of the divider-free
average pooling (spx_ir.accum.pool_average)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from codegen.vitis.check import check_project
from codegen.vitis.emit import emit
from spx_ir.accum import pool_average, reciprocal
from spx_ir.fixed import QUANT_MODES, FixedType, divide_round
from spx_ir.text import parse_module
from tests.ir_samples import every_op_model
from tests.test_vitis_equivalence import ARCHITECTURES, OP_MODELS, architecture, op_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


@pytest.fixture(scope="module")
def every_op_project(tmp_path_factory):
    return emit(every_op_model(), tmp_path_factory.mktemp("every") / "prj", tb_events=0)


def _seed_modules():
    yield "neutrino_example", parse_module(EXAMPLE.read_text())
    yield "every_op", every_op_model()
    for name, bits in ARCHITECTURES:
        yield f"{name}_{bits}", architecture(name, bits)


@pytest.mark.parametrize("name,module", list(_seed_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_seed_projects_pass_the_static_check_and_gxx_cxx14(name, module, tmp_path):
    assert check_project(emit(module, tmp_path / "prj", tb_events=0)) == []


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", list(OP_MODELS))
def test_random_projects_pass_the_static_check(kind, seed, tmp_path):
    assert check_project(emit(op_model(kind, seed), tmp_path / "prj", tb_events=0), compile=False) == []


def _break(project: Path, header: str, old: str, new: str) -> None:
    path = project / "firmware" / ("" if header == "parameters.h" else "spx") / header
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("header,old,new,expected", [
    ("spx_sparse_conv2d.h", "    #pragma HLS ARRAY_PARTITION variable=weights complete\n", "",
     r"sparse_conv2d reads its parameter 'weights' in an unrolled loop .* passes 'w\d+', which is not partitioned"),
    ("spx_sparse_activation.h", "#pragma HLS ARRAY_PARTITION variable=table complete",
     "#pragma HLS ARRAY_PARTITION variable=table cyclic factor=2", r"'table' read in a loop unrolled up to .* too little"),
    ("spx_sparse_pool2d.h", "    #pragma HLS ARRAY_PARTITION variable=valid complete\n", "",
     r"local array 'valid' read in an unrolled loop of sparse_pool2d is not partitioned"),
    ("spx_sparse_pool2d.h", "#pragma HLS ARRAY_PARTITION variable=ph complete", "#pragma HLS ARRAY_PARTITION variable=phh complete",
     r"pragma HLS ARRAY_PARTITION in sparse_pool2d names 'phh', which it does not declare"),
    ("spx_sparse_pool2d.h", "unsigned(hash[2 * i] - 1) / P", "unsigned(hash[2 * i] - 1) / unsigned(hash[2 * i + 1])",
     r"'/' by the non-constant 'unsigned' in sparse_pool2d"),
    ("spx_sparse_flatten.h", "const unsigned h = hash[2 * i], w = hash[2 * i + 1];",
     "const unsigned h = hash[2 * i] % CONFIG_T::n_max, w = hash[2 * i + 1] % (to_raw(feat[i]) + 1LL);",
     r"'%' by the non-constant 'to_raw' in sparse_flatten"),
    ("spx_sparse_flatten.h", "const unsigned h = hash[2 * i], w = hash[2 * i + 1];",
     "const long long h = to_raw(hash[2 * i]) / CONFIG_T::n_max; const unsigned w = hash[2 * i + 1];",
     r"'/' on a 64-bit operand in sparse_flatten"),
    ("parameters.h", "static const unsigned filter_parallel = ", "static const unsigned filter_paralel = ",
     r"g\+\+ -std=c\+\+14 .*filter_parallel"),  # a misspelt config field: no default hides it
    ("spx_dense.h", "    typename CONFIG_T::accum_t acc[CONFIG_T::n_out];\n",
     "    typename CONFIG_T::accum_t acc[CONFIG_T::n_out];\n    int unused = 0;\n", r"g\+\+ -std=c\+\+14 -Wall -Wextra -Werror"),
])
def test_a_broken_project_fails_the_check(every_op_project, tmp_path, header, old, new, expected):
    import shutil

    project = tmp_path / "prj"
    shutil.copytree(every_op_project, project)
    assert check_project(project, compile=False) == []  # g++ passes it in the seed-project test
    _break(project, header, old, new)
    problems = check_project(project, compile=expected.startswith(r"g\+\+"))
    assert any(re.search(expected, p) for p in problems), problems


# ------------------------------------------------------------------------ divider-free average pooling


def _pool_cases():
    rng = np.random.default_rng(0)
    for p in range(2, 8):
        for _ in range(6):
            w_in = int(rng.integers(2, 17))
            t_in = FixedType(w_in, int(rng.integers(-2, w_in + 1)), bool(rng.integers(2)))
            w_out = int(rng.integers(2, 20))
            yield p, t_in, FixedType(w_out, w_out - t_in.frac_bits + int(rng.integers(-4, 5)), bool(rng.integers(2)))


@pytest.mark.parametrize("d", [3, 5, 7, 9, 25, 49, 75, 147])
def test_reciprocal_multiply_is_exact_over_the_bounded_range(d):
    """floor(m / d) == (m * mult) >> shift for every m <= m_max: exhaustively up to 2^20, and by the
    bound e * m_max < 2^shift (the proof in spx_ir.accum.PoolAverage) at every range up to 2^40."""
    for bits in range(1, 41):
        m_max = (1 << bits) - 1
        mult, shift = reciprocal(d, m_max)
        e = mult * d - (1 << shift)
        assert 0 <= e < d and e * m_max < (1 << shift)
        if bits <= 20:
            m = np.arange(m_max + 1, dtype=np.int64)
            assert np.array_equal((m * mult) >> shift, m // d)
        else:  # the bound's worst cases: just below each multiple of d near m_max, and m_max
            m = np.array([m_max, m_max - 1, *(k * d - 1 for k in range(m_max // d - 4, m_max // d + 1))], dtype=object)
            assert all((int(v) * mult) >> shift == int(v) // d for v in m if v >= 0)


@pytest.mark.parametrize("p,in_t,out_t", list(_pool_cases()), ids=str)
def test_pool_average_constants_round_like_divide_round_over_every_sum(p, in_t, out_t):
    """The kernel's formula (mirrored here on integers) equals divide_round for every member sum the
    input type allows, in every quantization mode; power-of-two denominators take no multiply."""
    avg = pool_average(in_t, out_t, p)
    total = np.arange(p * p * in_t.min_raw, p * p * in_t.max_raw + 1, dtype=np.int64)
    if total.size > 1 << 18:
        total = np.unique(np.r_[total[:1 << 16], total[-(1 << 16):], np.random.default_rng(p).choice(total, 1 << 16)])
    num = total << avg.num_shift
    n = num + avg.offset
    assert n.min() >= 0 and n.max() <= avg.n_max and avg.n_max.bit_length() <= 62
    q = ((n >> avg.den_pow2).astype(object) * avg.mult) >> avg.shift
    q = q.astype(np.int64)
    rem = n - q * avg.den
    assert ((rem >= 0) & (rem < avg.den)).all()
    if avg.den_odd == 1:
        assert (avg.mult, avg.shift) == (1, 0)
    for quant in QUANT_MODES:
        floor_q = q - avg.offset // avg.den
        inexact, tie, above = rem != 0, (rem != 0) & (2 * rem == avg.den), 2 * rem > avg.den
        up = {"TRN": np.zeros_like(inexact), "TRN_ZERO": inexact & (num < 0), "RND": above | tie,
              "RND_ZERO": above | (tie & (num < 0)), "RND_INF": above | (tie & (num >= 0)), "RND_MIN_INF": above,
              "RND_CONV": above | (tie & (floor_q & 1 == 1))}[quant]
        assert np.array_equal(floor_q + up, divide_round(num, avg.den, quant)), quant


@pytest.mark.parametrize("name", ["../../outside", "-x", 3])
def test_a_project_name_that_is_not_an_identifier_is_refused_before_any_path(tmp_path, name):
    """check_project reads firmware/<name>.cpp: a tampered spx_project.json must not steer it elsewhere."""
    (tmp_path / "prj").mkdir()
    (tmp_path / "prj" / "spx_project.json").write_text(json.dumps({"name": name}))
    (tmp_path / "outside.cpp").write_text("int f() { return 1 / 0; }\n")
    assert check_project(tmp_path / "prj") == [f"spx_project.json: 'name' {name!r} is not a name spx emits"]
