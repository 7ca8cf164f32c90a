"""The five MNIST notebooks run top to bottom (quick mode) and leave what they promise."""

from __future__ import annotations

import json

import nbformat
import pytest

from digitlab import paths
from digitlab.pipeline.notebooks import execute_notebook

NOTEBOOKS = ("mnist_01_exploration", "mnist_02_first_cnn", "mnist_03_numpy_softmax",
             "mnist_04_variants", "mnist_05_cnn_project")
QUICK = {"quick": True, "source": "embedded"}


def run(name, root, **extra):
    return execute_notebook(name, {**QUICK, **extra}, output_dir=root / "executed",
                            progress=False)


def metrics(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_stored_without_outputs_and_paired(name):
    nb = nbformat.read(paths.notebooks_dir() / f"{name}.ipynb", as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "quick = False" in code[0].source
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert (paths.notebooks_dir() / f"{name}.py").exists()


@pytest.mark.slow
def test_exploration_notebook(project_root):
    run("mnist_01_exploration", project_root)
    out = project_root / "results" / "mnist" / "exploration"
    saved = metrics(out / "exploration.json")
    assert saved["data"]["source"] == "embedded"
    assert saved["metrics"]["batch_shape"] == [16, 1, 28, 28]
    assert all((out / f).stat().st_size > 0 for f in ("digits_grid.png", "one_batch.png"))


@pytest.mark.slow
def test_first_cnn_notebook_saves_a_checkpoint_that_reloads(project_root):
    run("mnist_02_first_cnn", project_root, threads=1)
    saved = metrics(project_root / "results" / "mnist" / "first_cnn" / "metrics.json")["metrics"]
    assert saved["chosen"] in ("cnn2", "cnn3") and saved["reload_same_predictions"] is True
    assert (project_root / "models" / "mnist_first_cnn.pt").exists()


@pytest.mark.slow
def test_numpy_notebook(project_root):
    run("mnist_03_numpy_softmax", project_root)
    out = project_root / "results" / "mnist" / "numpy"
    saved = metrics(out / "metrics.json")["metrics"]
    assert saved["softmax_regression"]["test_accuracy"] > 0.5  # chance is 0.1
    assert (out / "softmax_weights.png").exists()


@pytest.mark.slow
def test_variants_notebook_saves_every_run(project_root):
    run("mnist_04_variants", project_root, threads=1)
    out = project_root / "results" / "mnist" / "variants"
    assert len(list((out / "runs").glob("*.json"))) == 12
    summary = metrics(out / "summary.json")["metrics"]
    assert len(summary["runs"]) == 12
    assert {run["epochs_to_converge"] for run in summary["runs"]} <= {1, 2}


@pytest.mark.slow
def test_cnn_project_notebook_writes_the_report(project_root):
    run("mnist_05_cnn_project", project_root, threads=1, candidates=["cnn2", "cnn3"])
    results = project_root / "results" / "mnist"
    saved = metrics(results / "project" / "metrics.json")["metrics"]
    report = (results / "report.md").read_text()
    assert f"{saved['test_accuracy']:.4f}" in report
    assert saved["chosen_architecture"] in ("cnn2", "cnn3")
    assert len(saved["test"]["per_class"]) == 10
    for link in ("project/confusion_matrix.png", "project/filters.png", "project/feature_maps.png"):
        assert f"]({link})" in report and (results / link).exists()
