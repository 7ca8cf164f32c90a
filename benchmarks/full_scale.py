"""The best CNN's recipe at full scale: 60,000 training and 10,000 test images.

Usage:
    python benchmarks/full_scale.py                      # Fashion-MNIST from Debian's package
    python benchmarks/full_scale.py --data-dir ~/mnist   # the full MNIST (the four IDX files)
    python benchmarks/full_scale.py --device cuda        # on a GPU
    python benchmarks/full_scale.py --epochs 5           # a shorter run (written beside)

Trains the best CNN (``digitlab.mnist.recipes.BEST_NETWORK`` with ``BEST``) on
the training and validation images of a full-size MNIST-format folder (any
folder holding ``train-images-idx3-ubyte[.gz]`` and the three other files;
default: Fashion-MNIST, which ``apt-get install dataset-fashion-mnist`` puts
under /usr/share/datasets/fashion-mnist), then scores it once on the folder's
test images. For the full MNIST, download the four files (or run
``python scripts/train_cnn.py --source download`` once, which puts them in
``data/raw/mnist``) and pass that folder as ``--data-dir``.

Prints and writes ``results/full_scale/benchmark.json``: images per second,
seconds per epoch, training seconds, peak memory (resident set size, and GPU
memory on a GPU), test accuracy, the data set and the device. A run with other
options (``--epochs``, ``--quick``, another folder or device) writes beside it,
named by what differs. On 2 CPU cores a full run takes many minutes; the
results file states its cost.
"""

from __future__ import annotations

from pathlib import Path

from digitlab import devices, paths
from digitlab.cli import (
    add_device,
    add_seed,
    add_verbose_option,
    cli,
    configure_logging,
    script_parser,
)
from digitlab.data.sources import load_mnist
from digitlab.mnist.recipes import BEST, BEST_NETWORK
from digitlab.mnist.training import train_and_score
from digitlab.pipeline.benchmarks import add_output_option, output_path
from digitlab.repro import save_metrics

DEFAULTS = {"data_dir": paths.FASHION_MNIST_DIR, "epochs": None, "quick": False, "seed": 0,
            "device": "cpu"}


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULTS["data_dir"],
                        help="a full-size MNIST-format folder")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default: the recipe's {BEST.epochs} (1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one epoch on at most 2,000 training images: the plumbing")
    add_seed(parser)
    add_device(parser)
    add_output_option(parser, "full_scale/benchmark.json")
    parser.add_argument("--no-progress", action="store_true")
    add_verbose_option(parser)
    return parser.parse_args(argv)


def summarise(metrics: dict, device, data: dict) -> dict:
    """The numbers a reader compares across machines, and what they ran on."""
    epochs = metrics["epochs_run"]
    return {
        "test_accuracy": metrics["test_accuracy"], "test_errors": round(
            (1 - metrics["test_accuracy"]) * metrics["test_report"]["n"]),
        "n_test": metrics["test_report"]["n"], "n_train": metrics["n_train"],
        "epochs": epochs, "train_seconds": metrics["train_seconds"],
        "seconds_per_epoch": metrics["train_seconds"] / epochs,
        "images_per_second": metrics["images_per_second"],
        "precision": metrics["precision"], **devices.peak_memory(device),
        **devices.describe(device), "data_source": data["description"],
    }


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    device = devices.resolve(args.device)
    devices.set_threads(None, device)
    output = output_path(paths.results_dir() / "full_scale" / "benchmark.json",
                         {**vars(args), "device": device.type}, DEFAULTS, args.output)
    splits = load_mnist("local", root=args.data_dir, seed=args.seed)
    if args.quick:
        splits = splits.head(n_train=2000, n_val=500, n_test=1000)
    recipe = BEST.replace(epochs=args.epochs or (1 if args.quick else BEST.epochs))
    print(f"{splits.description}: training on {len(splits.train_labels) + len(splits.val_labels):,}"
          f" images for {recipe.epochs} epochs on {devices.device_name(device)}")
    _, _, metrics = train_and_score(BEST_NETWORK, recipe, splits, seed=args.seed, device=device,
                                    progress=not args.no_progress)
    result = summarise(metrics, device, splits.summary())
    save_metrics(output, result, seed=args.seed,
                 config={**vars(args), "recipe": recipe.as_dict(),
                         "network": BEST_NETWORK.as_dict()}, data=splits.summary())
    print(f"test accuracy {result['test_accuracy']:.4f} ({result['test_errors']} errors in "
          f"{result['n_test']:,}); {result['seconds_per_epoch']:.1f} s per epoch, "
          f"{result['images_per_second']:.0f} images/s, peak RSS {result['peak_rss_mib']:.0f} MiB"
          + (f", peak GPU memory {result['peak_gpu_memory_mib']:.0f} MiB"
             if "peak_gpu_memory_mib" in result else ""))
    print(f"written: {output}")


if __name__ == "__main__":
    main()
