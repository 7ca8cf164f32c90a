"""Evaluate a saved CNN checkpoint on any MNIST-format test set.

Usage:
    python scripts/evaluate_model.py                  # models/mnist_cnn.pt on the test split
    python scripts/evaluate_model.py --checkpoint models/mnist_cnn.pt \\
        --images data/raw/mnist/t10k-images-idx3-ubyte.gz \\
        --labels data/raw/mnist/t10k-labels-idx1-ubyte.gz   # the real 10,000-image test set
    python scripts/evaluate_model.py --noise awgn --seed 0   # the test split, corrupted
    python scripts/evaluate_model.py --device cuda            # on a GPU, whatever it trained on

Without --images/--labels the model is evaluated on the test split of --source
(auto: local MNIST, else download, else the 1,000 held-out embedded digits).

Result: ``results/mnist/evaluation/<checkpoint>__<test set>/metrics.json``
(accuracy, loss, macro and per-class precision / recall / F1, confusion matrix,
the test set, the checkpoint's training data and the device) and
``confusion_matrix.png``. Test images must be 28x28 and labels among the classes
the checkpoint knows; anything else is one sentence, exit status 2.
"""

from __future__ import annotations

from pathlib import Path

from digitlab import devices, paths
from digitlab.cli import (
    add_data_options,
    add_device,
    add_seed,
    add_verbose_option,
    cli,
    configure_logging,
    for_option,
    script_parser,
)
from digitlab.data.idx import load_idx_pair
from digitlab.data.noise import NOISE_TYPES, corrupt
from digitlab.data.sources import load_mnist
from digitlab.errors import UserError
from digitlab.mnist.evaluation import evaluate_checkpoint
from digitlab.noisy.sets import split_seed


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="saved model (default: models/mnist_cnn.pt)")
    parser.add_argument("--images", type=Path, default=None, help="IDX image file (.gz or raw)")
    parser.add_argument("--labels", type=Path, default=None, help="IDX label file (.gz or raw)")
    add_data_options(parser)
    parser.add_argument("--noise", default=None, choices=NOISE_TYPES,
                        help="corrupt the test images first")
    add_seed(parser, help="seed of the noise (and split)")
    add_device(parser)
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
        return images, labels, name, {"source": "idx", "images": args.images,
                                      "labels": args.labels, "n_test": len(labels),
                                      "description": f"IDX files {args.images} and {args.labels}"}
    splits = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    summary = {**splits.summary(), "split": "test"}
    return splits.test_images, splits.test_labels, f"test-{splits.source}", summary


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    with for_option("--device"):
        device = devices.resolve(args.device)
    devices.set_threads(device=device)
    checkpoint = args.checkpoint or paths.cnn_checkpoint()
    images, labels, name, test_set = load_test_set(args)
    if args.noise is not None and images.ndim == 3:
        images = corrupt(images, args.noise, split_seed(args.seed, "test"))
        name += f"_{args.noise}"
    test_set["noise"] = args.noise
    out = args.output_dir or paths.mnist_results() / "evaluation" / f"{checkpoint.stem}__{name}"
    report = evaluate_checkpoint(checkpoint, images, labels, title_name=name, test_set=test_set,
                                 out=out, seed=args.seed, device=device)
    print(report["title"])
    print(f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for label, row in report["per_class"].items():
        print(f"{label:>5} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:6.4f} "
              f"{row['support']:7d}")
    print(f"model trained on: {report['trained_on'].get('description', report['trained_on'])}")
    print(f"metrics: {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
