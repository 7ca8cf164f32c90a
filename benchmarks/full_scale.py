"""The best CNN's recipe at full scale: 60,000 training and 10,000 test images.

Usage:
    python benchmarks/full_scale.py                      # the full MNIST in data/raw/mnist
    python benchmarks/full_scale.py --data-dir ~/mnist   # the full MNIST in another folder
    python benchmarks/full_scale.py --dataset fashion    # Fashion-MNIST from Debian's package
    python benchmarks/full_scale.py --device cuda        # on a GPU
    python benchmarks/full_scale.py --epochs 5           # a shorter run (written beside)

Trains the best CNN with the named recipe for a set of this size
(``digitlab.mnist.recipes.recipe_for_size``: ``FULL`` for 60,000 images) on
the training and validation images of a full-size MNIST-format folder (any
folder holding ``train-images-idx3-ubyte[.gz]`` and the three other files),
then scores it once on the folder's test images. The folder is ``--data-dir``
(``make full-scale-bench MNIST_DIR=FOLDER``); without it, ``data/raw/mnist``
for the full MNIST (``python scripts/train_cnn.py --source download`` once puts
the four files there), or with ``--dataset fashion`` the Fashion-MNIST that
``apt-get install dataset-fashion-mnist`` puts under
/usr/share/datasets/fashion-mnist.

Prints and writes ``results/full_scale/benchmark.json``: images per second,
seconds per epoch, training seconds, peak memory (resident set size, and GPU
memory on a GPU), test accuracy, the data set and the device. Any folder with
the full 60,000 + 10,000 images counts as the default data (the file names
it); a run with other options (``--dataset fashion``, ``--epochs``,
``--quick``, a smaller folder, another device) writes beside it, named by what
differs. On 2 CPU cores a full run takes many minutes; the results file states
its cost.
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
from digitlab.data.sources import find_local_files, load_mnist
from digitlab.errors import UserError
from digitlab.mnist.recipes import RECIPES, recipe_for_size
from digitlab.mnist.training import train_and_score
from digitlab.pipeline.benchmarks import add_output_option, full_mnist_naming, output_path
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_metrics

DEFAULTS = {"dataset": "mnist", "data_dir": None, "epochs": None, "quick": False, "seed": 0,
            "device": "cpu"}


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--dataset", choices=("mnist", "fashion"), default=DEFAULTS["dataset"],
                        help="which set to look for when --data-dir is not given: the full "
                             "MNIST in data/raw/mnist, or Fashion-MNIST in "
                             f"{paths.FASHION_MNIST_DIR}")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="a full-size MNIST-format folder (default: see --dataset)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: the recipe's (1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one epoch on at most 2,000 training images: the plumbing")
    add_seed(parser)
    add_device(parser)
    add_output_option(parser, "full_scale/benchmark.json")
    parser.add_argument("--no-progress", action="store_true")
    add_verbose_option(parser)
    return parser.parse_args(argv)


def data_folder(dataset: str, data_dir: Path | None) -> Path:
    """The folder to train on: ``data_dir`` if given, else where ``dataset`` is installed."""
    if data_dir is not None:
        return data_dir  # load_mnist says what is missing if the files are not there
    folder = paths.mnist_raw_dir() if dataset == "mnist" else paths.FASHION_MNIST_DIR
    if find_local_files(folder) is not None:
        return folder
    if dataset == "mnist":
        raise UserError(f"no full MNIST in {folder} (the four IDX files); copy them there, "
                        "pass --data-dir FOLDER (make full-scale-bench MNIST_DIR=FOLDER), "
                        "or use --dataset fashion for Fashion-MNIST.")
    raise UserError(f"no Fashion-MNIST in {folder}; install it with `sudo apt-get install "
                    "dataset-fashion-mnist` or pass --data-dir FOLDER.")


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
    folder = data_folder(args.dataset, args.data_dir)
    splits = load_mnist("local", root=folder, seed=args.seed)
    naming = full_mnist_naming({**vars(args), "device": device.type, "data_dir": folder},
                               DEFAULTS, splits.summary())
    output = output_path(paths.results_dir() / "full_scale" / "benchmark.json", naming,
                         DEFAULTS, args.output)
    # The named recipe for a training set of this size: FULL for the 60,000 (BEST if smaller).
    recipe_name = recipe_for_size(len(splits.train_labels) + len(splits.val_labels))
    network, recipe = RECIPES[recipe_name]
    if args.quick:
        splits = SMOKE.splits(splits)
    recipe = recipe.replace(epochs=args.epochs or (SMOKE.epochs if args.quick else recipe.epochs))
    print(f"{splits.description}: recipe {recipe_name!r}, training on "
          f"{len(splits.train_labels) + len(splits.val_labels):,} images for {recipe.epochs} "
          f"epochs on {devices.device_name(device)}")
    run = train_and_score(network, recipe, splits, seed=args.seed, device=device,
                          progress=not args.no_progress)
    result = summarise(run.to_dict(), device, splits.summary())
    save_metrics(output, result, seed=args.seed,
                 config={**vars(args), "recipe_name": recipe_name, "recipe": recipe.as_dict(),
                         "network": network.as_dict()}, data=splits.summary())
    print(f"test accuracy {result['test_accuracy']:.4f} ({result['test_errors']} errors in "
          f"{result['n_test']:,}); {result['seconds_per_epoch']:.1f} s per epoch, "
          f"{result['images_per_second']:.0f} images/s, peak RSS {result['peak_rss_mib']:.0f} MiB"
          + (f", peak GPU memory {result['peak_gpu_memory_mib']:.0f} MiB"
             if "peak_gpu_memory_mib" in result else ""))
    print(f"written: {output}")


if __name__ == "__main__":
    main()
