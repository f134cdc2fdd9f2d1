"""`spx demo` end to end (quick mode) and its metric helpers."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from argparse import Namespace  # noqa: E402

import numpy as np  # noqa: E402

from spx.demo import auc_one_vs_rest, class_scores, main  # noqa: E402


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 2)  # ties included
    labels = rng.integers(0, 3, 200)
    for c in range(3):
        pos, neg = scores[labels == c], scores[labels != c]
        pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
        assert abs(auc_one_vs_rest(scores, labels, c) - pairwise) < 1e-12
    assert class_scores(np.array([[0.25], [0.75]]), 2).tolist() == [[0.75, 0.25], [0.25, 0.75]]


def test_quick_demo_compiles_simulates_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(Namespace(dataset="mnist", out=str(out), quick=True)) == 0
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| sparse-l")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "16" and cells[2] == "20" and cells[-1] == "0"  # 0 C-simulation mismatches
    assert int(cells[5]) > 0 and float(cells[3]) > 0.3  # estimated latency; better than chance
    for png in ("accuracy_vs_n.png", "latency_resources.png", "per_layer.png"):
        assert (out / png).stat().st_size > 5000
    assert (out / "sparse_l_16b" / "vitis" / "build_prj.tcl").is_file()
    assert "source=estimate" in capsys.readouterr().out
