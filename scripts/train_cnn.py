"""Train a CNN on MNIST and save its checkpoint, metrics and training curves.

Usage:
    python scripts/train_cnn.py                      # the best CNN, recipe of the README
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
that takes under a minute on two cores. Test
accuracy is in metrics.json under ``metrics.test_accuracy``.

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
from digitlab.engine import Network
from digitlab.engine.recipe import DEFAULT_LR, OPTIMIZERS, SCHEDULES
from digitlab.errors import UserError
from digitlab.mnist.networks import ARCHITECTURES
from digitlab.mnist.recipes import BEST, BEST_NETWORK
from digitlab.mnist.training import train_and_save
from digitlab.noisy.sets import corrupt_splits


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default=BEST_NETWORK.arch,
                        help="network")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=BEST.optimizer,
                        help="optimizer")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"(peak) learning rate; default {BEST.lr} for the best CNN with "
                             f"{BEST.optimizer}, else per optimizer: {DEFAULT_LR}")
    parser.add_argument("--weight-decay", type=float, default=BEST.weight_decay,
                        help="weight decay")
    parser.add_argument("--schedule", choices=SCHEDULES, default=BEST.schedule,
                        help="onecycle: per batch; step: x gamma 0.7 per epoch")
    parser.add_argument("--epochs", type=int, default=BEST.epochs, help="epochs")
    parser.add_argument("--batch-size", type=int, default=BEST.batch_size, help="batch size")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=BEST.augment,
                        help="random affine augmentation of training batches")
    parser.add_argument("--label-smoothing", type=float, default=BEST.label_smoothing,
                        help="cross-entropy label smoothing")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                        default=BEST.precision == "bf16",
                        help="bfloat16 autocast for the training forward passes, where the "
                             "device supports it")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        default=BEST.channels_last, help="channels-last memory layout")
    parser.add_argument("--train-on-val", action=argparse.BooleanOptionalAction,
                        default=BEST.train_on_val,
                        help="fold the validation split into training (the final model); "
                             "--no-train-on-val keeps it out and reports validation accuracy")
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout rate for architectures that take one (default: theirs)")
    parser.add_argument("--batchnorm", action="store_true", help="batch-norm for cnn2/cnn3")
    add_data_options(parser)
    parser.add_argument("--noise", default=None, choices=NOISE_TYPES,
                        help="train and test on noisy MNIST of this type")
    parser.add_argument("--fresh-noise", action=argparse.BooleanOptionalAction, default=True,
                        help="with --noise: train on the clean digits with new noise every "
                             "batch (the best CNN's choice, make noisy-recipe); "
                             "--no-fresh-noise trains on the fixed noisy set, as n-MNIST "
                             "ships it. Validation and test are the fixed noisy sets either way")
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
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}.")
    return args


def network_from_args(args) -> Network:
    options = {}
    if args.dropout is not None:
        options["dropout"] = args.dropout
    if args.batchnorm:
        options["batchnorm"] = True
    if args.arch == BEST_NETWORK.arch:  # the best CNN's own settings, unless overridden
        options = {**BEST_NETWORK.options, **options}
    return Network(args.arch, options)


def recipe_from_args(args):
    lr = args.lr
    if lr is None and (args.arch, args.optimizer) == (BEST_NETWORK.arch, BEST.optimizer):
        lr = BEST.lr
    return BEST.replace(optimizer=args.optimizer, lr=lr, weight_decay=args.weight_decay,
                        schedule=args.schedule, epochs=args.epochs, batch_size=args.batch_size,
                        augment=args.augment, label_smoothing=args.label_smoothing,
                        precision="bf16" if args.bf16 else "fp32",
                        channels_last=args.channels_last, train_on_val=args.train_on_val,
                        fresh_noise=args.noise if args.fresh_noise else None)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    with for_option("--device"):
        device = devices.resolve(args.device)
    network, recipe = network_from_args(args), recipe_from_args(args)
    name = args.name or ("mnist_cnn" if args.noise is None else f"mnist_cnn_{args.noise}")
    checkpoint = (args.output_dir or paths.models_dir()) / f"{name}.pt"
    results = args.results_dir or paths.mnist_results() / name
    devices.set_threads(args.threads, device)

    clean = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    splits = clean if args.noise is None else corrupt_splits(clean, args.noise, args.seed)
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
