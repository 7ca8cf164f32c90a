"""Score the K-Means clusters against the true Mini MNIST labels.

Usage:
    python scripts/evaluate.py
    python scripts/evaluate.py --assignments results/mini_mnist/kmeans_assignments.csv

Reads the data CSV (labels and pixels) and the assignments written by
scripts/clustering.py. Result, under results/mini_mnist/: evaluate_metrics.json
with ARI, AMI and NMI (both with arithmetic averaging of the entropies, so NMI
equals the V-measure), homogeneity, completeness, V-measure, silhouette
(Euclidean, on the scaled pixels), the cluster accuracy after Hungarian
matching of clusters to labels, the cluster -> label map and the contingency
table; contingency.png (clusters x true labels); cluster_to_label.csv (each
cluster's matched label, size and the share of its rows that carry that label).
On the default data the ARI lies well above 0 and well below 1: real structure,
but not the labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitlab import paths, plots
from digitlab.cli import cli, script_parser
from digitlab.errors import UserError
from digitlab.metrics import clustering_summary
from digitlab.minimnist import dataset
from digitlab.minimnist.tables import check_integer_range, read_table
from digitlab.repro import atomic_write, save_figure, save_metrics, set_seed


def read_assignments(path: str, n_rows: int, data_path: str) -> np.ndarray:
    """The cluster of each data row, checked against the data file's row count."""
    table = read_table(path, ("row", "cluster"), "a K-Means assignments file",
                       "run scripts/clustering.py first")
    rows = check_integer_range(table["row"].to_numpy(), 0, max(n_rows - 1, 0), path, "row numbers")
    if len(rows) != n_rows or not np.array_equal(np.sort(rows), np.arange(n_rows)):
        raise UserError(f"{path} does not assign each of the {n_rows} rows of {data_path} "
                        f"exactly once; run scripts/clustering.py again on that file.")
    clusters = check_integer_range(table["cluster"].to_numpy(), 0, n_rows, path, "cluster ids")
    return clusters[np.argsort(rows)]


def mapping_rows(summary: dict) -> list[tuple[int, int, int, float]]:
    """(cluster, matched label, size, share of its rows with that label) per cluster."""
    counts = np.array(summary["contingency"]["counts"])
    labels = summary["contingency"]["cols_labels"]
    rows = []
    for i, cluster in enumerate(summary["contingency"]["rows_clusters"]):
        label = summary["cluster_to_label"][str(cluster)]
        size = int(counts[i].sum())
        share = counts[i, labels.index(label)] / size if label in labels else 0.0
        rows.append((int(cluster), int(label), size, float(share)))
    return rows


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    results = paths.mini_mnist_results()
    parser.add_argument("--input", default=str(paths.mini_mnist_csv()), help="Mini MNIST CSV")
    parser.add_argument("--assignments", default=str(results / "kmeans_assignments.csv"),
                        help="clusters written by scripts/clustering.py")
    parser.add_argument("--output-dir", default=str(results), help="folder for the results")
    parser.add_argument("--seed", type=int, default=0, help="seed (recorded; scores are exact)")
    args = parser.parse_args(argv)
    set_seed(args.seed)
    images, labels = dataset.read_csv(args.input)
    clusters = read_assignments(args.assignments, len(labels), args.input)
    features = dataset.scale(images).reshape(len(images), -1)
    summary = clustering_summary(labels, clusters, features, seed=args.seed)
    out = Path(args.output_dir)

    table = summary["contingency"]
    save_figure(plots.confusion_matrix(
        np.array(table["counts"]), title="Contingency: K-Means clusters x true labels",
        xlabel="true label", ylabel="cluster", labels=None), out / "contingency.png")
    rows = mapping_rows(summary)
    with atomic_write(out / "cluster_to_label.csv") as handle:
        handle.write("cluster,label,size,matched_share\n")
        handle.writelines(f"{c},{lab},{n},{p:.4f}\n" for c, lab, n, p in rows)
    save_metrics(out / "evaluate_metrics.json", summary, seed=args.seed, config=vars(args),
                 data={"input": args.input, "assignments": args.assignments})
    print("cluster -> label (size, share of that label): " +
          ", ".join(f"{c}->{lab} ({n}, {p:.0%})" for c, lab, n, p in rows))
    silhouette = summary.get("silhouette", float("nan"))
    print(f"ARI {summary['ari']:.3f}  AMI {summary['ami']:.3f}  NMI {summary['nmi']:.3f}  "
          f"V {summary['v_measure']:.3f}  silhouette {silhouette:.3f}  "
          f"Hungarian accuracy {summary['cluster_accuracy']:.3f}")


if __name__ == "__main__":
    main()
