"""Noisy MNIST benchmark: the best CNN vs a dense network on AWGN digits.

Usage:
    python benchmarks/noisy_mnist.py                 # embedded 5,000 digits, awgn, seed 0
    python benchmarks/noisy_mnist.py --noise motion-blur --source auto

What it does, on the train / validation / test split of the MNIST source
(``--source embedded`` by default: 3,500 / 500 / 1,000 real digits):

1. trains the project's best CNN on the training and validation digits with
   ``scripts/train_cnn.py --noise`` (its default recipe: new noise in every
   batch, chosen by ``make noisy-recipe``) and saves its checkpoint;
2. scores that checkpoint with ``scripts/evaluate_model.py --noise`` on the
   corrupted held-out test digits (never seen in training or model selection);
3. does the same with ``--no-fresh-noise``: the same network trained on the
   fixed noisy training digits only, as someone with just the n-MNIST files
   would (``cnn_fixed_noise``);
4. trains the notebook's DNN and improved DNN (``digitlab.noisy.study.MODELS``) on
   the corrupted training digits (validation for early stopping) and scores
   them on the same test set.

Result: the numbers printed, and ``results/noisy_mnist/benchmark.json`` with
``cnn.test_accuracy``, ``cnn_fixed_noise.test_accuracy``, ``dnn.test_accuracy``,
``dnn_improved.test_accuracy``, training seconds, the target (97.5 % for the
CNN) and whether it is met. The checkpoints go to ``models/mnist_cnn_<noise>.pt`` and
``models/mnist_cnn_<noise>_fixed.pt``. A few minutes on two cores.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.data.noise import NOISE_TYPES
from digitlab.data.sources import SOURCES, load_mnist
from digitlab.engine.fit import set_threads
from digitlab.mnist.training import add_noise
from digitlab.noisy import study
from digitlab.repro import save_metrics, set_seed

sys.path.insert(0, str(paths.PROJECT_ROOT / "scripts"))
import evaluate_model  # noqa: E402  (the scripts are the documented entry points)
import train_cnn  # noqa: E402

TARGET = 0.975


def run_cnn(args, workdir: Path, fresh_noise: bool) -> dict:
    """Train with train_cnn.py, score the saved checkpoint with evaluate_model.py."""
    name = f"mnist_cnn_{args.noise}" + ("" if fresh_noise else "_fixed")
    checkpoint, workdir = paths.models_dir() / f"{name}.pt", workdir / name
    common = ["--source", args.source, "--noise", args.noise, "--seed", str(args.seed)]
    recipe = [] if args.epochs is None else ["--epochs", str(args.epochs)]
    recipe += [] if fresh_noise else ["--no-fresh-noise"]
    train_cnn.main([*common, *recipe, "--output-dir", str(checkpoint.parent),
                    "--name", name, "--results-dir", str(workdir / "train_cnn"),
                    "--no-progress"])
    evaluate_model.main([*common, "--checkpoint", str(checkpoint),
                         "--output-dir", str(workdir / "evaluate_model")])
    trained = json.loads((workdir / "train_cnn" / "metrics.json").read_text())
    scored = json.loads((workdir / "evaluate_model" / "metrics.json").read_text())
    return {"arch": trained["run"]["config"]["arch"],
            "fresh_noise": trained["run"]["config"]["fresh_noise"],
            "test_accuracy": scored["metrics"]["accuracy"],
            "val_accuracy": trained["metrics"]["val_accuracy"],  # None: trained on val too
            "n_train": trained["metrics"]["n_train"],
            "train_seconds": trained["metrics"]["train_seconds"],
            "n_parameters": trained["metrics"]["n_parameters"],
            "checkpoint": checkpoint}


def run_dense(key: str, splits, seed: int) -> dict:
    config = study.MODELS[key]
    trained = study.train(config, splits.train_images, splits.train_labels, splits.val_images,
                          splits.val_labels, seed=seed, progress=False, desc=key)
    report = study.score(trained, splits.test_images, splits.test_labels)
    best = trained.history.best_epoch
    return {"model": study.describe(config), "test_accuracy": report["accuracy"],
            "val_accuracy": trained.history.val_acc[best - 1],
            "n_train": len(splits.train_labels),
            "train_seconds": trained.history.train_seconds}


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--source", choices=SOURCES, default="embedded", help="MNIST source")
    parser.add_argument("--noise", choices=NOISE_TYPES, default="awgn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="CNN epochs (default: the best CNN's recipe in train_cnn.py)")
    parser.add_argument("--output", type=Path, default=None,
                        help="benchmark JSON (default: results/noisy_mnist/benchmark.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    output = args.output or paths.noisy_results() / "benchmark.json"
    workdir = output.parent / "benchmark"

    cnn = run_cnn(args, workdir, fresh_noise=True)
    cnn_fixed = run_cnn(args, workdir, fresh_noise=False)
    threads = set_threads(1)  # as in the notebook: small dense networks
    set_seed(args.seed)
    splits = add_noise(load_mnist(args.source, seed=args.seed), args.noise, args.seed)
    results = {"cnn": cnn, "cnn_fixed_noise": cnn_fixed, **{key: run_dense(key, splits, args.seed)
                              for key in ("dnn", "dnn_improved")}}
    results["target_cnn_accuracy"] = TARGET
    results["cnn_meets_target"] = bool(cnn["test_accuracy"] >= TARGET)
    data = {**splits.summary(), "noise": args.noise}
    save_metrics(output, results, seed=args.seed, config={**vars(args), "threads": threads},
                 data=data)

    n_test = data["n_test"]
    print(f"\nNoisy MNIST benchmark: {args.noise}, {splits.description}")
    print(f"{'model':>15} {'test accuracy':>13} {'train s':>8}   ({n_test} test digits)")
    for key in ("cnn", "cnn_fixed_noise", "dnn", "dnn_improved"):
        row = results[key]
        print(f"{key:>15} {row['test_accuracy']:13.4f} {row['train_seconds']:8.1f}")
    verdict = "meets" if results["cnn_meets_target"] else "misses"
    print(f"best CNN {verdict} the {TARGET:.1%} target; results: {output}")


if __name__ == "__main__":
    main()
