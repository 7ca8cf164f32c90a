"""The results page, ``results/index.html``: the results table (what was measured, then one
line naming each command not run yet), then every figure under
``results/`` grouped by track, each with what it shows, its file and the command that
regenerates it, and links to the report, the slides and the executed notebooks.

:data:`CAPTIONS` is the declarative part, like the ``Row`` table of
:mod:`digitlab.pipeline.summary`: one :class:`Caption` per figure the pipeline writes
(a path under ``results/``, ``*`` where it varies). A figure found on disk that no
caption matches still appears, in its track's section, with its file name as caption
(until one is added here).

When the last ``make all`` of the tree has not finished (:mod:`digitlab.pipeline.summary`'s
run marker), a banner says so at the top; a value, figure or notebook whose file is older
than that run's start is tagged "earlier run", and a box names each command whose table
values come from such files.

Every link is relative, so the page opens from disk and from the web app's
``/results`` alike; nothing is fetched from the network.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from digitlab import paths
from digitlab.errors import UserError
from digitlab.pipeline.summary import ROWS, PipelineRun, Row, read_run, sources, split
from digitlab.repro import atomic_write

MM, MN, NZ, GEN, OTHER = "Mini MNIST", "MNIST CNNs", "Noisy MNIST", "Generator", "Other figures"
TRACKS = (MM, MN, NZ, GEN, OTHER)
# Which track a metrics file belongs to, by its first folder under results/ (else OTHER).
TRACK_FOLDERS = {"mini_mnist": MM, "mnist": MN, "noisy_mnist": NZ, "generator": GEN}


@dataclass(frozen=True)
class Caption:
    pattern: str  # relative to results/, '/'-separated; '*' matches within one folder or name
    track: str
    caption: str  # may name what the '*'s matched as {0}, {1}, ...
    command: str  # likewise

    def match(self, relative: str) -> tuple[str, ...] | None:
        found = _regex(self.pattern).fullmatch(relative)
        return found.groups() if found else None


@functools.cache
def _regex(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(r"\*", "([^/]*)"))


def _script(name: str, options: str = "") -> str:
    return f".venv/bin/python scripts/{name}.py {options}".rstrip()


def _notebook(name: str) -> str:
    return _script("run_notebook", name)


def _captions(track: str, folder: str, command: str, *items: tuple[str, str]) -> list[Caption]:
    """Captions for figures in ``folder`` written by ``command``: one per (name, caption)."""
    return [Caption(f"{folder}/{name}", track, caption, command) for name, caption in items]


_PROJECT = _notebook("mnist_05_cnn_project")
_KDE_NOTEBOOK = "generator/notebook*"  # notebook_quick under quick=True

CAPTIONS: list[Caption] = [
    *_captions(MM, "mini_mnist", _script("preprocess"),
               ("samples.png", "Generated digits, one row per class"),
               ("class_means.png", "The mean image of each digit"),
               ("intensity_histogram.png", "Every pixel value: dark background and a tail of ink"),
               ("pca_scatter.png", "The digits on their first two principal components, "
                                   "coloured by label")),
    *_captions(MM, "mini_mnist", _script("clustering", "--seed 0"),
               ("kmeans_centroids.png", "The K-Means centroids as images, with each cluster's "
                                        "size")),
    *_captions(MM, "mini_mnist", _script("evaluate"),
               ("contingency.png", "K-Means clusters (rows) against the true labels "
                                   "(columns)")),
    *_captions(MM, "mini_mnist", _script("split_data", "--seed 0"),
               ("split_counts.png", "Images per digit in the stratified training and test "
                                    "parts")),
    *_captions(MM, "mini_mnist", _notebook("train_mini_mnist"),
               ("mlp_learning_curves.png", "Loss and accuracy of the 72-20-10-10 MLP per epoch, "
                                           "training and validation"),
               ("mlp_confusion_matrix.png", "The MLP's confusion matrix on the test rows"),
               ("mlp_test_examples.png", "Random test digits with the probability the MLP "
                                         "gives each class"),
               ("ladder.png", "Test accuracy of every rung of the ladder, from chance to the "
                              "small CNN")),
    *_captions(MN, "mnist/exploration", _notebook("mnist_01_exploration"),
               ("class_counts.png", "Training images per digit"),
               ("digits_grid.png", "Training digits with their labels"),
               ("mean_images.png", "The mean training image of each digit"),
               ("one_batch.png", "One shuffled mini-batch, as the networks receive it "
                                 "(normalised)")),
    *_captions(MN, "mnist/first_cnn", _notebook("mnist_02_first_cnn"),
               ("learning_curves.png", "The first CNNs (2 and 3 conv blocks): training and "
                                       "validation curves"),
               ("val_predictions.png", "Validation digits with the probability the chosen "
                                       "first CNN gives each digit")),
    *_captions(MN, "mnist/numpy", _notebook("mnist_03_numpy_softmax"),
               ("softmax_learning_curves.png", "Softmax regression in NumPy: loss and accuracy "
                                               "per epoch"),
               ("softmax_weights.png", "The rows of the softmax regression's weights as images "
                                       "(red positive, blue negative)"),
               ("numpy_learning_curves.png", "NumPy softmax regression against the NumPy MLP")),
    *_captions(MN, "mnist/variants", _notebook("mnist_04_variants"),
               ("val_accuracy.png", "Validation accuracy (kept weights) of each variant "
                                    "(plain, dropout, batch-norm, both) with each optimiser"),
               ("epochs_to_converge.png", "Epochs each variant needed to come close to its "
                                          "best validation accuracy"),
               ("learning_curves_*.png", "Learning curves of the cnn2 variants trained with "
                                         "{0}")),
    *_captions(MN, "mnist/project", _PROJECT,
               ("architectures_learning_curves.png", "CNN project: learning curves of the "
                                                     "candidate architectures"),
               ("augmentation.png", "CNN project: training digits (top row) and three random "
                                    "augmentations of each"),
               ("confusion_matrix.png", "CNN project: the final model's confusion matrix on "
                                        "the test set"),
               ("misclassified.png", "CNN project: the most confident mistakes on the test "
                                     "set"),
               ("filters.png", "CNN project: the first-layer filters (red positive, blue "
                               "negative weights)"),
               ("feature_maps.png", "CNN project: what each ReLU layer outputs for one test "
                                    "digit")),
    Caption("mnist/mnist_cnn/training_curves.png", MN,
            "The best CNN: loss and accuracy per epoch", _script("train_cnn", "--seed 0")),
    Caption("mnist/evaluation/mnist_cnn__test-*/confusion_matrix.png", MN,
            "The best CNN's confusion matrix on the held-out test split ({0} source)",
            _script("evaluate_model", "--seed 0")),
    Caption("mnist/evaluation/*__*/confusion_matrix.png", MN,
            "Confusion matrix of the checkpoint {0} on the test set {1}",
            _script("evaluate_model", "--checkpoint models/{0}.pt") + " (with that test set's "
            "options)"),
    Caption("mnist/recipe_selection_errors.png", MN,
            "The digits the chosen recipe misread in cross-validation (true -> predicted)",
            "make mnist-recipe"),
    Caption("mnist/recipe_selection.png", MN,
            "Recipe candidates for the best CNN: cross-validated accuracy on train + validation",
            "make mnist-recipe"),
    Caption("mnist/*/training_curves.png", MN, "Loss and accuracy per epoch of the CNN named {0}",
            _script("train_cnn", "--name {0}") + " (with its other options)"),
    *_captions(NZ, "noisy_mnist", _script("make_noisy_mnist", "--seed 0"),
               ("samples_*.png", "Clean digits above the same digits with {0} noise")),
    *_captions(NZ, "noisy_mnist", _notebook("noisy_mnist"),
               ("noisy_samples.png", "The same digits clean and under each corruption"),
               ("curves_*.png", "Training and validation curves of the {0} model on noisy "
                                "digits"),
               ("confusion_*.png", "Test confusion matrix of the {0} model on noisy digits"),
               ("cv_curves.png", "Validation curves of the improved CNN in each "
                                 "cross-validation fold"),
               ("robustness.png", "Accuracy when trained on one corruption (rows) and tested "
                                  "on another (columns)")),
    Caption("noisy_mnist/recipe_selection_*_errors.png", NZ,
            "The {0} digits the chosen recipe misread in cross-validation (true -> predicted)",
            ".venv/bin/python benchmarks/mnist_cnn_recipe.py --noise {0}"),
    Caption("noisy_mnist/recipe_selection_*.png", NZ,
            "Recipe candidates compared by cross-validation on {0} digits",
            ".venv/bin/python benchmarks/mnist_cnn_recipe.py --noise {0}"),
    Caption("noisy_mnist/benchmark/*/train_cnn/training_curves.png", NZ,
            "Benchmark: loss and accuracy per epoch of {0}", "make noisy-bench"),
    Caption("noisy_mnist/benchmark/*/evaluate_model/confusion_matrix.png", NZ,
            "Benchmark: test confusion matrix of {0}", "make noisy-bench"),
    *_captions(GEN, "generator", _script("fit_generator", "--seed 0"),
               ("cumulative_variance.png", "Variance explained by the first principal "
                                           "components"),
               ("bandwidth_cv.png", "Held-out log-likelihood of the KDE against its bandwidth"),
               ("samples.png", "Generated digits above real test digits"),
               ("per_digit.png", "Generated samples, one row per requested digit")),
    *_captions(GEN, _KDE_NOTEBOOK, _notebook("train_kde_model"),
               ("cumulative_variance.png", "Generator notebook: variance explained by the "
                                           "principal components"),
               ("bandwidth_cv.png", "Generator notebook: held-out log-likelihood against the "
                                    "bandwidth"),
               ("generated_vs_real.png", "Generator notebook: generated and real digits"),
               ("per_digit.png", "Generator notebook: samples of each requested digit"),
               ("kernel_*.png", "Generator notebook: samples of each digit drawn with the {0} "
                                "kernel, its bandwidth chosen by cross-validation"),
               ("recognisability.png", "Generator notebook: how often the CNN reads a sample as "
                                       "the requested digit"),
               ("novelty.png", "Generator notebook: distance to the nearest training image, "
                               "samples against real test digits"),
               ("nearest_training.png", "Generator notebook: samples above their nearest "
                                        "training images")),
]

@dataclass(frozen=True)
class Figure:
    path: str  # relative to results/, '/'-separated
    track: str
    caption: str
    command: str
    captioned: bool
    order: int  # the caption's place in the table: figures are shown in pipeline order


def describe(relative: str, captions: list[Caption] = CAPTIONS) -> Figure:
    """The first caption whose pattern matches ``relative``; without one, the figure's file
    name is its caption, in its folder's track (else "Other figures")."""
    for order, caption in enumerate(captions):
        groups = caption.match(relative)
        if groups is not None:
            return Figure(relative, caption.track, caption.caption.format(*groups),
                          caption.command.format(*groups), True, order)
    track = TRACK_FOLDERS.get(relative.split("/")[0], OTHER)
    return Figure(relative, track, relative.split("/")[-1], "", False, len(captions))


def _files(results: Path, suffix: str) -> list[str]:
    """Files under ``results`` ending in ``suffix``, relative and sorted; hidden files and
    folders (an interrupted atomic write's temporary file) are left out."""
    found = [p.relative_to(results) for p in results.rglob(f"*{suffix}") if p.is_file()]
    return sorted(p.as_posix() for p in found if not any(s.startswith(".") for s in p.parts))


def find_figures(results: Path, captions: list[Caption] = CAPTIONS) -> list[Figure]:
    """Every PNG under ``results``, in track order, then in caption-table order."""
    figures = [describe(path, captions) for path in _files(results, ".png")]
    return sorted(figures, key=lambda f: (TRACKS.index(f.track), f.order, f.path))


# --- the page ------------------------------------------------------------------------------

DOCUMENTS = (  # (title, file under results/, command that writes it)
    ("CNN project report", "mnist/report.md", _PROJECT),
    ("CNN project slides (PDF)", "mnist/slides.pdf", "make slides"),
    ("Results table as Markdown", "summary.md", "make summary"),
)


def _inline_code(text: str) -> Markup:
    """Escape ``text`` and show its `backticked` parts as code, as the README does."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _context(results: Path, output: Path, rows: list[Row], captions: list[Caption]) -> dict:
    def href(relative: str) -> str:
        return quote(Path(os.path.relpath(results / relative, output.parent)).as_posix())

    run = read_run(results)

    def earlier(relative: str) -> bool:
        return run is not None and run.earlier(results / relative)

    measured, not_run = split(rows, results)
    read_from = dict(zip(rows, sources(rows, results), strict=True))
    figures = find_figures(results, captions)
    metrics = _files(results, ".json")
    sections = []
    for track in TRACKS:
        shown = [f for f in figures if f.track == track]
        files = [m for m in metrics if TRACK_FOLDERS.get(m.split("/")[0], OTHER) == track]
        if shown or files:
            sections.append({"track": track, "id": _slug(track), "metrics": files,
                             "figures": shown})
    return {
        "run": run,
        "earlier_steps": _earlier_steps(measured, read_from, results, run),
        "earlier": earlier,
        "table": [{"row": row, "label": _inline_code(row.label), "value": value,
                   "earlier": _is_earlier(read_from[row], run)}
                  for row, value in measured],
        "not_run": [_inline_code(item.describe()) for item in not_run],
        "documents": [{"title": title, "file": file, "command": command,
                       "exists": (results / file).is_file()}
                      for title, file, command in DOCUMENTS],
        "notebooks": [n for n in _files(results, ".ipynb") if n.startswith("notebooks/")],
        "sections": sections,
        "n_figures": len(figures),
        "href": href,
    }


def _is_earlier(path: Path | None, run: PipelineRun | None) -> bool:
    return path is not None and run is not None and run.earlier(path)


def _earlier_steps(measured: list[tuple[Row, str]], read_from: dict[Row, Path | None],
                   results: Path, run: PipelineRun | None) -> list[dict]:
    """Each command whose table values come from files older than the run's start, with
    those files (relative to ``results``), in the order of the table."""
    steps: dict[str, list[str]] = {}
    for row, _ in measured:
        path = read_from[row]
        if _is_earlier(path, run):
            files = steps.setdefault(row.command, [])
            relative = path.relative_to(results).as_posix()
            if relative not in files:
                files.append(relative)
    return [{"command": command, "files": files} for command, files in steps.items()]


@functools.cache
def _template(name: str = "results.html") -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("digitlab.pipeline", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(name)


def render_page(results: Path | None = None, output: Path | None = None,
                rows: list[Row] = ROWS, captions: list[Caption] = CAPTIONS) -> str:
    """The HTML of the results page for the files now under ``results``, with links
    relative to ``output``'s folder (default: ``results/index.html``)."""
    results = Path(results or paths.results_dir())
    output = Path(output or results / "index.html")
    return _template().render(**_context(results, output, rows, captions))


def write_page(results: Path | None = None, output: Path | None = None) -> Path:
    """Write the results page atomically; return its path."""
    results = Path(results or paths.results_dir())
    output = Path(output or results / "index.html")
    page = render_page(results, output)
    with atomic_write(output) as handle:
        handle.write(page)
    return output


def write_run_page(results: Path | None = None, output: Path | None = None) -> Path:
    """The page as ``make all`` begins: the full page, whose banner says the run has not
    finished; a page with the banner alone when the files now under ``results`` cannot
    be summarised (e.g. they mix data scales, which the run is about to mend). Either
    way no page from the earlier run is left looking current."""
    results = Path(results or paths.results_dir())
    output = Path(output or results / "index.html")
    try:
        return write_page(results, output)
    except UserError as err:
        page = _template("unfinished.html").render(run=read_run(results), reason=str(err))
    with atomic_write(output) as handle:
        handle.write(page)
    return output
