"""The `spx` command and Python API: compile, predict, project directories, one-line errors."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import frontends.keras as fk  # noqa: E402
import spx as spx_api  # noqa: E402
from spx.cli import spx  # noqa: E402

EXAMPLE = Path(__file__).parent.parent / "examples" / "neutrino_sparse_l.mlir"


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    model = fk.mnist_model(n_max=12, bits=8)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()])
    model.save(d / "m.keras")
    model.save(d / "m.h5")
    x = (rng.random((30, 48, 48, 1)) < 0.03) * rng.uniform(0, 1, (30, 48, 48, 1))
    np.save(d / "x.npy", x.astype(np.float32))
    fk.jet_model(sparse=False).save(d / "standard.keras")
    return d, model


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_compile_then_predict_matches_the_python_api(saved_models, tmp_path, fmt, capsys):
    d, model = saved_models
    out = tmp_path / "proj"
    assert spx(["compile", str(d / f"m.{fmt}"), "-o", str(out), "--targets", "numpy"]) == 0
    marker = json.loads((out / "spx_project.json").read_text())
    assert marker["targets"] == ["numpy"] and (out / "model.mlir").is_file()
    assert spx(["predict", str(out), str(d / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    expected = spx_api.compile(model).predict(np.load(d / "x.npy"))
    np.testing.assert_array_equal(y, expected)
    assert y.shape == (30, 10)
    # writing again into the same spx project is allowed
    assert spx(["compile", str(d / f"m.{fmt}"), "-o", str(out), "--targets", "numpy"]) == 0


def test_existing_non_project_directory_is_refused_unless_forced(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert spx(["compile", str(EXAMPLE), "-o", str(tmp_path), "--targets", "numpy"]) == 1
    assert "directory exists and is not an spx project (use --force" in capsys.readouterr().err
    assert spx(["compile", str(EXAMPLE), "-o", str(tmp_path), "--targets", "numpy", "--force"]) == 0
    assert (tmp_path / "mine.txt").read_text() == "keep" and (tmp_path / "numpy" / "neutrino_sparse.py").is_file()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["compile", "/no/such/model.keras", "-o", "OUT"], "/no/such/model.keras: error: no such file"),
        (["compile", "{d}/x.npy", "-o", "OUT"], "error: unknown model format '.npy'"),
        (["compile", "{d}/standard.keras", "-o", "OUT"], "error: layer 'conv1' (Conv2D) is not supported; supported:"),
        (["compile", str(EXAMPLE), "-o", "OUT", "-p", "nope"], "error: unknown pass 'nope'; available passes:"),
        (["compile", str(EXAMPLE), "-o", "OUT", "--targets", "verilog"], "error: unknown target 'verilog'; available targets:"),
        (["predict", "{d}", "{d}/x.npy", "-o", "OUT/y.npy"], "error: not an spx project (no valid spx_project.json)"),
    ],
)
def test_user_errors_are_one_line(saved_models, tmp_path, capsys, argv, message):
    d, _ = saved_models
    argv = [a.replace("{d}", str(d)).replace("OUT", str(tmp_path / "o")) for a in argv]
    assert spx(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_predict_rejects_wrong_shapes_with_the_expected_shape(tmp_path, capsys):
    out = tmp_path / "p"
    assert spx(["compile", str(EXAMPLE), "-o", str(out), "--targets", "numpy"]) == 0
    np.save(tmp_path / "bad.npy", np.zeros((2, 48, 48, 1)))
    assert spx(["predict", str(out), str(tmp_path / "bad.npy"), "-o", str(tmp_path / "y.npy")]) == 1
    assert "expected input shape (B, 63, 63, 1) or (63, 63, 1), got (2, 48, 48, 1)" in capsys.readouterr().err


def test_api_diagnostics_report_dropped_pixels(saved_models):
    d, model = saved_models
    cm = spx_api.compile(model)
    x = np.zeros((2, 48, 48, 1), dtype=np.float32)
    x[0, 0, :20, 0] = 0.5  # 20 active, n_max 12 -> 8 dropped
    np.testing.assert_array_equal(cm.diagnostics(x)["dropped"], [8, 0])


def test_a_model_function_with_two_arguments_is_a_user_error(tmp_path, capsys):
    """A hand-written module whose hash is a function argument verifies, but no target reads it: one line, exit 1."""
    src = tmp_path / "two_args.mlir"
    src.write_text(
        "builtin.module {\n"
        "  func.func @m(%0: tensor<2x1x!spx.fixed<8, 1>>, %1: tensor<2x2xui4>) -> tensor<2x1x!spx.fixed<8, 1>> {\n"
        '    %2 = spx.sparse_quantize %0, %1 {kif = dense<[[[[1, 0, 3]]]]> : tensor<1x1x1x3xi64>, quant = "RND", '
        'overflow = "WRAP", height = 1 : i64, width = 1 : i64} : (tensor<2x1x!spx.fixed<8, 1>>, tensor<2x2xui4>) '
        "-> tensor<2x1x!spx.fixed<8, 1>>\n"
        "    func.return %2 : tensor<2x1x!spx.fixed<8, 1>>\n  }\n}\n")
    for target in ("numpy", "vitis", "rtl"):
        assert spx(["compile", str(src), "-o", str(tmp_path / target), "--targets", target]) == 1
        err = capsys.readouterr().err.strip()
        assert "the model function @m must take exactly one argument (the image), it takes 2" in err
        assert len(err.splitlines()) == 1


@pytest.mark.parametrize("text", ["{}", "not json", "[1, 2]", '{"sources": 3}'])
def test_report_refuses_a_damaged_synth_report_in_one_line(tmp_path, capsys, text):
    """`spx report DIR` prints DIR/rtl/reports/synth.json if present: a damaged one is a user error, not a crash."""
    assert spx(["compile", str(EXAMPLE), "-o", str(tmp_path / "p"), "--targets", "numpy"]) == 0
    capsys.readouterr()
    (tmp_path / "p" / "rtl" / "reports").mkdir(parents=True)
    (tmp_path / "p" / "rtl" / "reports" / "synth.json").write_text(text)
    assert spx(["report", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip()
    assert "synth.json: error: not a report written by `spx synth`" in err and len(err.splitlines()) == 1
