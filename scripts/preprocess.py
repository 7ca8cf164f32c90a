"""Look at the Mini MNIST data before modelling it; record the input scaling.

Usage:
    python scripts/preprocess.py
    python scripts/preprocess.py --input data/mini_mnist.csv --output-dir results/mini_mnist

Result, under results/mini_mnist/: samples.png (ten drawn digits per class,
readable by eye), class_means.png (the mean image of each digit),
intensity_histogram.png (every pixel value; mostly dark background plus a tail
of ink), pca_scatter.png (the first two principal components coloured by
label: digits form overlapping clouds) and preprocess_metrics.json (class
counts, intensity statistics, PCA explained variance and the scaling that every
model uses, digitlab.minimnist.dataset.scale: pixel / 255).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from digitlab import paths, plots
from digitlab.cli import cli, script_parser
from digitlab.errors import UserError
from digitlab.minimnist import dataset
from digitlab.repro import save_figure, save_metrics, set_seed


def sample_grid(images: np.ndarray, labels: np.ndarray, per_class: int,
                rng: np.random.Generator) -> np.ndarray:
    """Up to ``per_class`` random images of each digit, one row per digit."""
    rows = [rng.permutation(np.flatnonzero(labels == d))[:per_class] for d in range(10)]
    return images[np.concatenate(rows)]


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--input", default=str(paths.mini_mnist_csv()), help="Mini MNIST CSV")
    parser.add_argument("--output-dir", default=str(paths.mini_mnist_results()),
                        help="folder for the figures and preprocess_metrics.json")
    parser.add_argument("--per-class", type=int, default=10, help="samples per digit in the grid")
    parser.add_argument("--seed", type=int, default=0, help="seed for picking the samples")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        raise UserError(f"--per-class must be at least 1, got {args.per_class}.")
    rng = set_seed(args.seed)
    images, labels = dataset.read_csv(args.input)
    out = Path(args.output_dir)
    x = dataset.scale(images).reshape(len(images), -1)

    save_figure(plots.image_grid(sample_grid(images, labels, args.per_class, rng),
                                 ncols=args.per_class, cell=0.6, vmin=0, vmax=255,
                                 suptitle="Mini MNIST samples (one row per digit 0-9)"),
                out / "samples.png")
    means = np.stack([images[labels == d].mean(0) if (labels == d).any()
                      else np.zeros(images.shape[1:]) for d in range(10)])
    save_figure(plots.image_grid(means, titles=[str(d) for d in range(10)], cell=0.9,
                                 vmin=0, vmax=255, suptitle="Mean image of each digit"),
                out / "class_means.png")
    save_figure(plots.histogram(images, "Pixel intensities", "intensity (0-255)",
                                bins=np.arange(0, 257, 8), log=True),
                out / "intensity_histogram.png")
    pca = PCA(n_components=2, random_state=args.seed)
    points = pca.fit_transform(x)
    save_figure(plots.scatter_2d(points, labels, "First two principal components",
                                 "PC 1", "PC 2"), out / "pca_scatter.png")

    metrics = {
        "rows": len(labels),
        "class_counts": np.bincount(labels, minlength=10).tolist(),
        "intensity_mean": float(images.mean()),
        "intensity_std": float(images.std()),
        "fraction_zero_pixels": float((images == 0).mean()),
        "pca_explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
        "scaling": dataset.SCALING,
    }
    save_metrics(out / "preprocess_metrics.json", metrics, seed=args.seed, config=vars(args),
                 data={"input": args.input})
    print(f"{len(labels)} images; PCA 2 components explain "
          f"{pca.explained_variance_ratio_.sum():.1%} of the variance; figures in {out}")


if __name__ == "__main__":
    main()
