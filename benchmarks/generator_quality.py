"""How recognisable and how new the generator's digits are, over seeds.

Usage:
    python benchmarks/generator_quality.py            # seeds 0 1 2 (a few minutes on 2 cores)
    python benchmarks/generator_quality.py --quick    # seed 0, tiny settings: the plumbing
    python benchmarks/generator_quality.py --source local --data-dir ~/mnist   # the full MNIST

For every seed (its own split of the embedded digits, its own PCA + KDE fit and
samples, its own CNN), it fits the generator as ``scripts/fit_generator.py``
does (50 components, bandwidth by cross-validation, gaussian kernel), trains the
best CNN on that seed's training and validation digits (the recipe of
``scripts/train_cnn.py``), draws 200 samples of every digit and measures
**recognisability** (the share the CNN reads as the requested digit) and
**novelty** (median distance to the nearest training image, samples over real
unseen test digits), as the notebook ``train_kde_model`` does for one seed.

Prints, per seed and over seeds, and writes ``results/generator/benchmark.json``:
``recognisability`` and ``novelty_median_ratio`` as mean, standard deviation,
minimum and per seed, with the CNN's accuracy on the real test digits beside
them. Only the default run writes that file; others write beside it.
"""

from __future__ import annotations

import numpy as np

from digitlab import devices, paths
from digitlab.cli import add_data_options, add_device, cli, script_parser
from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde
from digitlab.generator.quality import novelty, recognisability
from digitlab.mnist.recipes import RECIPES, recipe_for_size
from digitlab.mnist.training import train_and_score
from digitlab.pipeline.benchmarks import (
    add_output_option,
    full_mnist_naming,
    output_path,
    over_seeds,
)
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_metrics

DEFAULTS = {"source": "embedded", "data_dir": None, "seeds": [0, 1, 2], "per_digit": 200,
            "quick": False, "device": "cpu"}
# The generator's own quick settings beside the smoke preset's (folds, epochs, seeds).
QUICK = {"n_components": 15, "max_samples": 600, "grid": np.logspace(-0.6, 0.3, 4),
         "folds": SMOKE.folds, "per_digit": 20, "epochs": SMOKE.epochs}


def one_seed(source: str, data_dir, seed: int, per_digit: int, quick: bool, device,
             progress: bool = True) -> dict:
    splits = load_mnist(source, root=data_dir, seed=seed)
    images, labels = pca_kde.select_training_images(
        splits.train_images, splits.train_labels,
        QUICK["max_samples"] if quick else pca_kde.DEFAULT_MAX_SAMPLES, seed)
    fit_options = ({"n_components": QUICK["n_components"], "grid": QUICK["grid"],
                    "folds": QUICK["folds"]} if quick else {})
    # Both fits are minutes on the full MNIST: their progress bars show where a seed is.
    model, _ = pca_kde.fit_generator(images, labels, random_state=seed, progress=progress,
                                     **fit_options)
    # The CNN the pipeline trains on data of this size: FULL at full scale, else BEST.
    network, recipe = RECIPES[recipe_for_size(len(splits.train_labels) + len(splits.val_labels))]
    recipe = recipe.replace(epochs=QUICK["epochs"]) if quick else recipe
    trained = train_and_score(network, recipe, splits, seed=seed, device=device,
                              progress=progress)
    cnn = trained.model
    samples, requested = pca_kde.sample_per_digit(model, per_digit, seed=seed)
    recog = recognisability(cnn, samples, requested)
    nov = novelty(samples, images, splits.test_images)
    result = {"recognisability": recog["agreement"], "mean_confidence": recog["mean_confidence"],
              "per_digit_agreement": recog["per_digit_agreement"],
              "novelty_median_ratio": nov["median_ratio"],
              "near_copy_fraction": nov["near_copy_fraction"],
              "cnn_test_accuracy": trained.test_accuracy, "n_samples": recog["n"],
              "bandwidth": model.bandwidth, "components": model.n_components,
              "data": splits.summary()}
    print(f"seed {seed}: {result['recognisability']:.4f} of {recog['n']} samples read as the "
          f"requested digit (CNN {result['cnn_test_accuracy']:.4f} on real test digits); "
          f"novelty ratio {result['novelty_median_ratio']:.3f}", flush=True)
    return result


def parse_args(argv):
    parser = script_parser(__doc__)
    add_data_options(parser, default_source=DEFAULTS["source"])
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"])
    parser.add_argument("--per-digit", type=int, default=DEFAULTS["per_digit"],
                        help="samples of every digit")
    parser.add_argument("--quick", action="store_true",
                        help="the first seed, 15 components on 600 images, 1 CNN epoch")
    add_device(parser)
    add_output_option(parser, "generator/benchmark.json")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    device = devices.resolve(args.device)
    devices.set_threads(None, device)
    seeds = args.seeds[:SMOKE.seeds] if args.quick else args.seeds
    per_digit = QUICK["per_digit"] if args.quick else args.per_digit
    per_seed = {seed: one_seed(args.source, args.data_dir, seed, per_digit, args.quick, device,
                               progress=not args.no_progress)
                for seed in seeds}
    naming = full_mnist_naming({**vars(args), "device": device.type}, DEFAULTS,
                               per_seed[seeds[0]]["data"])
    output = output_path(paths.generator_results() / "benchmark.json", naming, DEFAULTS,
                         args.output)
    summary = {key: over_seeds([per_seed[s][key] for s in seeds], seeds)
               for key in ("recognisability", "novelty_median_ratio", "cnn_test_accuracy")}
    save_metrics(output, {**summary, "per_seed": per_seed}, seed=seeds[0],
                 config={**vars(args), "seeds": seeds, "per_digit": per_digit,
                         **devices.describe(device)}, data=per_seed[seeds[0]]["data"])
    r = summary["recognisability"]
    print(f"recognisability over seeds {seeds}: {r['mean']:.4f} ± {r['std']:.4f} "
          f"(min {r['min']:.4f}); written: {output}")


if __name__ == "__main__":
    main()
