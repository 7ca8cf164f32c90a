"""Fit the PCA + KDE digit generator and save it for the web app.

Usage:
    python scripts/fit_generator.py                      # 50 components, bandwidth by CV
    python scripts/fit_generator.py --bandwidth 0.5 --kernel tophat --components 30
    python scripts/fit_generator.py --kernel exponential     # or epanechnikov; bandwidth by CV
    python scripts/fit_generator.py --source local --data-dir ~/mnist   # the full MNIST

Result: ``models/generator/generator.npz`` (the model, no pickled objects) and,
under ``results/generator/``, ``metrics.json`` (components, variance explained
measured on the training and test images, bandwidth, cross-validation scores,
data source) with the figures ``cumulative_variance.png``,
``bandwidth_cv.png`` (when the bandwidth is chosen by CV), ``samples.png``
(generated next to real digits) and ``per_digit.png`` (one row per digit).
It fits the 3,500 training images of the offline default data.

The model, the figures and ``metrics.json`` land together: each is written to a
temporary file beside its target, and only when all are complete are they
renamed into place, the model first and ``metrics.json`` last
(:func:`digitlab.repro.atomic_targets`; an error or Ctrl-C leaves every old file as
it was). The model and its metrics live in two folders (``models/``,
``results/``), which no single folder swap covers, so both also carry one new
``run_id``: a reader that pairs them (the notebook's
:func:`digitlab.generator.pca_kde.saved_fit`) uses them only when the ids agree,
which a hard kill between two renames cannot fake.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import numpy as np

from digitlab import paths
from digitlab.cli import (
    add_data_options,
    add_verbose_option,
    cli,
    configure_logging,
    script_parser,
)
from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde
from digitlab.plots import image_mosaic, line_plot
from digitlab.repro import atomic_targets, save_figure, save_metrics, set_seed

CURVE_POINTS = (10, 20, 50, 100, 200)


def number_or(word: str):
    """An argparse type: ``word`` itself, or a number (ranges are checked by the package)."""

    def parse(text: str) -> float | str:
        if text == word:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {word!r}, got {text!r}") \
                from None

    return parse


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--components", type=int, default=pca_kde.DEFAULT_COMPONENTS,
                        help="PCA components kept")
    parser.add_argument("--bandwidth", type=number_or("cv"), default="cv",
                        help="KDE bandwidth in PCA units, or 'cv' for a cross-validated search")
    parser.add_argument("--kernel", default="gaussian",
                        help=f"KDE kernel: {', '.join(pca_kde.KERNELS)}")
    parser.add_argument("--background", type=number_or("auto"), default="auto",
                        help="pixel level (0-1) below which generated pixels are blanked: "
                             "'auto' measures it on the training images, 0 turns it off")
    parser.add_argument("--max-samples", type=int, default=pca_kde.DEFAULT_MAX_SAMPLES,
                        help="the KDE keeps at most this many training images (a seeded "
                             "subset, as the original kept 10,000); the PCA sees all of them")
    parser.add_argument("--cv-folds", type=int, default=pca_kde.DEFAULT_CV_FOLDS)
    add_data_options(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="model folder (default: models/generator)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="metrics and figures (default: results/generator)")
    add_verbose_option(parser)
    return parser.parse_args(argv)


def make_figures(model, search, curve, splits, seed: int) -> dict:
    """The figures of one fit by file name (``bandwidth_cv.png`` only when it was searched)."""
    k = np.arange(1, len(curve) + 1)
    figures = {"cumulative_variance.png": line_plot(
        k, {"cumulative variance explained": curve}, "PCA of MNIST digits", "components",
        "fraction of variance",
        marks={f"{model.n_components} components kept": model.n_components})}
    if search is not None:
        figures["bandwidth_cv.png"] = line_plot(
            search.grid, {f"{search.folds}-fold CV": search.mean_scores},
            f"KDE bandwidth ({model.kernel} kernel)", "bandwidth",
            "held-out log-likelihood per image",
            errors={f"{search.folds}-fold CV": search.std_scores}, logx=True,
            marks={f"chosen: {search.best:.3g}": search.best})
    generated = model.sample(30, seed=seed)
    real = splits.test_images[:30]
    figures["samples.png"] = image_mosaic(np.concatenate([generated, real]), ncols=10,
                                          title="generated digits and real test digits",
                                          row_labels=["generated"] * 3 + ["real"] * 3)
    per_digit, digits = pca_kde.sample_per_digit(model, 10, seed=seed)
    figures["per_digit.png"] = image_mosaic(per_digit, ncols=10,
                                            title="ten samples of each digit",
                                            row_labels=[str(d) for d in digits[::10]])
    return figures


def save_fit(model, figures: dict, metrics: dict, output: Path, out: Path, *, seed: int,
             config: dict, data: dict) -> str:
    """Write the model, its figures and its metrics.json as one group (see the module's
    docstring); return the run id that the model and the metrics share."""
    run_id = uuid.uuid4().hex
    model.metadata["run_id"] = run_id
    names = list(figures)
    with atomic_targets(output, *(out / name for name in names), out / "metrics.json") as tmp:
        model.save(tmp[0])
        for name, target in zip(names, tmp[1:-1], strict=True):
            save_figure(figures[name], target)
        save_metrics(tmp[-1], metrics, seed=seed, config=config, data=data, run_id=run_id)
    return run_id


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    pca_kde.check_kernel(args.kernel)
    output = pca_kde.model_path(args.output_dir)
    out = args.results_dir or paths.generator_results()
    set_seed(args.seed)
    start = time.perf_counter()
    splits = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    images, labels = splits.train_images, splits.train_labels
    n_points = min(len(images), args.max_samples)
    print(f"PCA on all {len(images):,} training images, the KDE on {n_points:,} of them "
          f"({splits.description})")
    data = {**splits.summary(), "n_fit": int(len(images)), "n_kde_points": int(n_points)}
    model, search = pca_kde.fit_generator(
        images, labels, n_components=args.components, bandwidth=args.bandwidth,
        kernel=args.kernel, background=args.background, folds=args.cv_folds,
        kde_points=args.max_samples, random_state=args.seed,
        metadata={"data": data, "seed": args.seed})
    curve = pca_kde.cumulative_variance(images)
    metrics = {
        **model.stats(),
        # The names the results table reads, beside stats()'s pca_components, kde_bandwidth.
        "components": model.n_components, "bandwidth": model.bandwidth,
        "variance_explained_train_measured": model.measured_variance_explained(images),
        "variance_explained_test_measured": model.measured_variance_explained(splits.test_images),
        "cumulative_variance": {str(k): float(curve[k - 1]) for k in CURVE_POINTS
                                if k <= len(curve)},
        "components_for_95pct": int(np.searchsorted(curve, 0.95) + 1),
        "bandwidth_source": "cv" if search is not None else "given",
        "bandwidth_cv": search.as_dict() if search is not None else None,
        "fit_seconds": time.perf_counter() - start,
    }
    figures = make_figures(model, search, curve, splits, args.seed)
    save_fit(model, figures, metrics, output, out, seed=args.seed, config=vars(args), data=data)
    print(f"{model.n_components} components explain {model.variance_explained:.1%} of the "
          f"training variance; bandwidth {model.bandwidth:.3g} ({metrics['bandwidth_source']})")
    print(f"model written to {output}; metrics and figures in {out}")


if __name__ == "__main__":
    main()
