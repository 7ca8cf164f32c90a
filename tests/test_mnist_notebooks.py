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
def test_notebooks_take_quick_as_a_parameter_and_are_paired(name):
    # Cell sources only: a copy saved from JupyterLab with its outputs passes too
    # (tests/test_notebook_hygiene.py checks the pairing cell by cell).
    nb = nbformat.read(paths.notebooks_dir() / f"{name}.ipynb", as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
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
    assert all((out / f).stat().st_size > 0
               for f in ("class_counts.png", "digits_grid.png", "mean_images.png", "one_batch.png"))


@pytest.mark.slow
def test_first_cnn_notebook_saves_the_checkpoint_it_reports(project_root):
    from notebook_cells import notebook_definitions

    from digitlab.data.transforms import as_tensors

    # Widths other than the defaults: the notebook's own classes are trained, and the saved
    # state dict must rebuild the chosen one in the notebook's class, by name and widths.
    channels = {"cnn2": [4, 8], "cnn3": [4, 8, 16]}
    executed = run("mnist_02_first_cnn", project_root, threads=1,
                   cnn2_channels=channels["cnn2"], cnn3_channels=channels["cnn3"])
    document = metrics(project_root / "results" / "mnist" / "first_cnn" / "metrics.json")
    saved = document["metrics"]
    assert saved["chosen"] == max(("cnn2", "cnn3"), key=lambda a: saved[a]["val_acc"])
    for name in ("cnn2", "cnn3"):  # each network keeps its last epoch's weights, as documented
        assert saved[name]["val_acc"] == document["histories"][name]["val_acc"][-1]
    # Reloaded here, the weights must score the validation digits exactly as reported.
    checkpoint = torch.load(project_root / "models" / "mnist_first_cnn.pt", weights_only=True)
    assert checkpoint["arch"] == saved["chosen"] and checkpoint["data"]["n_val"] == 200
    assert checkpoint["channels"] == channels[saved["chosen"]]
    classes = notebook_definitions("mnist_02_first_cnn")
    model = classes[saved["chosen"].upper()](checkpoint["channels"])
    model.load_state_dict(checkpoint["state_dict"])
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == channels[saved["chosen"]]
    _, (images, labels), _ = embedded(n_val=200)
    x, y = as_tensors(images, labels)
    with torch.no_grad():
        accuracy = (model.eval()(x).argmax(1) == y).double().mean().item()
    assert accuracy == pytest.approx(saved[saved["chosen"]]["val_acc"], abs=1e-6)
    assert checkpoint["val_acc"] == saved[saved["chosen"]]["val_acc"]
    assert "identical logits: True" in outputs_text(executed)


@pytest.mark.slow
def test_first_cnn_notebook_trains_a_students_edited_layers(project_root, tmp_path,
                                                            monkeypatch):
    # A student puts a hidden layer before cnn2's output: the notebook must train and save
    # the edited network, with nothing in it insisting on the package's layers.
    import jupytext

    source = (paths.notebooks_dir() / "mnist_02_first_cnn.py").read_text()
    edited = source.replace("        self.fc = nn.Linear(c2 * 7 * 7, 10)",
                            "        self.fc = nn.Sequential(nn.Linear(c2 * 7 * 7, 16), "
                            "nn.ReLU(), nn.Linear(16, 10))")
    assert edited != source
    folder = tmp_path / "notebooks"
    folder.mkdir()
    jupytext.write(jupytext.reads(edited, fmt="py:percent"), folder / "mnist_02_first_cnn.ipynb")
    monkeypatch.setattr(paths, "notebooks_dir", lambda: folder)
    executed = run("mnist_02_first_cnn", project_root, threads=1, cnn2_channels=[4, 8],
                   cnn3_channels=[4, 8, 16])
    saved = metrics(project_root / "results" / "mnist" / "first_cnn" / "metrics.json")
    # conv 1->4 and 4->8 (3x3, with biases), then 8*7*7 -> 16 -> 10: the edited layers.
    edited_parameters = (4 * 9 + 4) + (8 * 4 * 9 + 8) + (8 * 49 * 16 + 16) + (16 * 10 + 10)
    assert saved["metrics"]["cnn2"]["parameters"] == edited_parameters
    assert len(saved["histories"]["cnn2"]["val_acc"]) == 1  # trained: one quick epoch
    assert "identical logits: True" in outputs_text(executed)


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
    out = project_root / "results" / "mnist" / "variants"
    # A run file left by a variant since renamed must not be read as one of this run's.
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "renamed-variant_sgd.json").write_text("{}")
    run("mnist_04_variants", project_root, threads=1)
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
    # A second run of the same code reads every stored run back (it once crashed there) and
    # says so; fresh=True trains them again.
    again = run("mnist_04_variants", project_root, threads=1)
    assert "12 of 12 runs reused" in outputs_text(again)
    assert metrics(out / "summary.json")["metrics"] == summary
    fresh = run("mnist_04_variants", project_root, threads=1, fresh=True)
    assert "0 of 12 runs reused" in outputs_text(fresh)


def outputs_text(executed) -> str:
    """Everything the executed notebook's cells printed."""
    nb = nbformat.read(executed, as_version=4)
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))


def notebook_namespace(name, *defines, **parameters):
    """The names left by running, alone, the code cells of notebook ``name`` that define
    ``defines``, given the notebook parameters those cells read."""
    import jupytext
    from torch import nn

    namespace = {"nn": nn, "torch": torch, **parameters}
    for cell in jupytext.read(paths.notebooks_dir() / f"{name}.py").cells:
        if cell.cell_type == "code" and any(f"def {f}(" in cell.source for f in defines):
            exec(cell.source, namespace)
    return namespace


def test_the_variants_notebook_and_the_package_build_the_same_networks():
    # The notebook defines the variants' network and the package's cnn2 builds it for
    # scripts: the same layers, the same weight names and shapes, the same function.
    from digitlab.mnist.networks import build_cnn
    from digitlab.mnist.variants import variant_options

    cells = notebook_namespace("mnist_04_variants", "make_variant", dropout=0.3,
                               widths=[8, 16], hidden=128)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for variant, switches in cells["VARIANTS"].items():
        ours = cells["make_variant"](**switches, widths=(8, 16), hidden=128)
        package = build_cnn("cnn2", **variant_options(variant, channels=(8, 16)))
        assert [type(m).__name__ for m in ours.modules()] == \
            [type(m).__name__ for m in package.modules()], variant
        assert [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)] == \
            [m.p for m in package.modules() if isinstance(m, torch.nn.Dropout)], variant
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in package.state_dict().items()}, variant
        package.load_state_dict(ours.state_dict())
        with torch.no_grad():
            assert torch.allclose(ours.eval()(x), package.eval()(x), atol=1e-6), variant


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
    for link in ("project/confusion_matrix.png", "project/filters.png", "project/feature_maps.png",
                 "project/augmentation.png", "project/misclassified.png"):
        assert f"]({link})" in report and (results / link).exists()
    # Every figure the notebook saved is shown in it, one image per PNG file.
    executed = nbformat.read(project_root / "executed" / "mnist_05_cnn_project.ipynb",
                             as_version=4)
    shown = [output for cell in executed.cells if cell.cell_type == "code"
             for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(shown) == len(list((results / "project").glob("*.png"))) == 6
