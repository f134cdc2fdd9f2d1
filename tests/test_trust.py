"""Regression tests of issue 13 (trustworthy toolchain), one group per finding."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import spx as spx_api  # noqa: E402
from codegen import cache  # noqa: E402
from codegen.names import safe_identifier  # noqa: E402
from codegen.numpy.emit import emit as emit_numpy  # noqa: E402
from codegen.numpy.emit import load as load_numpy  # noqa: E402
from codegen.vitis import csim  # noqa: E402
from codegen.vitis.emit import emit as emit_vitis  # noqa: E402
from spx.cli import spx, spx_opt  # noqa: E402
from spx_ir.text import SpxError, print_module  # noqa: E402
from tests.trust_helpers import (cxx_payload, inputs, python_payload, rename, run_spx, snapshot,  # noqa: E402
                                 tiny_model)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A private cache inside a sandbox directory; the test works in sandbox/work."""
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "cache"))
    (tmp_path / "work").mkdir()
    return tmp_path


def cli(capsys, *argv):
    code = spx(list(map(str, argv)))
    err = capsys.readouterr().err.strip()
    assert code == 0 or (code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err), (code, err)
    return code, err


# ---------------------------------------------------------------- 1. csim must run THIS model's library


def test_same_name_models_predicted_concurrently_get_their_own_outputs(sandbox):
    work, cache_dir = sandbox / "work", sandbox / "cache"
    projects = []
    for seed in (1, 2):
        module = tiny_model("same", seed=seed, sparse=True)
        spx_api.CompiledModel(module).write(work / f"p{seed}", targets=["numpy"])
        projects.append((work / f"p{seed}", spx_api.CompiledModel(module).predict(inputs(module))))
    np.save(work / "x.npy", inputs(tiny_model("same", sparse=True)))
    assert not np.array_equal(projects[0][1], projects[1][1])

    def predict(job):
        (project, _), k = job
        return run_spx(["predict", project, work / "x.npy", "-o", work / f"y{k}.npy", "--backend", "csim"], cache_dir)

    jobs = [(projects[k % 2], k) for k in range(4)]  # both models at once, first build included
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(predict, jobs))
    for ((_, expected), k), result in zip(jobs, results):
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(np.load(work / f"y{k}.npy"), expected)


def _concurrent_predicts(sandbox, rounds: list[str], workers: int, repeats: int) -> None:
    """Two models with the same function name and shapes, predicted at once by `workers` processes per
    round (half each) through one SPX_CACHE: every output must be its own model's NumPy reference.
    A round is `cold` (a fresh cache: the builds race) or `warm` (the previous round's cache: loads race)."""
    import multiprocessing

    from tests.trust_helpers import csim_worker

    modules = [tiny_model("same", seed=seed, sparse=True) for seed in (1, 2)]
    texts = [print_module(m) for m in modules]
    x = inputs(modules[0], n=24)
    want = [spx_api.CompiledModel(m).predict(x) for m in modules]
    assert not np.array_equal(*want)  # a swapped library would show
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold TensorFlow's threads
    cache_dir = sandbox / "cache-0"
    for r, kind in enumerate(rounds):
        if kind == "cold":
            cache_dir = sandbox / f"cache-{r}"
        barrier, results = ctx.Barrier(workers), ctx.Queue()
        procs = [ctx.Process(target=csim_worker, args=(texts[k % 2], x, str(cache_dir), repeats, barrier, results, k))
                 for k in range(workers)]
        for p in procs:
            p.start()
        got = dict(results.get(timeout=600) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        for k, outs in sorted(got.items()):
            assert not isinstance(outs, str), f"round {r} ({kind}) worker {k}: {outs}"
            for y in outs:
                np.testing.assert_array_equal(y, want[k % 2], err_msg=f"round {r} ({kind}) worker {k}")


def test_same_name_models_predicted_by_concurrent_processes_rounds(sandbox):
    _concurrent_predicts(sandbox, ["cold", "warm"], workers=4, repeats=2)


@pytest.mark.slow
def test_same_name_models_predicted_by_concurrent_processes_many_rounds(sandbox):
    _concurrent_predicts(sandbox, ["cold", "warm", "cold", "warm", "cold"], workers=8, repeats=3)


def test_a_library_of_another_model_is_never_run(sandbox):
    a, b = tiny_model("same", seed=1), tiny_model("same", seed=2)
    lib_a, lib_b = csim.build(a)[1], csim.build(b)[1]
    shutil.copy(lib_a, lib_b)  # plant A's library in B's entry and make the manifest agree
    manifest = json.loads((lib_b.parent / cache.MANIFEST).read_text())
    manifest["files"][lib_b.name] = cache.digest(lib_b.read_bytes())
    (lib_b.parent / cache.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SpxError, match="not this model's"):
        csim.load(b)


def test_cache_key_covers_every_generated_file_the_compiler_and_the_flags(sandbox, monkeypatch):
    from codegen.vitis import toolchain

    module = tiny_model("k")
    model = csim.Model(module)
    files = csim.sources(module, model)
    gxx, flags = toolchain.find_gxx(), toolchain.base_flags(True, csim.WARNING_FLAGS)
    key = cache.key_of(toolchain.build_key(gxx, flags, files))
    for rel in files:  # every file counts
        changed = dict(files, **{rel: files[rel] + b" "})
        assert cache.key_of(toolchain.build_key(gxx, flags, changed)) != key, rel
    assert cache.key_of(toolchain.build_key(gxx, flags + ["-O3"], files)) != key
    monkeypatch.setattr(toolchain, "_compiler_version", lambda g: "g++ 99")
    assert cache.key_of(toolchain.build_key(gxx, flags, files)) != key
    other = csim.sources(tiny_model("k", seed=5), csim.Model(tiny_model("k", seed=5)))
    assert other["csim_bridge.cpp"] != files["csim_bridge.cpp"]  # the bridge names its IR


# ---------------------------------------------------------------- 2. no code execution through names


def test_a_layer_name_never_reaches_cxx(sandbox):
    canary = sandbox / "CANARY"
    module = tiny_model("m", layer_names={"spx.dense": cxx_payload(canary), "spx.activation": "a\\\n*/ \"x"})
    out = emit_vitis(module, sandbox / "work" / "v")
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".h", ".cpp", ".tcl", ".md"):
            text = f.read_text()
            assert 'system("' not in text and str(canary) not in text and "*/" not in text, f
    sim = csim.load(module)
    y = sim.predict(inputs(module))
    assert not canary.exists()
    np.testing.assert_array_equal(y, load_numpy(module).predict(inputs(module)))
    # in-process traces keep the IR's layer names (Python data, never code)
    traces = sim.trace(inputs(module)), load_numpy(module).trace(inputs(module))
    assert all(cxx_payload(canary) in t for t in traces) and traces[0].keys() == traces[1].keys()


def test_names_never_reach_python(sandbox):
    canary = sandbox / "CANARY"
    module = rename(tiny_model("x", layer_names={"spx.dense": python_payload(canary)}), python_payload(canary))
    path = emit_numpy(module, sandbox / "work" / "n")
    text = path.read_text()
    assert "os.system" not in text and str(canary) not in text
    spec = importlib.util.spec_from_file_location(path.stem, path)  # finding 11: no sys.modules entry needed
    standalone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standalone)
    assert not canary.exists() and path.stem not in sys.modules
    np.testing.assert_array_equal(standalone.predict(inputs(module)), load_numpy(module).predict(inputs(module)))


@pytest.mark.parametrize("name", ["std", "NULL", "INFINITY", "config1", *(pytest.param(n, marks=pytest.mark.slow)
                                  for n in ("ap_fixed", "uint8_t", "EOF", "main", "x", "spx_run"))])
def test_names_of_cxx_identifiers_compile_and_simulate(sandbox, name):
    module = tiny_model(name, layer_names={"spx.dense": name, "spx.activation": "nnet"})
    np.testing.assert_array_equal(csim.load(module).predict(inputs(module)), load_numpy(module).predict(inputs(module)))


# ---------------------------------------------------------------- 3. nothing written outside the output dir


@pytest.mark.parametrize("name", ["/ABS/x", "../../x", "..", "a/b", "x\0y", ".hidden", "-rf"])
def test_function_names_never_become_paths(sandbox, capsys, name):
    work = sandbox / "work"
    name = name.replace("/ABS", str(sandbox))
    (work / "m.mlir").write_text(print_module(rename(tiny_model(), name.replace("\0", "_"))))
    before = snapshot(sandbox, skip=[work / "out", sandbox / "cache"])
    assert cli(capsys, "compile", work / "m.mlir", "-o", work / "out")[0] == 0
    assert snapshot(sandbox, skip=[work / "out", sandbox / "cache"]) == before
    stems = {p.stem for p in (work / "out" / "numpy").iterdir()}
    assert len(stems) == 1 and safe_identifier(stems.pop()) is not None


@pytest.mark.parametrize("entry", ["model.mlir", "spx_project.json", "numpy", "vitis"])
def test_symlinks_in_a_project_are_replaced_never_followed(sandbox, capsys, entry):
    work = sandbox / "work"
    (work / "m.mlir").write_text(print_module(tiny_model()))
    assert cli(capsys, "compile", work / "m.mlir", "-o", work / "out")[0] == 0
    victim = sandbox / "victim"
    victim.mkdir()
    (victim / "tiny.py").write_text("precious")
    (victim / "spx_project.json").write_text("precious")
    target = work / "out" / entry
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(victim if entry in ("numpy", "vitis") else victim / "spx_project.json")
    before = snapshot(victim)
    code, _ = cli(capsys, "compile", work / "m.mlir", "-o", work / "out")
    assert snapshot(victim) == before
    if code == 0:
        assert not target.is_symlink() and spx_api.open_project(work / "out").predict(inputs(tiny_model())).shape == (16, 3)


def test_a_garbage_marker_is_not_a_project(sandbox, capsys):
    out = sandbox / "work" / "out"
    out.mkdir()
    (out / "spx_project.json").write_text("garbage")
    (out / "mine.txt").write_text("keep")
    (sandbox / "work" / "m.mlir").write_text(print_module(tiny_model()))
    code, err = cli(capsys, "compile", sandbox / "work" / "m.mlir", "-o", out)
    assert code == 1 and "not an spx project" in err
    code, err = cli(capsys, "predict", out, sandbox / "work" / "m.mlir", "-o", sandbox / "y.npy")
    assert code == 1 and "not an spx project" in err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "spx_project.json"]


# ---------------------------------------------------------------- 5. damaged or unusable cache


@pytest.mark.parametrize("damage", ["truncate", pytest.param("empty", marks=pytest.mark.slow),
                                    pytest.param("manifest", marks=pytest.mark.slow)])
def test_a_damaged_cache_entry_is_rebuilt(sandbox, damage):
    work = sandbox / "work"
    module = tiny_model("dmg")
    spx_api.CompiledModel(module).write(work / "p", targets=["numpy"])
    np.save(work / "x.npy", inputs(module))
    assert run_spx(["predict", work / "p", work / "x.npy", "-o", work / "y0.npy", "--backend", "csim"],
                   sandbox / "cache").returncode == 0
    (lib,) = (sandbox / "cache").rglob(csim.LIBRARY_NAME)
    if damage == "truncate":
        lib.write_bytes(lib.read_bytes()[: lib.stat().st_size // 2])
    elif damage == "empty":
        lib.write_bytes(b"")
    else:
        (lib.parent / cache.MANIFEST).write_text("{not json")
    result = run_spx(["predict", work / "p", work / "x.npy", "-o", work / "y1.npy", "--backend", "csim"], sandbox / "cache")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    np.testing.assert_array_equal(np.load(work / "y1.npy"), np.load(work / "y0.npy"))


def test_cache_entries_validate_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "c"))
    builds = []

    def build(d):
        builds.append(d)
        (d / "a").write_bytes(b"artifact")

    first = cache.entry("t", {"k": 1}, build)
    assert cache.entry("t", {"k": 1}, build) == first and len(builds) == 1
    damages = [lambda: (first / "a").write_bytes(b"artifacX"), lambda: (first / "a").write_bytes(b""),
               lambda: (first / "a").unlink(), lambda: (first / cache.MANIFEST).write_text("{not json"),
               lambda: (first / cache.MANIFEST).write_text('{"key": "other", "files": {}}')]
    for k, damage in enumerate(damages, 2):
        damage()
        assert cache.entry("t", {"k": 1}, build) == first and len(builds) == k
        assert (first / "a").read_bytes() == b"artifact"
    with pytest.raises(RuntimeError):
        cache.entry("t", {"k": 2}, lambda d: (_ for _ in ()).throw(RuntimeError("boom")))
    assert sorted(p.name for p in (tmp_path / "c" / "t").iterdir() if not p.name.endswith(".lock")) == [first.name]
    assert stat.S_IMODE(first.stat().st_mode) == 0o755


def test_a_populated_cache_is_only_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "c"))
    module = tiny_model("ro")
    expected = csim.load(module).predict(inputs(module))
    before = snapshot(tmp_path / "c")
    monkeypatch.setattr(cache, "_usable", lambda root: False)  # as if read-only: any build would fall back
    np.testing.assert_array_equal(csim.load(module).predict(inputs(module)), expected)
    assert snapshot(tmp_path / "c") == before and capsys.readouterr().err == ""


def test_an_unusable_cache_falls_back_with_one_warning(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("SPX_CACHE", str(tmp_path / "file" / "cache"))
    monkeypatch.setattr(cache, "_fallback_root", None)
    module = tiny_model("fb")
    np.save(tmp_path / "x.npy", inputs(module))
    spx_api.CompiledModel(module).write(tmp_path / "p", targets=["numpy"])
    result = run_spx(["predict", tmp_path / "p", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--backend", "csim"],
                     tmp_path / "file" / "cache")
    assert result.returncode == 0 and len(result.stderr.splitlines()) == 1 and "warning: cache" in result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), load_numpy(module).predict(inputs(module)))


# ---------------------------------------------------------------- 7. malformed input: one line


def test_malformed_inputs_are_one_line_errors(sandbox, capsys):
    work = sandbox / "work"
    good = print_module(tiny_model())
    (work / "latin1.mlir").write_bytes(good.encode() + b"\xff\xfe")
    (work / "deep.mlir").write_text("builtin.module attributes {a = " + "[" * 20000 + "]" * 20000 + "} {}")
    (work / "big.mlir").write_text(print_module(tiny_model(sparse=True)).replace("n_max = 3 : i64", "n_max = 99999999999999999999 : i64"))
    (work / "empty.npy").write_bytes(b"")
    np.save(work / "x.npy", np.zeros((2, 6)))
    data = (work / "x.npy").read_bytes()
    assert b"(2, 6), }" in data
    (work / "huge.npy").write_bytes(data.replace(b"(2, 6), }", b"(9999,6)}"))  # same header length
    for f in ("latin1", "deep", "big"):
        code, err = cli(capsys, "compile", work / f"{f}.mlir", "-o", work / f"o_{f}")
        assert code == 1 and f"{f}.mlir" in err, err
        assert spx_opt([str(work / f"{f}.mlir")]) == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1
    code, err = cli(capsys, "opt", work / "latin1.mlir")
    assert code == 1
    (work / "m.mlir").write_text(good)
    assert spx_opt([str(work / "m.mlir"), "-o", str(work)]) == 1 and "is a directory" in capsys.readouterr().err
    assert cli(capsys, "compile", work / "m.mlir", "-o", work / "p", "--targets", "numpy")[0] == 0
    for f in ("empty", "huge"):
        code, err = cli(capsys, "predict", work / "p", work / f"{f}.npy", "-o", work / "y.npy")
        assert code == 1 and err.startswith(str(work / f"{f}.npy")), err
    assert not (work / "y.npy").exists()


def test_a_nan_weight_in_a_keras_model_is_one_line(sandbox, capsys):
    import frontends.keras as fk

    model = fk.mnist_model(n_max=4, bits=8)
    layer = next(layer for layer in model.layers if layer.get_weights())
    weights = layer.get_weights()
    weights[0][(0,) * weights[0].ndim] = np.nan
    layer.set_weights(weights)
    model.save(sandbox / "work" / "nan.keras")
    capsys.readouterr()
    code, err = cli(capsys, "compile", sandbox / "work" / "nan.keras", "-o", sandbox / "work" / "o")
    assert code == 1 and "NaN" in err and layer.name in err


# ---------------------------------------------------------------- 8. one line on every path


def test_argparse_errors_are_one_line_exit_1(capsys):
    for argv in ([], ["compile"], ["bogus"], ["predict", "a"], ["compile", "m", "-o", "x", "--nope"]):
        code, err = cli(capsys, *argv)
        assert code == 1 and "error:" in err, argv
    assert spx_opt(["--nope"]) == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_model_errors_are_not_blamed_on_the_input(sandbox, capsys):
    work = sandbox / "work"
    (work / "m.mlir").write_text(print_module(tiny_model()))
    assert cli(capsys, "compile", work / "m.mlir", "-o", work / "p", "--targets", "numpy")[0] == 0
    np.save(work / "x.npy", np.zeros((2, 6)))
    (work / "p" / "model.mlir").write_text("garbage")
    code, err = cli(capsys, "predict", work / "p", work / "x.npy", "-o", work / "y.npy")
    assert code == 1 and "model.mlir" in err and "x.npy" not in err
    np.save(work / "bad.npy", np.zeros((2, 7)))
    (work / "p" / "model.mlir").write_text(print_module(tiny_model()))
    code, err = cli(capsys, "predict", work / "p", work / "bad.npy", "-o", work / "y.npy")
    assert code == 1 and err.startswith(str(work / "bad.npy"))


def test_keras_compile_prints_nothing_but_its_result(sandbox, capsys):
    import frontends.keras as fk

    work = sandbox / "work"
    fk.mnist_model(n_max=4, bits=8).save(work / "m.keras")
    (work / "broken.keras").write_bytes((work / "m.keras").read_bytes()[:2000])
    ok = run_spx(["compile", work / "m.keras", "-o", work / "p", "--targets", "numpy"], sandbox / "cache")
    assert ok.returncode == 0 and ok.stderr == "" and ok.stdout.count("\n") == 1, ok.stderr
    capsys.readouterr()
    code, err = cli(capsys, "compile", work / "broken.keras", "-o", work / "q")
    assert code == 1 and len(err) < 300 and str(work / "broken.keras") in err, err
    assert not (work / "q").exists()


# ---------------------------------------------------------------- 9. no half projects


class _FailingTarget:
    name = "failing"

    def emit(self, module, out_dir):
        (Path(out_dir) / "partial.txt").write_text("half")
        raise SpxError("error: failing target: refused")


def test_a_failed_compile_changes_nothing(sandbox, capsys, monkeypatch):
    from codegen import registry

    monkeypatch.setitem(registry._targets, "failing", _FailingTarget())
    registry.available_targets()
    monkeypatch.setitem(registry._targets, "failing", _FailingTarget())
    work = sandbox / "work"
    (work / "m.mlir").write_text(print_module(tiny_model()))
    code, err = cli(capsys, "compile", work / "m.mlir", "-o", work / "new", "--targets", "numpy,failing")
    assert code == 1 and "failing target" in err and not (work / "new").exists()
    assert cli(capsys, "compile", work / "m.mlir", "-o", work / "p", "--targets", "numpy")[0] == 0
    before = snapshot(work / "p")
    (work / "m2.mlir").write_text(print_module(tiny_model(seed=7)))
    assert cli(capsys, "compile", work / "m2.mlir", "-o", work / "p", "--targets", "numpy,failing")[0] == 1
    assert snapshot(work / "p") == before
    assert cli(capsys, "compile", work / "m2.mlir", "-o", work / "p", "--targets", "numpy")[0] == 0  # retry works
    assert sorted(p.name for p in (work / "p").iterdir()) == ["model.mlir", "numpy", "spx_project.json"]


# ---------------------------------------------------------------- 10. bounded memory in csim


def test_csim_converts_inputs_in_chunks(sandbox):
    module = tiny_model("mem", sparse=True)
    sim = csim.load(module)
    x = np.zeros((40000, 4, 4, 1))
    x[:, 0, 0, 0] = 0.5  # 5 MB of float64 input; converting all at once needs > 10 MB more
    tracemalloc.start()
    try:
        y = sim.predict_raw(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000 + y.nbytes, peak  # outputs plus a few chunks
    np.testing.assert_array_equal(y[:5], load_numpy(module).predict_raw(x[:5]))


# ---------------------------------------------------------------- 11. smaller items


def test_generated_files_are_world_readable(sandbox):
    out = spx_api.CompiledModel(tiny_model()).write(sandbox / "work" / "p")
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert all(m == (0o755 if (out / p).is_dir() else 0o644) for p, m in modes.items()), modes


@pytest.mark.parametrize("name", ["numpy", "dataclasses", "typing", "logging"])
def test_a_model_named_like_a_module_is_importable(sandbox, name):
    out = sandbox / "work"
    path = emit_numpy(rename(tiny_model(), name), out)
    assert path.stem != name
    np.save(out / "x.npy", inputs(tiny_model()))
    code = f"import numpy as np, {path.stem} as m; print(m.predict(np.load('x.npy')).shape)"
    result = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "(16, 3)", result.stderr


def test_profile_option_takes_a_path(sandbox, capsys):
    module = tiny_model("prof")
    (sandbox / "work" / "data").mkdir()
    np.save(sandbox / "work" / "data" / "x.npy", inputs(module))
    (sandbox / "work" / "m.mlir").write_text(print_module(module))
    assert spx_opt([str(sandbox / "work" / "m.mlir"), "-p", f"spx-fixed-point{{profile={sandbox}/work/data/x.npy}}"]) == 0


def test_layer_names_that_are_not_utf8_text(sandbox, capsys):
    text = print_module(tiny_model(layer_names={"spx.dense": "PLACEHOLDER"})).replace("PLACEHOLDER", "\\FF\\C3")
    (sandbox / "work" / "m.mlir").write_text(text)
    assert cli(capsys, "compile", sandbox / "work" / "m.mlir", "-o", sandbox / "work" / "p")[0] == 0
    trace = spx_api.open_project(sandbox / "work" / "p").trace(inputs(tiny_model()))
    assert "\\xff\\xc3" in trace


# ---------------------------------------------------------------- registries under threads (issue 14 notes)


@pytest.mark.parametrize("registry,loader", [("codegen.registry", "available_targets"),
                                             ("passes.registry", "available_passes")])
def test_the_first_registry_lookup_is_thread_safe(monkeypatch, registry, loader):
    """Threads that ask while the first caller is still importing the built-ins get the full registry."""
    import importlib
    import threading
    import time

    mod = importlib.import_module(registry)
    everything = getattr(mod, loader)()
    table = "_targets" if registry == "codegen.registry" else "_registry"
    monkeypatch.setattr(mod, table, {})
    monkeypatch.setattr(mod, "_loaded", False)

    class SlowImport:  # the window in which a second caller used to see an empty registry
        @staticmethod
        def import_module(name):
            time.sleep(0.05)
            module = importlib.import_module(name)
            for obj in vars(module).values():  # pass modules register on first import only: redo it
                if registry == "passes.registry" and isinstance(obj, type) and obj in everything.values():
                    mod.register_pass(obj)
            return module

    monkeypatch.setattr(mod, "importlib", SlowImport)
    start = threading.Barrier(6)

    def ask(_):
        start.wait()
        return sorted(getattr(mod, loader)())

    with ThreadPoolExecutor(6) as pool:
        seen = list(pool.map(ask, range(6)))
    final = sorted(getattr(mod, loader)())  # the built-ins (passes other tests registered are gone)
    assert {"numpy", "vitis", "canonicalize", "spx-fixed-point"} & set(final)
    assert all(s == final for s in seen), seen
