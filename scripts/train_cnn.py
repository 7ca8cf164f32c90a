"""Train a CNN on MNIST and save its checkpoint, metrics and training curves.

Usage:
    python scripts/train_cnn.py                      # the best CNN, recipe of the README
    python scripts/train_cnn.py --arch reference --optimizer adadelta --lr 1.0 \\
        --schedule step --batch-size 64 --epochs 14 --no-augment
    python scripts/train_cnn.py --source local --data-dir ~/fashion-mnist --name fashion_cnn
    python scripts/train_cnn.py --noise awgn         # train on noisy MNIST
    python scripts/train_cnn.py --noise awgn --no-fresh-noise   # on the fixed noisy set only

Result: ``models/mnist_cnn.pt`` (``models/mnist_cnn_<noise>.pt`` with --noise), and
``results/mnist/<name>/metrics.json`` (test accuracy, training seconds, images per
second, per-epoch history, data source) with ``training_curves.png`` beside it.
The defaults train the best CNN (``digitlab.mnist.training.BEST``, whose recipe
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

from digitlab import paths
from digitlab.cli import UserError, add_verbose_option, cli, configure_logging, script_parser
from digitlab.data.noise import NOISE_TYPES
from digitlab.data.sources import SOURCES, load_mnist
from digitlab.engine.checkpoint import save_checkpoint
from digitlab.engine.fit import set_threads
from digitlab.mnist.networks import ARCHITECTURES
from digitlab.mnist.training import (
    BEST,
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULES,
    add_noise,
    train_and_score,
)
from digitlab.plots import learning_curves
from digitlab.repro import save_figure, save_metrics, set_seed


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default=BEST.arch, help="network")
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
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=BEST.bf16,
                        help="bfloat16 autocast for the training forward passes")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        default=BEST.channels_last, help="channels-last memory layout")
    parser.add_argument("--train-on-val", action=argparse.BooleanOptionalAction,
                        default=BEST.train_on_val,
                        help="fold the validation split into training (the final model); "
                             "--no-train-on-val keeps it out and reports validation accuracy")
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout rate for architectures that take one (default: theirs)")
    parser.add_argument("--batchnorm", action="store_true", help="batch-norm for cnn2/cnn3")
    parser.add_argument("--source", choices=SOURCES, default="auto", help="MNIST source")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="MNIST-format folder for --source local/auto "
                             "(default: data/raw/mnist)")
    parser.add_argument("--noise", default=None, choices=NOISE_TYPES,
                        help="train and test on noisy MNIST of this type")
    parser.add_argument("--fresh-noise", action=argparse.BooleanOptionalAction, default=True,
                        help="with --noise: train on the clean digits with new noise every "
                             "batch (the best CNN's choice, make noisy-recipe); "
                             "--no-fresh-noise trains on the fixed noisy set, as n-MNIST "
                             "ships it. Validation and test are the fixed noisy sets either way")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, init and batches")
    parser.add_argument("--threads", type=int, default=None, help="default: one per core")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="checkpoint folder (default: models/)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="metrics folder (default: results/mnist/<name>)")
    parser.add_argument("--name", default=None,
                        help="run name (default: mnist_cnn, or mnist_cnn_<noise> with --noise)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_verbose_option(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        raise UserError("--epochs and --batch-size must be at least 1.")
    if (args.lr is not None and args.lr <= 0) or args.weight_decay < 0:
        raise UserError("--lr must be positive and --weight-decay at least 0.")
    for name in ("dropout", "label_smoothing"):
        value = getattr(args, name)
        if value is not None and not 0 <= value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {value}.")
    return args


def config_from_args(args):
    model_kwargs = {}
    if args.dropout is not None:
        model_kwargs["dropout"] = args.dropout
    if args.batchnorm:
        model_kwargs["batchnorm"] = True
    if args.arch == BEST.arch:  # the best CNN's own settings, unless overridden
        model_kwargs = {**BEST.model_kwargs, **model_kwargs}
    lr = args.lr
    if lr is None and (args.arch, args.optimizer) == (BEST.arch, BEST.optimizer):
        lr = BEST.lr
    return BEST.replace(arch=args.arch, model_kwargs=model_kwargs, optimizer=args.optimizer,
                        lr=lr, weight_decay=args.weight_decay, schedule=args.schedule,
                        epochs=args.epochs, batch_size=args.batch_size, augment=args.augment,
                        label_smoothing=args.label_smoothing, bf16=args.bf16,
                        channels_last=args.channels_last, train_on_val=args.train_on_val,
                        fresh_noise=args.noise if args.fresh_noise else None)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    config = config_from_args(args)
    name = args.name or ("mnist_cnn" if args.noise is None else f"mnist_cnn_{args.noise}")
    checkpoint = (args.output_dir or paths.models_dir()) / f"{name}.pt"
    results = args.results_dir or paths.mnist_results() / name
    threads = set_threads(args.threads)
    set_seed(args.seed)

    clean = load_mnist(args.source, root=args.data_dir, seed=args.seed)
    splits = clean if args.noise is None else add_noise(clean, args.noise, args.seed)
    model, history, metrics = train_and_score(config, splits, clean=clean, seed=args.seed,
                                              progress=not args.no_progress)
    metrics = {**metrics, "threads": threads, "history": history.as_dict()}
    val_accuracy, n_train = metrics["val_accuracy"], metrics["n_train"]
    data = {**splits.summary(), "noise": args.noise}
    save_checkpoint(checkpoint, model, arch=config.arch, model_kwargs=config.model_kwargs,
                    data=data, metrics={k: metrics[k] for k in (
                        "test_accuracy", "val_accuracy", "train_seconds", "epochs_run")},
                    extra={"config": config.as_dict(), "seed": args.seed})
    save_figure(learning_curves({config.arch: history}, title=f"{name}: {splits.source} data"),
                results / "training_curves.png")
    save_metrics(results / "metrics.json", metrics, seed=args.seed,
                 config={**config.as_dict(), "checkpoint": checkpoint, "threads": threads},
                 data=data)
    validation = ("trained on train + validation" if val_accuracy is None
                  else f"validation accuracy {val_accuracy:.4f}")
    print(f"{name} ({config.arch}) on {splits.description}, {n_train} training digits: "
          f"{validation}, test accuracy {metrics['test_accuracy']:.4f} "
          f"({len(splits.test_labels)} test images), {metrics['train_seconds']:.1f} s training "
          f"on {threads} thread(s)")
    print(f"checkpoint: {checkpoint}\nmetrics: {results / 'metrics.json'}")


if __name__ == "__main__":
    main()
