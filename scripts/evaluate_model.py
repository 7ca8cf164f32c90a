"""Evaluate a saved CNN checkpoint on any MNIST-format test set.

Usage:
    python scripts/evaluate_model.py                  # models/mnist_cnn.pt on the test split
    python scripts/evaluate_model.py --checkpoint models/mnist_cnn.pt \\
        --images data/raw/mnist/t10k-images-idx3-ubyte.gz \\
        --labels data/raw/mnist/t10k-labels-idx1-ubyte.gz   # the real 10,000-image test set
    python scripts/evaluate_model.py --noise awgn --seed 0   # the test split, corrupted

Without --images/--labels the model is evaluated on the test split of --source
(auto: local MNIST, else download, else the 1,000 held-out embedded digits).

Result: ``results/mnist/evaluation/<checkpoint>__<test set>/metrics.json``
(accuracy, loss, macro and per-class precision / recall / F1, confusion matrix,
the test set and the checkpoint's training data) and ``confusion_matrix.png``.
"""

from __future__ import annotations

from pathlib import Path

from digitlab import paths
from digitlab.cli import UserError, add_verbose_option, cli, configure_logging, script_parser
from digitlab.data.idx import load_idx_pair
from digitlab.data.noise import NOISE_TYPES, corrupt
from digitlab.data.sources import SOURCES, load_mnist
from digitlab.engine.checkpoint import load_checkpoint
from digitlab.engine.fit import set_threads
from digitlab.mnist.training import evaluate_images
from digitlab.noisy.sets import split_seed
from digitlab.plots import confusion_matrix
from digitlab.repro import save_figure, save_json, save_metrics


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="saved model (default: models/mnist_cnn.pt)")
    parser.add_argument("--images", type=Path, default=None, help="IDX image file (.gz or raw)")
    parser.add_argument("--labels", type=Path, default=None, help="IDX label file (.gz or raw)")
    parser.add_argument("--source", choices=SOURCES, default="auto",
                        help="MNIST source whose test split is used when --images is not given")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="MNIST-format folder for --source local/auto "
                             "(default: data/raw/mnist)")
    parser.add_argument("--noise", default=None, choices=NOISE_TYPES,
                        help="corrupt the test images first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (and split)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="default: results/mnist/evaluation/<checkpoint>__<test set>")
    add_verbose_option(parser)
    args = parser.parse_args(argv)
    if (args.images is None) != (args.labels is None):
        raise UserError("pass both --images and --labels (or neither, to use the test split).")
    return args


def load_test_set(args) -> tuple:
    """Images, labels, a short name and a description of the test set."""
    if args.images is not None:
        images, labels = load_idx_pair(args.images, args.labels)
        name = args.images.name.split("-idx")[0].removesuffix(".gz")
        return images, labels, name, {"images": args.images, "labels": args.labels,
                                      "n_test": len(labels)}
    splits = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    summary = {**splits.summary(), "split": "test"}
    return splits.test_images, splits.test_labels, f"test-{splits.source}", summary


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    set_threads()
    checkpoint = args.checkpoint or paths.cnn_checkpoint()
    model, info = load_checkpoint(checkpoint)
    images, labels, name, test_set = load_test_set(args)
    if images.shape[1:] != (28, 28):
        raise UserError(f"the test images are {images.shape[1]}x{images.shape[2]} pixels but "
                        "the CNNs take 28x28; pass an MNIST-format image file.")
    if args.noise is not None:

        images = corrupt(images, args.noise, split_seed(args.seed, "test"))
        name += f"_{args.noise}"
    test_set["noise"] = args.noise
    out = args.output_dir or paths.mnist_results() / "evaluation" / f"{checkpoint.stem}__{name}"

    report = evaluate_images(model, images, labels)
    title = f"{checkpoint.name} on {name} ({len(labels)} images): accuracy {report['accuracy']:.4f}"
    save_figure(confusion_matrix(report["confusion_matrix"], title=title),
                out / "confusion_matrix.png")
    save_json({"confusion_matrix": report["confusion_matrix"]}, out / "confusion_matrix.json")
    save_metrics(out / "metrics.json", report, seed=args.seed,
                 config={"checkpoint": checkpoint, "noise": args.noise},
                 test_set=test_set, model={k: info[k] for k in ("arch", "model_kwargs", "data")})
    print(title)
    print(f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for label, row in report["per_class"].items():
        print(f"{label:>5} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:6.4f} "
              f"{row['support']:7d}")
    print(f"model trained on: {info['data'].get('description', info['data'])}")
    print(f"metrics: {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
