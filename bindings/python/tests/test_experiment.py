"""bpnet.experiment.bn_mnist: the CLI's study from Python (a tiny run)."""

import json

import bpnet


def test_bn_mnist_quick_returns_results_and_writes_the_report(tmp_path):
    out = tmp_path / "exp"
    res = bpnet.experiment.bn_mnist(quick=True, out=out, steps=60, eval_every=30, train_limit=600, test_limit=300)
    assert res.study == "paper"
    nets = res.summary["networks"]
    assert len(nets) == 2 and all(0.0 <= n["final_accuracy"] <= 1.0 for n in nets)
    assert res.report.exists() and (out / "paper_curves.csv").exists()
    saved = json.loads((out / "results.json").read_text())
    assert "paper" in json.dumps(saved)
