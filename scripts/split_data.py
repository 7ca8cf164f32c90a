"""Split the Mini MNIST CSV into stratified train and test files (80/20 by default).

Usage:
    python scripts/split_data.py
    python scripts/split_data.py --test-size 0.25 --seed 1 --output-dir data

Result: data/X_train.csv and data/X_test.csv (columns pixel_0 ... pixel_71),
data/y_train.csv and data/y_test.csv (column label), every digit in the same
proportion in both parts (800 / 200 rows, 80 / 20 per digit, on the default
data), results/mini_mnist/split_counts.png (images per digit in each part) and
results/mini_mnist/split_metrics.json with the class counts. The notebook
train_mini_mnist reads these four files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitlab import paths, plots
from digitlab.cli import cli, script_parser
from digitlab.data.splits import stratified_indices
from digitlab.errors import UserError
from digitlab.minimnist import dataset
from digitlab.repro import save_figure, save_metrics, set_seed


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--input", default=str(paths.mini_mnist_csv()), help="Mini MNIST CSV")
    parser.add_argument("--output-dir", default=str(paths.data_dir()),
                        help="folder for X_train.csv, X_test.csv, y_train.csv, y_test.csv")
    parser.add_argument("--results-dir", default=str(paths.mini_mnist_results()),
                        help="folder for split_counts.png and split_metrics.json")
    parser.add_argument("--test-size", type=float, default=0.2, help="fraction held out for test")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the split")
    args = parser.parse_args(argv)
    set_seed(args.seed)
    if not 0 < args.test_size < 1:
        raise UserError(f"--test-size must be a fraction between 0 and 1 (got {args.test_size}).")
    images, labels = dataset.read_csv(args.input)
    train, test = stratified_indices(labels, args.test_size, args.seed, what=str(args.input),
                                     fix="generate more rows per class")
    train, test = np.sort(train), np.sort(test)
    written = dataset.write_split(args.output_dir, (images[train], labels[train]),
                                    (images[test], labels[test]))
    metrics = {"train_rows": len(train), "test_rows": len(test),
               "train_class_counts": np.bincount(labels[train], minlength=10).tolist(),
               "test_class_counts": np.bincount(labels[test], minlength=10).tolist()}
    results = Path(args.results_dir)
    save_figure(plots.grouped_bar_chart(
        {"train": metrics["train_class_counts"], "test": metrics["test_class_counts"]},
        range(10), "Stratified split: images per digit", xlabel="digit"),
        results / "split_counts.png")
    save_metrics(results / "split_metrics.json", metrics, seed=args.seed, config=vars(args),
                 data={"input": args.input, "written": [str(p) for p in written]})
    print(f"train {len(train)} rows, test {len(test)} rows -> "
          f"{', '.join(p.name for p in written)} in {Path(args.output_dir)}")


if __name__ == "__main__":
    main()
