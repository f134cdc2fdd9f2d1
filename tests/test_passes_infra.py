"""Pass registry, pipeline strings, canonicalize, and the spx-opt driver."""

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdsl.passes import ModulePass

from passes import available_passes, register_pass, run_pipeline
from spx.cli import spx_opt
from spx_ir import dialect as spx
from spx_ir.builder import ModelBuilder
from spx_ir.text import SpxError, parse_module, print_module
from tests.ir_samples import ACT_T, IN_T, W_T

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "neutrino_sparse_l.mlir"
SPX_OPT = Path(sys.executable).parent / "spx-opt"


@register_pass
@dataclass(frozen=True)
class TagDenseOps(ModulePass):
    """Test pass: sets reuse_factor on every dense op."""

    name = "test-tag-dense"
    factor: int = 2

    def apply(self, ctx, op):
        from xdsl.dialects.builtin import IntegerAttr, i64

        for d in op.walk():
            if isinstance(d, spx.DenseOp):
                d.reuse_factor = IntegerAttr(self.factor, i64)


def linear_model():
    import numpy as np

    b = ModelBuilder("lin", [4, 4, 1], IN_T)
    feat, hash = b.input_reduce(b.input, n_max=2)
    feat = b.sparse_activation(feat, hash, "linear", IN_T)  # identity: removed
    b.const(np.ones(3, int), W_T)  # dead: removed
    x = b.sparse_flatten(feat, hash, 4, 4)
    x = b.activation(x, "linear", ACT_T)  # a real conversion: kept
    x = b.activation(x, "linear", ACT_T)  # identity: removed
    return b.finish([x])


def test_canonicalize_removes_identities_and_dead_ops_only():
    module = linear_model()
    before = print_module(module)
    assert before.count('kind = "linear"') == 3 and before.count("spx.const") == 1
    after = print_module(run_pipeline(module, "canonicalize"))
    assert after.count('kind = "linear"') == 1 and "spx.const" not in after
    assert '-> tensor<16x!spx.fixed<8, 2, unsigned, RND_CONV, SAT>>' in after
    again = print_module(run_pipeline(parse_module(after), "canonicalize"))
    assert again == after  # idempotent


def test_custom_pass_from_test_file_runs_through_spx_opt(tmp_path, capsys):
    assert "test-tag-dense" in available_passes()
    out = tmp_path / "out.mlir"
    assert spx_opt([str(EXAMPLE), "-p", "canonicalize,test-tag-dense{factor=4}", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count("reuse_factor = 4 : i64") == 2  # both dense ops
    assert print_module(parse_module(text)) == text


def test_custom_pass_loaded_as_plugin_in_a_fresh_process(tmp_path):
    plugin = tmp_path / "my_spx_plugin.py"
    plugin.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from xdsl.passes import ModulePass
        from passes import register_pass

        @register_pass
        @dataclass(frozen=True)
        class DropAll(ModulePass):
            """Renames the model function."""
            name = "rename-model"
            to: str = "renamed"
            def apply(self, ctx, op):
                from xdsl.dialects.builtin import StringAttr
                from spx_ir.builder import model_function
                model_function(op).sym_name = StringAttr(self.to)
    '''))
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(SPX_OPT), "--load", "my_spx_plugin", str(EXAMPLE), "-p", 'rename-model{to="nu"}'],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "func.func @nu(" in run.stdout
    listed = subprocess.run([str(SPX_OPT), "--load", "my_spx_plugin", "--list-passes"], capture_output=True, text=True, env=env)
    assert "rename-model{to: str = renamed}" in listed.stdout and "canonicalize" in listed.stdout


def test_spx_opt_round_trips_the_example_byte_identically():
    run = subprocess.run([str(SPX_OPT), str(EXAMPLE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == EXAMPLE.read_text()


def test_spx_opt_malformed_ir_is_one_line_with_position(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text("builtin.module {\n  %0 = spx.const [1, 2] : tensor<2x!spx.fixed<8 3>>\n}\n")
    run = subprocess.run([str(SPX_OPT), str(bad)], capture_output=True, text=True)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:2:") and ": error: " in lines[0]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "pipeline,message",
    [
        ("no-such-pass", "unknown pass 'no-such-pass'; available passes: canonicalize"),
        ("test-tag-dense{speed=3}", "unknown option 'speed' for pass 'test-tag-dense'; valid options: factor"),
        ("test-tag-dense{factor=fast}", "pass 'test-tag-dense'"),
        ("canonicalize{", "malformed pipeline"),
    ],
)
def test_bad_pipelines_name_the_problem(pipeline, message):
    with pytest.raises(SpxError, match=None) as err:
        run_pipeline(linear_model(), pipeline)
    assert message in str(err.value)


def test_pass_that_breaks_the_ir_fails_verification_by_name():
    with pytest.raises(SpxError, match=r"after pass 'test-tag-dense': error: spx.dense: reuse_factor=7 must be a positive divisor"):
        run_pipeline(parse_module(EXAMPLE.read_text()), "test-tag-dense{factor=7}")


def test_missing_input_file_is_one_line(capsys):
    assert spx_opt(["/nonexistent/model.mlir"]) == 1
    assert capsys.readouterr().err.strip() == "/nonexistent/model.mlir: error: no such file"
