"""Mini MNIST benchmark: clustering and the model ladder on drawn digits and on noise.

Usage:
    python benchmarks/minimnist_ladder.py                 # seeds 0 1 2, 100 images per digit
    python benchmarks/minimnist_ladder.py --seeds 0 --n-per-class 300
    python benchmarks/minimnist_ladder.py --quick      # one seed, 20 images per digit

For every seed, generates the default-difficulty data set and the ``--mode
random`` control (CSV files under results/mini_mnist/benchmark/), clusters all
rows with K-Means (ARI), splits them 80/20 as scripts/split_data.py does and
scores the ladder chance < K-Means (Hungarian) < logistic regression <= MLP <=
CNN exactly as the notebook train_mini_mnist does (seed 0 reproduces the
pipeline's numbers). Prints one line per data set and seed, the mean over
seeds and a PASS/FAIL line per target, and writes
results/mini_mnist/benchmark.json (a run with other options writes beside it,
named by what differs, e.g. benchmark_quick.json).

Targets: default data: 0.2 <= ARI <= 0.7, MLP >= 90%, CNN >= MLP, ladder
ordered; random control: |ARI| <= 0.02 and MLP <= 20%.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from digitlab import devices, paths
from digitlab.cli import add_device, cli, script_parser
from digitlab.errors import UserError
from digitlab.metrics import adjusted_rand_index
from digitlab.minimnist import dataset
from digitlab.minimnist.ladder import (
    Part,
    fit_kmeans,
    run_ladder,
    stratified_split,
    validation_split,
)
from digitlab.minimnist.networks import RECIPE
from digitlab.pipeline.benchmarks import add_output_option, output_path
from digitlab.repro import save_metrics

NUMBERS = ("ari", "chance_accuracy", "kmeans_accuracy", "logistic_accuracy", "mlp_accuracy",
           "cnn_accuracy")


DEFAULTS = {"seeds": [0, 1, 2], "n_per_class": 100, "quick": False, "device": "cpu"}


def benchmark_one(mode: str, seed: int, n_per_class: int, folder: Path, device="cpu",
                  recipe=None) -> dict:
    """ARI of K-Means on every row, then the ladder on the seeded 80/20 split."""
    images, labels = dataset.generate(n_per_class, seed=seed, mode=mode)
    csv = dataset.write_csv(folder / f"{mode}_seed{seed}.csv", images, labels)
    images, labels = dataset.read_csv(csv)  # the same path the scripts take
    data = Part.from_pixels(images, labels)
    ari = adjusted_rand_index(labels, fit_kmeans(data.x, seed).labels_)
    train, test = stratified_split(labels, 0.2, seed)
    fit, val = validation_split(Part(data.x[train], data.y[train]), 0.2, seed)
    kwargs = {} if recipe is None else {"recipe": recipe}
    ladder = run_ladder(fit, val, Part(data.x[test], data.y[test]), seed, device=device, **kwargs)
    return {"ari": ari, **ladder.as_metrics()}


def checks(mean: dict[str, dict]) -> dict[str, bool]:
    d, r = mean["digits"], mean["random"]
    return {
        "default: 0.2 <= ARI <= 0.7": 0.2 <= d["ari"] <= 0.7,
        "default: MLP >= 0.90": d["mlp_accuracy"] >= 0.9,
        "default: CNN >= MLP": d["cnn_accuracy"] >= d["mlp_accuracy"],
        "default: ladder ordered (every seed)": d["ordered_all_seeds"],
        "random: |ARI| <= 0.02": abs(r["ari"]) <= 0.02,
        "random: MLP <= 0.20": r["mlp_accuracy"] <= 0.2,
    }


def parse_args(argv):
    parser = script_parser(__doc__)
    results = paths.mini_mnist_results()
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"],
                        help="data, split and model seeds")
    parser.add_argument("--n-per-class", type=int, default=DEFAULTS["n_per_class"],
                        help="images per digit")
    parser.add_argument("--quick", action="store_true",
                        help="the first seed, 20 images per digit, 20 epochs: the plumbing")
    parser.add_argument("--data-dir", default=str(results / "benchmark"),
                        help="where the generated CSV files go")
    add_device(parser)
    add_output_option(parser, "mini_mnist/benchmark.json")
    args = parser.parse_args(argv)
    if args.n_per_class < 5:
        raise UserError("--n-per-class must be at least 5 for the 80/20 and validation splits.")
    return args


@cli
def main(argv=None):
    args = parse_args(argv)
    device = devices.resolve(args.device)
    devices.set_threads(1, device)  # networks this small train fastest on one thread
    output = output_path(paths.mini_mnist_results() / "benchmark.json",
                         {**vars(args), "device": device.type}, DEFAULTS, args.output)
    seeds = args.seeds[:1] if args.quick else args.seeds
    n_per_class = 20 if args.quick else args.n_per_class
    recipe = RECIPE.replace(epochs=20) if args.quick else None
    runs: dict[str, dict[int, dict]] = {"digits": {}, "random": {}}
    jobs = [(mode, seed) for seed in seeds for mode in runs]
    start = time.perf_counter()
    for mode, seed in tqdm(jobs, desc="benchmark", unit="run"):
        runs[mode][seed] = result = benchmark_one(mode, seed, n_per_class,
                                                  Path(args.data_dir), device, recipe)
        tqdm.write(f"{mode:>6} seed {seed}: " +
                   "  ".join(f"{k.removesuffix('_accuracy')} {result[k]:.3f}" for k in NUMBERS) +
                   f"  ordered {result['ordered']}")
    mean = {mode: {k: float(np.mean([r[k] for r in per_seed.values()])) for k in NUMBERS}
            for mode, per_seed in runs.items()}
    for mode, per_seed in runs.items():
        mean[mode]["ordered_all_seeds"] = all(r["ordered"] for r in per_seed.values())
    passed = checks(mean)
    print(f"\nmean over seeds {seeds} ({n_per_class} images per digit):")
    for mode in runs:
        print(f"  {mode:>6}: " + "  ".join(f"{k} {mean[mode][k]:.3f}" for k in NUMBERS))
    for name, ok in passed.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    save_metrics(output, {"default": mean["digits"], "random": mean["random"],
                          "checks": passed, "all_passed": all(passed.values())},
                 seed=seeds[0], config={**vars(args), "seeds": seeds,
                                        "n_per_class": n_per_class, **devices.describe(device)},
                 per_seed={m: {str(s): r for s, r in per.items()} for m, per in runs.items()},
                 seconds=time.perf_counter() - start)
    print(f"written: {output}")


if __name__ == "__main__":
    main()
