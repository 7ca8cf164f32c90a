"""The results table: every number quoted in the README, read from results/.

Each :class:`Row` names a JSON file under ``results/``, the key path of one
number in it, and the command that regenerates the file. The table is written
to ``results/summary.md`` and, on request, between the ``results`` markers of
README.md, so no number in the README is typed by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from digitlab import paths
from digitlab.errors import UserError
from digitlab.repro import atomic_write

START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Row:
    track: str
    label: str
    file: str  # relative to results/; may be a glob (the newest match is read)
    key: str  # dotted path into the JSON document
    fmt: str  # "pct", "float3", "int", "sec", "ms" or a str.format spec
    command: str


def _format(value, fmt: str) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    formats = {"str": "{}", "pct": "{:.1%}", "pct2": "{:.2%}", "float3": "{:.3f}", "int": "{:,.0f}",
               "sec": "{:.1f} s", "ms": "{:.1f} ms"}
    return formats.get(fmt, fmt).format(value)


def lookup(document: dict, key: str):
    value = document
    for part in key.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def render(rows: list[Row], results: Path | None = None) -> str:
    """A Markdown table; a row whose file is missing says which command makes it."""
    results = results or paths.results_dir()
    lines = ["| track | result | value | source (regenerate with) |", "| --- | --- | --- | --- |"]
    cache: dict[str, dict | None] = {}
    for row in rows:
        if row.file not in cache:
            path = _resolve(results, row.file)
            cache[row.file] = _read_json(path, row.command) if path is not None else None
        document = cache[row.file]
        try:
            value = ("not run yet" if document is None
                     else _format(lookup(document, row.key), row.fmt))
        except (KeyError, IndexError, TypeError, ValueError):
            value = "missing"
        lines.append(f"| {row.track} | {row.label} | {value} | `results/{row.file}` "
                     f"(`{row.command}`) |")
    return "\n".join(lines) + "\n"


def _resolve(results: Path, pattern: str) -> Path | None:
    """The file ``pattern`` names under ``results``; for a glob, the newest match."""
    matches = [p for p in results.glob(pattern) if p.is_file()]
    return max(matches, key=lambda p: p.stat().st_mtime) if matches else None


def _read_json(path: Path, command: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); regenerate it with `{command}`.") \
            from None


_BLOCK = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)


def check_readme(readme: Path) -> str:
    """The text of ``readme``; UserError unless it holds the results markers."""
    if not readme.is_file():
        raise UserError(f"{readme} does not exist; pass --readme PATH.")
    text = readme.read_text()
    if not _BLOCK.search(text):
        raise UserError(f"{readme} has no {START} ... {END} block; add the two markers "
                        "where the results table should go.")
    return text


def update_readme(table: str, readme: Path) -> None:
    """Replace what stands between the results markers of ``readme``."""
    text = check_readme(readme)
    with atomic_write(readme) as handle:
        handle.write(_BLOCK.sub(lambda _: f"{START}\n{table}{END}", text))


_MM, _MN, _NZ, _GEN = "Mini MNIST", "MNIST CNNs", "Noisy MNIST", "Generator"
# evaluate_model.py names its folder after the test set: test-embedded offline, test-local
# or test-download with the real 10,000 test digits.
_EVAL = "mnist/evaluation/mnist_cnn__test-*/metrics.json"

ROWS: list[Row] = [
    Row("Pipeline", "`make all` wall time (2 cores)", "pipeline_time.json",
        "metrics.all.minutes", "{:.1f} min", "make pipeline-time"),
    Row("Pipeline", "`make test` wall time (2 cores)", "pipeline_time.json",
        "metrics.test.minutes", "{:.1f} min", "make pipeline-time"),
    Row(_MM, "K-Means ARI (seed 0)", "mini_mnist/evaluate_metrics.json", "metrics.ari", "float3",
        "make minimnist"),
    Row(_MM, "K-Means cluster accuracy (Hungarian)", "mini_mnist/evaluate_metrics.json",
        "metrics.cluster_accuracy", "pct", "make minimnist"),
    Row(_MM, "test accuracy: chance", "mini_mnist/ladder.json", "metrics.chance_accuracy", "pct",
        "make minimnist"),
    Row(_MM, "test accuracy: K-Means (Hungarian)", "mini_mnist/ladder.json",
        "metrics.kmeans_accuracy", "pct", "make minimnist"),
    Row(_MM, "test accuracy: logistic regression", "mini_mnist/ladder.json",
        "metrics.logistic_accuracy", "pct", "make minimnist"),
    Row(_MM, "test accuracy: MLP 72-20-10-10", "mini_mnist/ladder.json", "metrics.mlp_accuracy",
        "pct", "make minimnist"),
    Row(_MM, "test accuracy: small CNN", "mini_mnist/ladder.json", "metrics.cnn_accuracy", "pct",
        "make minimnist"),
    Row(_MM, "K-Means ARI, mean of 3 seeds", "mini_mnist/benchmark.json",
        "metrics.default.ari", "float3", "make minimnist-bench"),
    Row(_MM, "random-pixel control: ARI", "mini_mnist/benchmark.json", "metrics.random.ari",
        "float3", "make minimnist-bench"),
    Row(_MM, "random-pixel control: MLP accuracy", "mini_mnist/benchmark.json",
        "metrics.random.mlp_accuracy", "pct", "make minimnist-bench"),
    Row(_MM, "all targets met", "mini_mnist/benchmark.json", "metrics.all_passed", "str",
        "make minimnist-bench"),
    Row(_MN, "best CNN, held-out test set", _EVAL, "metrics.accuracy", "pct", "make mnist"),
    Row(_MN, "best CNN, test set source", _EVAL, "test_set.source", "str", "make mnist"),
    Row(_MN, "best CNN, test set size", _EVAL, "metrics.n", "int", "make mnist"),
    Row(_MN, "best CNN, training time", "mnist/mnist_cnn/metrics.json", "metrics.train_seconds",
        "sec", "make mnist"),
    Row(_MN, "NumPy softmax regression, test", "mnist/numpy/metrics.json",
        "metrics.softmax_regression.test_accuracy", "pct", "make mnist"),
    Row(_MN, "NumPy MLP, test", "mnist/numpy/metrics.json", "metrics.mlp.test_accuracy", "pct",
        "make mnist"),
    Row(_MN, "variants study: best run", "mnist/variants/summary.json", "metrics.best_run", "str",
        "make mnist"),
    Row(_MN, "CNN project notebook (short budget), test", "mnist/project/metrics.json",
        "metrics.test_accuracy", "pct", "make mnist"),
    Row(_MN, "recipe chosen by 4-fold CV on train + validation, within the time budget",
        "mnist/recipe_selection.json", "metrics.chosen", "str", "make mnist-recipe"),
    Row(_MN, "its out-of-fold accuracy (4-fold CV)", "mnist/recipe_selection.json",
        "metrics.chosen_accuracy", "pct", "make mnist-recipe"),
    Row(_MN, "benchmark: best CNN test accuracy", "mnist/benchmark.json",
        "metrics.best.test_accuracy", "pct", "make mnist-bench"),
    Row(_MN, "benchmark: best CNN training time", "mnist/benchmark.json",
        "metrics.best.train_seconds", "sec", "make mnist-bench"),
    Row(_MN, "benchmark: target met (>= 99.0% in <= 60 s)", "mnist/benchmark.json",
        "metrics.target.met", "str", "make mnist-bench"),
    Row(_MN, "benchmark: reference network test accuracy", "mnist/benchmark.json",
        "metrics.reference.test_accuracy", "pct", "make mnist-bench"),
    Row(_MN, "benchmark: reference network training time", "mnist/benchmark.json",
        "metrics.reference.train_seconds", "sec", "make mnist-bench"),
    Row(_MN, "benchmark: images/s, best over reference", "mnist/benchmark.json",
        "metrics.ratios.images_per_second_best_over_reference", "{:.2f}x", "make mnist-bench"),
    Row(_NZ, "awgn test: dense network", "noisy_mnist/metrics.json",
        "metrics.test_accuracy.dnn", "pct", "make noisy"),
    Row(_NZ, "awgn test: improved dense network", "noisy_mnist/metrics.json",
        "metrics.test_accuracy.dnn_improved", "pct", "make noisy"),
    Row(_NZ, "awgn test: CNN", "noisy_mnist/metrics.json", "metrics.test_accuracy.cnn", "pct",
        "make noisy"),
    Row(_NZ, "awgn test: improved CNN", "noisy_mnist/metrics.json",
        "metrics.test_accuracy.cnn_improved", "pct", "make noisy"),
    Row(_NZ, "5-fold CV, improved CNN: mean", "noisy_mnist/metrics.json",
        "metrics.cross_validation.mean", "pct", "make noisy"),
    Row(_NZ, "5-fold CV, improved CNN: std", "noisy_mnist/metrics.json",
        "metrics.cross_validation.std", "pct", "make noisy"),
    Row(_NZ, "robustness: trained and tested on the same noise (mean)",
        "noisy_mnist/metrics.json",
        "metrics.robustness.diagonal_mean", "pct", "make noisy"),
    Row(_NZ, "robustness: trained on one noise, tested on another (mean)",
        "noisy_mnist/metrics.json", "metrics.robustness.off_diagonal_mean", "pct", "make noisy"),
    Row(_NZ, "benchmark: best CNN on awgn test", "noisy_mnist/benchmark.json",
        "metrics.cnn.test_accuracy", "pct", "make noisy-bench"),
    Row(_NZ, "benchmark: dense network on awgn test", "noisy_mnist/benchmark.json",
        "metrics.dnn.test_accuracy", "pct", "make noisy-bench"),
    Row(_NZ, "recipe chosen the same way on awgn train + validation digits",
        "noisy_mnist/recipe_selection_awgn.json", "metrics.chosen", "str", "make noisy-recipe"),
    Row(_NZ, "its out-of-fold accuracy", "noisy_mnist/recipe_selection_awgn.json",
        "metrics.chosen_accuracy", "pct", "make noisy-recipe"),
    Row(_GEN, "variance explained by 50 components (train)", "generator/metrics.json",
        "metrics.variance_explained", "pct", "make generator"),
    Row(_GEN, "components needed for 95% of the variance", "generator/metrics.json",
        "metrics.components_for_95pct", "int", "make generator"),
    Row(_GEN, "bandwidth chosen by cross-validation", "generator/metrics.json",
        "metrics.bandwidth", "float3", "make generator"),
    Row(_GEN, "samples read as the requested digit by the CNN", "generator/quality.json",
        "metrics.recognisability.agreement", "pct", "make generator"),
    Row(_GEN, "median distance to nearest training image: samples / test digits",
        "generator/quality.json", "metrics.novelty.median_ratio", "float3", "make generator"),
    Row(_GEN, "web app p50 latency (16 images, 16 clients)", "generator/app_load.json",
        "metrics.p50_ms", "ms", "make app-bench"),
    Row(_GEN, "web app p99 latency", "generator/app_load.json", "metrics.p99_ms", "ms",
        "make app-bench"),
    Row(_GEN, "web app errors in 2,000 requests", "generator/app_load.json", "metrics.errors",
        "int", "make app-bench"),
]
