"""Train a CNN on MNIST and save its checkpoint, metrics and training curves.

Usage:
    python scripts/train_cnn.py                      # the best CNN, recipe of the README
    python scripts/train_cnn.py --recipe reference   # the PyTorch example's network and recipe
    python scripts/train_cnn.py --set momentum=0.95 --set ema_decay=0.999 --option width=24
    python scripts/train_cnn.py --arch reference --optimizer adadelta --lr 1.0 \\
        --schedule step --batch-size 64 --epochs 14 --no-augment
    python scripts/train_cnn.py --source local --data-dir ~/fashion-mnist --name fashion_cnn
    python scripts/train_cnn.py --noise awgn         # train on noisy MNIST
    python scripts/train_cnn.py --noise awgn --no-fresh-noise   # on the fixed noisy set only
    python scripts/train_cnn.py --device cuda        # on a GPU (default auto: GPU if any)

Result: ``models/mnist_cnn.pt`` (``models/mnist_cnn_<noise>.pt`` with --noise), and
``results/mnist/<name>/metrics.json`` (test accuracy, training seconds, images per
second, per-epoch history, data source, device) with ``training_curves.png`` beside
it; the checkpoint and metrics.json are written as a pair, so an interrupted run
leaves both old or both new. The defaults train the best CNN
(``digitlab.mnist.recipes.BEST_NETWORK`` with ``BEST``, whose recipe
was chosen by cross-validation on train + validation,
``benchmarks/mnist_cnn_recipe.py``) on the training and validation digits
together, so no validation accuracy is reported; ``--no-train-on-val`` keeps
validation out and reports it. On the offline embedded data (4,000 digits)
that takes a minute or two on two cores (the results table's "best CNN, training
time"). Test accuracy is in metrics.json under ``metrics.test_accuracy``.

The run starts from a named recipe and its network (``--recipe best``, the default, or
``reference``: ``digitlab.mnist.recipes.RECIPES``). ``--set FIELD=VALUE`` (repeatable)
changes any field of ``digitlab.engine.Recipe``: numbers, ``true``/``false``, ``none`` for
an optional field, ``augment_params`` as a JSON object whose keys replace the recipe's
(``--set 'augment_params={"degrees": 15}'``); ``--help`` lists every field with the chosen
recipe's value. Each field is also a flag of its own name (``--momentum 0.95``,
``--no-augment``), applied before ``--set``; ``--bf16`` is ``--set precision=bf16``.
``--arch NAME`` picks another network and ``--option KEY=VALUE`` sets an argument of its
builder (``--dropout P`` and ``--batchnorm`` are shorthands). Without ``lr``, another
architecture or optimiser than the named recipe's trains at the optimiser's default rate.
``momentum`` and ``nesterov`` apply to SGD only (a warning says so otherwise).

With ``--noise``, validation and test are the fixed, seeded noisy digits that
``make_noisy_mnist.py`` saves, and the training digits get new noise of that
kind in every batch, after augmentation (``--no-fresh-noise``: train on the
fixed noisy training digits instead).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab import devices, paths
from digitlab.cli import (
    RunOptions,
    add_data_options,
    add_device,
    add_seed,
    add_verbose_option,
    cli,
    configure_logging,
    for_option,
    script_parser,
)
from digitlab.data.noise import NOISE_TYPES
from digitlab.data.sources import load_mnist
from digitlab.engine import NetworkSpec, Recipe
from digitlab.errors import UserError
from digitlab.mnist.networks import ARCHITECTURES
from digitlab.mnist.recipes import RECIPES, recipe_for_size
from digitlab.mnist.training import train_and_save
from digitlab.noisy.sets import corrupt_splits

RUN_OPTIONS = RunOptions(RECIPES, ARCHITECTURES, default="best", no_shorthand=("fresh_noise",),
                         by_size=recipe_for_size)


def parse_args(argv):
    parser = script_parser(__doc__)
    RUN_OPTIONS.add_to(parser, argv)
    legacy = parser.add_argument_group("network and precision shorthands")
    legacy.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                        help="--set precision=bf16 (--no-bf16: fp32)")
    legacy.add_argument("--dropout", type=float, default=argparse.SUPPRESS, metavar="P",
                        help="--option dropout=P for architectures that take one")
    legacy.add_argument("--batchnorm", action="store_true", help="--option batchnorm=true "
                        "(cnn2/cnn3)")
    add_data_options(parser)
    parser.add_argument("--noise", default=None, choices=NOISE_TYPES,
                        help="train and test on noisy MNIST of this type")
    parser.add_argument("--fresh-noise", action=argparse.BooleanOptionalAction, default=True,
                        help="with --noise: train on the clean digits with new noise every "
                             "batch (--set fresh_noise=<noise>; the best CNN's choice, make "
                             "noisy-recipe); --no-fresh-noise trains on the fixed noisy set, "
                             "as n-MNIST ships it. Validation and test are the fixed noisy "
                             "sets either way")
    add_seed(parser)
    add_device(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: one per core)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="checkpoint folder (default: models/)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="metrics folder (default: results/mnist/<name>)")
    parser.add_argument("--name", default=None,
                        help="run name (default: mnist_cnn, or mnist_cnn_<noise> with --noise)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_verbose_option(parser)
    args = parser.parse_args(argv)
    if getattr(args, "dropout", None) is not None and not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}.")
    return args


def network_and_recipe(args, n_train: int) -> tuple[NetworkSpec, Recipe]:
    """What to train: the named recipe (``auto``: by ``n_train``, the training + validation
    digits) and its network, changed by the flags."""
    bf16, dropout = getattr(args, "bf16", None), getattr(args, "dropout", None)
    settings = [] if bf16 is None else [f"precision={'bf16' if bf16 else 'fp32'}"]
    if args.noise is not None and args.fresh_noise:
        settings.append(f"fresh_noise={args.noise}")
    options = [] if dropout is None else [f"dropout={dropout}"]
    options += ["batchnorm=true"] if args.batchnorm else []
    return RUN_OPTIONS.resolve(args, settings=settings, options=options, n_train=n_train)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    with for_option("--device"):
        device = devices.resolve(args.device)
    name = args.name or ("mnist_cnn" if args.noise is None else f"mnist_cnn_{args.noise}")
    checkpoint = (args.output_dir or paths.models_dir()) / f"{name}.pt"
    results = args.results_dir or paths.mnist_results() / name
    devices.set_threads(args.threads, device)

    clean = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    splits = clean if args.noise is None else corrupt_splits(clean, args.noise, args.seed)
    n_train = len(splits.train_labels) + len(splits.val_labels)
    network, recipe = network_and_recipe(args, n_train)
    print(f"recipe {RUN_OPTIONS.recipe_name(args, n_train)!r} for {n_train:,} training digits: "
          f"{network.arch} {network.options}, {recipe.epochs} epochs, batch {recipe.batch_size}")
    metrics = train_and_save(network, recipe, splits, clean=clean, checkpoint=checkpoint,
                             results_dir=results, name=name, seed=args.seed, device=device,
                             progress=not args.no_progress)
    val_accuracy, n_train = metrics["val_accuracy"], metrics["n_train"]
    validation = ("trained on train + validation" if val_accuracy is None
                  else f"validation accuracy {val_accuracy:.4f}")
    print(f"{name} ({network.arch}) on {splits.description}, {n_train} training digits: "
          f"{validation}, test accuracy {metrics['test_accuracy']:.4f} "
          f"({len(splits.test_labels)} test images), {metrics['train_seconds']:.1f} s training "
          f"on {metrics['device_name']} ({metrics['device']})")
    print(f"checkpoint: {checkpoint}\nmetrics: {results / 'metrics.json'}")


if __name__ == "__main__":
    main()
