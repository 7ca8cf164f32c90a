"""Slides for the CNN project's talk, ``results/mnist/slides.pdf``, drawn from the same
numbers and figures as the written report.

:func:`build_slides` turns ``results/mnist/project/metrics.json`` (written by the
notebook ``mnist_05_cnn_project``) into ten :class:`Slide` objects: the question, the
data, preprocessing, the network, training, the results table, the confusion matrix,
filters and feature maps, typical mistakes, conclusions. Every number on them is read
from that file and every picture is a PNG the notebook saved; nothing is typed.
:func:`write_slides` draws one 16:9 page per slide with Matplotlib into one PDF.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D

from digitlab.data.transforms import MNIST_MEAN, MNIST_STD
from digitlab.errors import UserError
from digitlab.repro import atomic_target

COMMAND = "make mnist"  # runs the notebook that writes the metrics and figures
WIDTH, HEIGHT = 13.333, 7.5  # inches: 16:9


@dataclass
class Slide:
    title: str
    lines: list[str] = field(default_factory=list)  # sentences, one bullet each
    images: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG)
    table: tuple[list[str], list[list[str]]] | None = None  # (header, rows)
    code: list[str] = field(default_factory=list)  # monospace lines (the layer list)


def load_metrics(path: Path) -> dict:
    """The project's ``metrics.json``; one sentence naming the fix if it is missing or bad."""
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `{COMMAND}` (its CNN project notebook "
                        "writes it) before making the slides.")
    try:
        document = json.loads(path.read_text())
        document["metrics"]["test"]["confusion_matrix"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{path} is not the CNN project's metrics file ({type(err).__name__}: "
                        f"{err}); regenerate it with `{COMMAND}`.") from None
    return document


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _run_rows(records: list[dict]) -> list[list[str]]:
    return [[r["run"], f"{r['parameters']:,}", _pct(r["val_accuracy"]),
             str(r["epochs_to_converge"]), f"{r['train_seconds']:.1f}"] for r in records]


def _layer(module) -> str:
    """A short name for one layer: its type and the sizes that matter."""
    from torch import nn

    name = type(module).__name__
    if isinstance(module, nn.Conv2d):
        return f"{name} {module.in_channels} -> {module.out_channels}, " \
               f"{module.kernel_size[0]}x{module.kernel_size[1]}"
    if isinstance(module, nn.Linear):
        return f"{name} {module.in_features} -> {module.out_features}"
    if isinstance(module, nn.BatchNorm2d):
        return f"{name} {module.num_features}"
    if isinstance(module, nn.MaxPool2d):
        return f"{name} {module.kernel_size}"
    if isinstance(module, nn.Dropout):
        return f"{name} p={module.p:g}"
    return name


def layer_lines(arch: str, model_kwargs: dict) -> list[str]:
    """One line per layer of the network ``arch`` with its number of parameters."""
    from digitlab.mnist.networks import build_cnn

    try:
        model = build_cnn(arch, **model_kwargs)
    except UserError as err:
        return [str(err)]
    leaves = [m for m in model.modules() if not list(m.children())]
    return [f"{_layer(m):<28}{sum(p.numel() for p in m.parameters()):>9,}" for m in leaves]


def confusions(matrix: np.ndarray, k: int = 3) -> list[tuple[int, int, int]]:
    """The ``k`` most frequent (true, predicted, count) mistakes, most frequent first."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    pairs = [(*np.unravel_index(i, off.shape), off.flat[i]) for i in order]
    return [(int(t), int(p), int(n)) for t, p, n in pairs if n > 0]


def build_slides(document: dict, project_dir: Path) -> list[Slide]:
    """The ten slides of the talk from the project's metrics and figures."""
    m, data, config = document["metrics"], document["data"], document["run"]["config"]
    recipe, test = config["recipe"], m["test"]
    matrix = np.asarray(test["confusion_matrix"])
    candidates = [r["run"] for r in m["comparison"]]
    chosen, final = m["chosen_architecture"], m["final_model"]
    by_name = {r["run"]: r for r in m["comparison"] + m["augmentation"]}
    augmented = next(r for r in m["augmentation"] if r["augment"])
    exploration = project_dir.parent / "exploration"
    wrong = int(matrix.sum() - np.trace(matrix))
    worst = sorted(test["per_class"].items(), key=lambda item: item[1]["recall"])[:3]
    mistakes = [f"true {t} read as {p}: {n} time{'s' * (n != 1)}"
                for t, p, n in confusions(matrix)]
    aug = recipe["augment_params"]
    accuracy = (f"Test accuracy of the final model, {final}: {_pct(test['accuracy'])} on "
                f"{test['n']:,} images (macro F1 {test['macro_f1']:.3f}).")
    quick = (["Quick run on tiny data: the numbers only show that the pipeline works."]
             if config.get("quick") else [])
    return [
        Slide("Recognising handwritten digits with a CNN", [
            "The question: which convolutional network, trained how, recognises handwritten "
            "digits best, judged on digits it has never seen?",
            f"Candidates: {', '.join(candidates)}; chosen on validation digits only, tested "
            "once at the end.",
            "Every number in these slides is read from results/mnist/project/metrics.json.",
            *quick]),
        Slide("The data", [
            f"{data['description']} (source: {data['source']}).",
            f"{data['n_train']:,} training, {data['n_val']:,} validation and "
            f"{data['n_test']:,} test images of 28 x 28 grey levels.",
            "Validation digits choose the model; the test digits are used once.",
        ], images=[("Training digits with their labels", exploration / "digits_grid.png")]),
        Slide("Preprocessing", [
            f"Pixels scaled to [0, 1], then normalised with the MNIST mean {MNIST_MEAN} and "
            f"standard deviation {MNIST_STD}.",
            "Labels stay class indices for the cross-entropy loss; one-hot vectors only where "
            "a loss compares probability vectors.",
            f"Augmentation, when on: random rotations up to {aug['degrees']:g} degrees, shifts "
            f"up to {aug['translate']:.0%} of the size, scaling {aug['scale'][0]:g} to "
            f"{aug['scale'][1]:g}, drawn anew for every batch.",
        ], images=[("One shuffled mini-batch (normalised)", exploration / "one_batch.png")]),
        Slide(f"The network: {chosen}", [
            f"Chosen on validation accuracy among {', '.join(candidates)}.",
            f"{by_name[chosen]['parameters']:,} trainable parameters; "
            f"input 1 x 28 x 28, output 10 logits.",
        ], code=layer_lines(by_name[chosen]["arch"], recipe.get("model_kwargs", {}))),
        Slide("Training", [
            f"The same recipe for every candidate: {recipe['optimizer']} with a "
            f"{recipe['schedule']} schedule, peak learning rate {recipe['learning_rate']:g}, "
            f"batch {recipe['batch_size']}, {recipe['epochs']} epoch(s).",
            "Cross-entropy loss; the weights of the lowest validation loss are kept.",
        ], images=[("Training (dashed) and validation (solid) curves",
                    project_dir / "architectures_learning_curves.png")]),
        Slide("Results", [
            f"Chosen on validation: {chosen}; final model after the augmentation test: "
            f"{final}.",
            accuracy,
        ], table=(["run", "parameters", "validation accuracy", "epochs to converge",
                   "training s"], _run_rows(m["comparison"] + [augmented]))),
        Slide("Confusion matrix (test set)", [
            f"Macro precision {test['macro_precision']:.3f}, recall "
            f"{test['macro_recall']:.3f}, F1 {test['macro_f1']:.3f}.",
            "Lowest recall: " + "; ".join(f"digit {d} {_pct(row['recall'])}"
                                         for d, row in worst) + ".",
        ], images=[("Rows: true digit; columns: predicted digit",
                    project_dir / "confusion_matrix.png")]),
        Slide("Filters and feature maps", [
            "First-layer filters: red positive, blue negative weights; they respond to "
            "strokes and edges.",
            "Feature maps of one test digit: early layers keep full resolution, later ones "
            "respond to larger parts of the digit at lower resolution.",
        ], images=[("First-layer filters", project_dir / "filters.png"),
                   ("Feature maps of one test digit", project_dir / "feature_maps.png")]),
        Slide("Typical mistakes", [
            f"{wrong:,} of {test['n']:,} test digits misclassified.",
            *(["Most frequent confusions: " + "; ".join(mistakes) + "."] if mistakes else []),
        ], images=[("The most confident mistakes", project_dir / "misclassified.png")]
            if wrong else []),
        Slide("Conclusions", [
            f"On validation, {chosen} was the best of {', '.join(candidates)} "
            f"({_pct(by_name[chosen]['val_accuracy'])}).",
            f"Augmentation {'helped' if final == augmented['run'] else 'did not help'} within "
            f"{recipe['epochs']} epoch(s): {_pct(augmented['val_accuracy'])} with, "
            f"{_pct(by_name[chosen]['val_accuracy'])} without.",
            accuracy,
            *([f"Most frequent confusion: {mistakes[0]}."] if mistakes else []),
            "The written report with every table: results/mnist/report.md.",
            *quick]),
    ]


def _text(fig: Figure, lines: list[str], x: float, top: float, width: float) -> float:
    """Bullets from ``top`` down, wrapped to ``width`` (a fraction of the page); returns
    where they end."""
    chars = max(20, int(width * WIDTH * 72 / 8.5))  # about 8.5 points per character at 15 pt
    y = top
    for line in lines:
        wrapped = textwrap.fill(line, chars)
        fig.text(x, y, "\u2022 " + wrapped.replace("\n", "\n   "), fontsize=15, va="top")
        y -= 0.045 * (wrapped.count("\n") + 1) + 0.02
    return y


def _aspect(path: Path) -> float:
    if not path.is_file():
        return 1.0
    height, width = imread(path).shape[:2]
    return width / height


def _images(fig: Figure, images: list[tuple[str, Path]], box: tuple[float, float, float, float],
            across: bool) -> None:
    """The images in ``box`` (left, bottom, width, height), side by side or stacked."""
    left, bottom, width, height = box
    n = len(images)
    for i, (caption, path) in enumerate(images):
        cell = ((left + i * width / n, bottom, width / n, height) if across else
                (left, bottom + (n - 1 - i) * height / n, width, height / n))
        ax = fig.add_axes((cell[0] + 0.01, cell[1] + 0.04, cell[2] - 0.02, cell[3] - 0.05))
        ax.set_axis_off()
        if path.is_file():
            ax.imshow(imread(path))
            ax.text(0.5, -0.02, caption, transform=ax.transAxes, ha="center", va="top",
                    fontsize=12)
        else:
            ax.text(0.5, 0.5, textwrap.fill(f"{caption}: {path.name} not found; "
                                            f"`{COMMAND}` writes it.", 40),
                    transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4")


def draw(slide: Slide, number: int, total: int, footer: str) -> Figure:
    """One 16:9 page: the bullets beside the pictures (or above wide ones), or above a
    table."""
    fig = Figure(figsize=(WIDTH, HEIGHT))
    fig.text(0.05, 0.93, slide.title, fontsize=28, weight="bold", va="top")
    fig.add_artist(Line2D([0.05, 0.95], [0.85, 0.85], color="0.6", linewidth=1))
    fig.text(0.05, 0.04, footer, fontsize=10, color="0.4")
    fig.text(0.95, 0.04, f"{number} / {total}", fontsize=10, color="0.4", ha="right")
    wide = bool(slide.images) and min(_aspect(p) for _, p in slide.images) > 1.8
    side = bool(slide.images or slide.code) and not wide
    bottom = _text(fig, slide.lines, 0.05, 0.80, 0.40 if side else 0.90)
    if slide.images:
        box = (0.05, 0.08, 0.90, bottom - 0.10) if wide else (0.47, 0.08, 0.50, 0.74)
        _images(fig, slide.images, box, across=wide)
    if slide.code:
        fig.text(0.48, 0.80, "\n".join(slide.code), fontsize=min(13, 300 / len(slide.code)),
                 family="monospace", va="top")
    if slide.table:
        header, rows = slide.table
        ax = fig.add_axes((0.05, 0.10, 0.90, bottom - 0.12))
        ax.set_axis_off()
        table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(13)
        table.scale(1, 2.0)
    return fig


def write_slides(metrics_path: Path, output: Path) -> Path:
    """Read the project's metrics and write the slide deck to ``output`` atomically."""
    metrics_path, output = Path(metrics_path), Path(output)
    document = load_metrics(metrics_path)
    slides = build_slides(document, metrics_path.parent)
    commit = (document["run"].get("git_commit") or "unknown")[:12]
    footer = (f"digitlab MNIST CNN project: {document['data']['source']} data, commit "
              f"{commit}; numbers from {metrics_path.name}")
    # TrueType fonts keep the slides' text selectable and searchable in a PDF viewer.
    with matplotlib.rc_context({"pdf.fonttype": 42}), atomic_target(output) as tmp, \
            PdfPages(tmp, metadata={"Title": "MNIST CNN project", "CreationDate": None}) as pdf:
        for number, slide in enumerate(slides, 1):
            pdf.savefig(draw(slide, number, len(slides), footer))
    return output
