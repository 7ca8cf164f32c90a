"""The five MNIST notebooks run top to bottom (quick mode) and leave what they promise."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import torch

from digitlab import paths
from digitlab.pipeline.notebooks import execute_notebook
from digitlab.pipeline.published import PUBLISHED
from digitlab.pipeline.summary import ROWS, values

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


def embedded(n_train=None, n_val=None, n_test=None):
    """The embedded split the quick notebooks use (seed 0), cut as they cut it."""
    from digitlab.data.sources import load_embedded

    s = load_embedded(seed=0)
    return ((s.train_images[:n_train], s.train_labels[:n_train]),
            (s.val_images[:n_val], s.val_labels[:n_val]),
            (s.test_images[:n_test], s.test_labels[:n_test]))


@pytest.mark.slow
def test_exploration_notebook(project_root):
    run("mnist_01_exploration", project_root)
    out = project_root / "results" / "mnist" / "exploration"
    saved = metrics(out / "exploration.json")
    assert saved["data"]["source"] == "embedded"
    (images, labels), _, _ = embedded()
    m = saved["metrics"]
    assert m["train_class_counts"] == np.bincount(labels, minlength=10).tolist()
    assert m["pixel_mean"] == pytest.approx(images.mean() / 255, rel=1e-9)
    assert m["pixel_std"] == pytest.approx((images / 255).std(), rel=1e-9)
    assert m["batch_shape"] == [16, 1, 28, 28]
    assert all((out / f).stat().st_size > 0 for f in ("digits_grid.png", "one_batch.png"))


@pytest.mark.slow
def test_first_cnn_notebook_saves_the_checkpoint_it_reports(project_root):
    import digitlab.architectures  # noqa: F401  (the checkpoint names a CNN)
    from digitlab.data.transforms import as_tensors
    from digitlab.engine.checkpoint import load_checkpoint

    run("mnist_02_first_cnn", project_root, threads=1)
    saved = metrics(project_root / "results" / "mnist" / "first_cnn" / "metrics.json")["metrics"]
    assert saved["chosen"] == max(("cnn2", "cnn3"), key=lambda a: saved[a]["val_acc"])
    # Reloaded here, the checkpoint must score the validation digits exactly as reported.
    model, info = load_checkpoint(project_root / "models" / "mnist_first_cnn.pt")
    assert info["arch"] == saved["chosen"] and info["data"]["n_val"] == 200
    _, (images, labels), _ = embedded(n_val=200)
    x, y = as_tensors(images, labels)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).double().mean().item()
    assert accuracy == pytest.approx(saved[saved["chosen"]]["val_acc"], abs=1e-6)
    assert info["metrics"]["val_acc"] == saved[saved["chosen"]]["val_acc"]


@pytest.mark.slow
def test_numpy_notebook_reports_what_its_saved_weights_score(project_root):
    run("mnist_03_numpy_softmax", project_root)
    out = project_root / "results" / "mnist" / "numpy"
    saved = metrics(out / "metrics.json")["metrics"]
    weights = np.load(out / "weights.npz")
    _, _, (images, labels) = embedded(n_test=200)
    x = images.reshape(len(images), -1) / 255.0
    # The two models' forward passes, written out here.
    softmax = (x @ weights["softmax_W"].T + weights["softmax_b"]).argmax(1)
    hidden = np.maximum(x @ weights["mlp_W1"].T + weights["mlp_b1"], 0)
    mlp = (hidden @ weights["mlp_W2"].T + weights["mlp_b2"]).argmax(1)
    assert saved["softmax_regression"]["test_accuracy"] == pytest.approx(
        (softmax == labels).mean(), abs=1e-12)
    assert saved["mlp"]["test_accuracy"] == pytest.approx((mlp == labels).mean(), abs=1e-12)
    assert saved["softmax_regression"]["test_accuracy"] > 0.5  # chance is 0.1
    histories = metrics(out / "metrics.json")["histories"]
    for name in ("softmax_regression", "mlp"):
        kept = int(np.argmin(histories[name]["val_loss"]))  # the epoch early stopping keeps
        assert saved[name]["val_accuracy"] == histories[name]["val_acc"][kept]
        assert saved[name]["epochs_run"] == len(histories[name]["val_loss"])
    assert (out / "softmax_weights.png").exists()


def first_epoch_within(val_acc: list[float], tolerance: float = 0.005) -> int:
    best = max(val_acc)
    return next(epoch for epoch, acc in enumerate(val_acc, 1) if acc >= best - tolerance)


@pytest.mark.slow
def test_variants_notebook_summary_agrees_with_every_saved_run(project_root):
    run("mnist_04_variants", project_root, threads=1)
    out = project_root / "results" / "mnist" / "variants"
    runs = {}
    for path in (out / "runs").glob("*.json"):
        saved = metrics(path)
        runs[saved["metrics"]["run"]] = saved
    variants = ("plain", "dropout", "batch-norm", "dropout + batch-norm")
    optimizers = ("SGD", "Adam", "RMSprop")
    assert set(runs) == {f"{v} / {o}" for v in variants for o in optimizers}
    summary = metrics(out / "summary.json")["metrics"]
    rows = {row["run"]: row for row in summary["runs"]}
    best = {}
    for name, saved in runs.items():
        val_acc = saved["history"]["val_acc"]
        # Validation accuracy means the kept weights': those of the lowest validation loss.
        best[name] = val_acc[int(np.argmin(saved["history"]["val_loss"]))]
        assert rows[name]["val_accuracy"] == best[name], name
        assert rows[name]["epochs_to_converge"] == first_epoch_within(val_acc), name
    assert summary["best_run"] == max(best, key=best.get)
    for o in optimizers:
        mean = np.mean([best[f"{v} / {o}"] for v in variants])
        assert summary["mean_val_accuracy_by_optimizer"][o] == pytest.approx(mean, rel=1e-9)
    # The results table quotes the journal's published run by name beside ours: the name must
    # be one this study trains, and its rows must read that run's numbers.
    journal = PUBLISHED["variants_best"]["run"]
    quoted = [row for row in ROWS if row.file == "mnist/variants/summary.json"
              and journal in row.label]
    assert values(quoted, project_root / "results") == [
        f"{best[journal]:.2%}", str(first_epoch_within(runs[journal]["history"]["val_acc"]))]


@pytest.mark.slow
def test_cnn_project_notebook_writes_the_report(project_root):
    run("mnist_05_cnn_project", project_root, threads=1, candidates=["cnn2", "cnn3"])
    results = project_root / "results" / "mnist"
    saved = metrics(results / "project" / "metrics.json")["metrics"]
    report = (results / "report.md").read_text()
    assert f"{saved['test_accuracy']:.4f}" in report
    compared = {row["arch"]: row["val_accuracy"] for row in saved["comparison"]}
    assert set(compared) == {"cnn2", "cnn3"}
    assert saved["chosen_architecture"] == max(compared, key=compared.get)
    # Rows of the confusion matrix are the true digits of the 200 test images.
    _, _, (_, labels) = embedded(n_test=200)
    confusion = np.array(saved["test"]["confusion_matrix"])
    assert confusion.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()
    assert saved["test_accuracy"] == pytest.approx(np.trace(confusion) / len(labels))
    assert [saved["test"]["per_class"][str(d)]["support"] for d in range(10)] == \
        np.bincount(labels, minlength=10).tolist()
    for link in ("project/confusion_matrix.png", "project/filters.png", "project/feature_maps.png"):
        assert f"]({link})" in report and (results / link).exists()
