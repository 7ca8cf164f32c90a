"""Cluster the Mini MNIST images with K-Means (10 clusters), ignoring the labels.

Usage:
    python scripts/clustering.py
    python scripts/clustering.py --seed 1 --n-init 20 --input data/mini_mnist.csv

Result, under results/mini_mnist/: kmeans_assignments.csv (row, cluster: the
cluster of every CSV row, read by scripts/evaluate.py), kmeans_centroids.png
(the 10 centroids drawn as 9 x 8 images: most look like blurred digits, some
like a blend of two) and clustering_metrics.json (inertia, iterations, cluster
sizes, centroids in 0-255 units). The pixels are scaled with
digitlab.minimnist.dataset.scale before clustering.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitlab import paths, plots
from digitlab.cli import cli, script_parser
from digitlab.errors import UserError
from digitlab.minimnist import dataset
from digitlab.minimnist.ladder import fit_kmeans
from digitlab.repro import atomic_write, save_figure, save_metrics, set_seed

ASSIGNMENT_COLUMNS = ("row", "cluster")


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--input", default=str(paths.mini_mnist_csv()), help="Mini MNIST CSV")
    parser.add_argument("--output-dir", default=str(paths.mini_mnist_results()),
                        help="folder for the assignments, centroid figure and metrics")
    parser.add_argument("--n-clusters", type=int, default=10, help="number of clusters")
    parser.add_argument("--n-init", type=int, default=10,
                        help="k-means++ restarts; the lowest inertia wins")
    parser.add_argument("--seed", type=int, default=0, help="random_state of K-Means")
    args = parser.parse_args(argv)
    set_seed(args.seed)
    images, labels = dataset.read_csv(args.input)
    if not 1 <= args.n_clusters <= len(images):
        raise UserError(f"--n-clusters must be between 1 and the {len(images)} rows of "
                        f"{args.input} (got {args.n_clusters}).")
    if args.n_init < 1:
        raise UserError(f"--n-init must be at least 1 (got {args.n_init}).")
    out = Path(args.output_dir)
    kmeans = fit_kmeans(dataset.scale(images).reshape(len(images), -1), seed=args.seed,
                        n_clusters=args.n_clusters, n_init=args.n_init)
    clusters = kmeans.labels_.astype(np.int64)

    with atomic_write(out / "kmeans_assignments.csv") as handle:
        handle.write(",".join(ASSIGNMENT_COLUMNS) + "\n")
        np.savetxt(handle, np.column_stack([np.arange(len(clusters)), clusters]), fmt="%d",
                   delimiter=",")
    sizes = np.bincount(clusters, minlength=args.n_clusters)
    centroids = 255 * kmeans.cluster_centers_.reshape(-1, dataset.ROWS, dataset.COLS)
    save_figure(plots.image_grid(centroids, titles=[f"cluster {c}\n({n})" for c, n in
                                                    enumerate(sizes)],
                                 cell=1.1, vmin=0, vmax=255,
                                 suptitle="K-Means centroids (cluster size in brackets)"),
                out / "kmeans_centroids.png")
    metrics = {"inertia": float(kmeans.inertia_), "n_iter": int(kmeans.n_iter_),
               "cluster_sizes": sizes.tolist(), "centroids_0_255": centroids.round(2).tolist()}
    save_metrics(out / "clustering_metrics.json", metrics, seed=args.seed, config=vars(args),
                 data={"input": args.input, "scaling": dataset.SCALING})
    print(f"K-Means with {args.n_clusters} clusters: inertia {kmeans.inertia_:.1f}, "
          f"cluster sizes {sizes.tolist()}; assignments in {out / 'kmeans_assignments.csv'}")


if __name__ == "__main__":
    main()
