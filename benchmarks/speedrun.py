"""The speedrun: seconds of training to 99.0 %, 99.5 % or 99.7 % on the full MNIST.

Usage:
    python benchmarks/speedrun.py --data-dir DIR --target 99.0            # seeds 0-4, the anchor
    python benchmarks/speedrun.py --data-dir DIR --target 99.5 --device cuda
    python benchmarks/speedrun.py --data-dir DIR --target 99.0 --select   # choose on validation
    python benchmarks/speedrun.py --target 99.7 --profile    # multiply-adds: no data, no training
    python benchmarks/speedrun.py --data-dir DIR --target 99.0 --quick    # the plumbing

``--target`` picks a tier (``digitlab.mnist.speedrun.TIERS``) and with it a named recipe
fixed in advance (``fast99``, ``fast995``, ``fast997``: ``digitlab.mnist.recipes``). For
each seed it trains that recipe on the 60,000 training digits of the MNIST-format folder
(``--data-dir``; ``make speedrun MNIST_DIR=FOLDER TARGET=99.0``) and scores the 10,000
test digits once, after training. In the same invocation, on the same data, it trains
the anchor (``digitlab.mnist.speedrun.ANCHOR``: the best known GPU speed recipe in plain
PyTorch, one epoch) from the first ``--anchor-seeds`` seeds (default: seed 0 only).
Training seconds exclude reading the files (reported as load seconds) and include
everything else: making the tensors, moving them to the device, augmentation. Before
the first timed run of each network, two untimed batches set up its kernels, a one-off
cost of the process that would otherwise land on whichever run comes first
(``--no-warmup`` times cold starts instead).

Its last line, always:
``target T %: mean M % (min m %) over N seeds, training S s (max X s); anchor A s, ratio R``
(R: the anchor's mean training seconds over ours). Writes
``results/speedrun/<recipe>.json`` (e.g. ``fast99.json``: per seed the accuracy, errors
out of the test digits and seconds; the load seconds, the recipe, the multiply-adds per
image, the device, threads, torch version and CPU); a run with other options
(``--quick``, other seeds, another device, a folder that is not the full MNIST) writes
beside it, named by what differs.

``--select`` chooses the tier's recipe instead: every candidate of the tier
(``digitlab.mnist.recipes.SPEED_CANDIDATES``) trains on the 55,000 training digits and is
scored on the 5,000 validation digits (digitlab's seeded stratified split of the training
file); the test files are never opened. The fastest candidate whose validation accuracy
is at least the tier plus ``digitlab.mnist.speedrun.MARGIN`` (0.1 point) is chosen, the
most accurate if none is. Writes ``results/speedrun/selection_<recipe>.json``; the named
recipe is then set to the chosen candidate in ``digitlab.mnist.recipes.SPEED_CHOICES``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from digitlab import devices, paths
from digitlab.cli import add_device, add_verbose_option, cli, configure_logging, script_parser
from digitlab.errors import UserError
from digitlab.mnist.recipes import RECIPES, SPEED_CANDIDATES, SPEED_CHOICES
from digitlab.mnist.speedrun import (
    ANCHOR,
    ANCHOR_NETWORK,
    MARGIN,
    TIERS,
    choose,
    count_errors,
    last_line,
    local_files,
    macs_per_image,
    read_split,
    train_fast,
    training_macs,
    validation_split,
    warm_up,
)
from digitlab.pipeline.benchmarks import (
    FULL_MNIST_SIZE,
    add_output_option,
    full_mnist_naming,
    output_path,
    over_seeds,
)
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_metrics

DEFAULTS = {"quick": False, "seeds": [0, 1, 2, 3, 4], "anchor_seeds": 1, "data_dir": None,
            "threads": None, "no_warmup": False, "device": "cpu"}
SELECT_DEFAULTS = {"quick": False, "seed": 0, "data_dir": None, "threads": None,
                   "no_warmup": False, "device": "cpu"}


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--target", choices=tuple(TIERS), default="99.0",
                        help="the tier: the test accuracy (%%) the mean over seeds must reach")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="an MNIST-format folder, the four IDX files; none: "
                             "data/raw/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"],
                        help="one run of the tier's recipe per seed")
    parser.add_argument("--anchor-seeds", type=int, default=DEFAULTS["anchor_seeds"],
                        help="how many of the seeds (the first ones) the anchor trains from")
    parser.add_argument("--select", action="store_true",
                        help="choose the tier's recipe on the validation digits instead "
                             "(never opens the test files)")
    parser.add_argument("--seed", type=int, default=0,
                        help="with --select: the seed of the validation split, the "
                             "initialisation and the batches")
    parser.add_argument("--profile", action="store_true",
                        help="print the multiply-adds of the tier's recipe and the anchor "
                             "and stop (no data, no training)")
    parser.add_argument("--peak-gmacs", type=float, default=None,
                        help="with --profile: the device's peak rate in billions of "
                             "multiply-adds per second, to print the fewest seconds it allows")
    parser.add_argument("--quick", action="store_true",
                        help="the first seed, one epoch, the first few hundred digits: "
                             "the plumbing")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: one per core)")
    add_device(parser)
    add_output_option(parser, "speedrun/<recipe>.json")
    parser.add_argument("--no-warmup", action="store_true",
                        help="time each run from a cold start: no untimed warm-up batches of "
                             "each network before its first timed run")
    parser.add_argument("--no-progress", action="store_true")
    add_verbose_option(parser)
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    tier = TIERS[args.target]
    if args.profile:
        return profile(tier, args.peak_gmacs)
    device = devices.resolve(args.device)
    threads = devices.set_threads(args.threads, device)
    folder = args.data_dir or paths.mnist_raw_dir()
    if args.select:
        return select(args, tier, device, threads, folder)
    return speedrun(args, tier, device, threads, folder)


# --- the speedrun: the tier's recipe over seeds, then the anchor -------------------------------

def speedrun(args, tier, device, threads, folder: Path) -> None:
    files = local_files(folder)
    start = time.perf_counter()
    train, test = read_split(files, "train"), read_split(files, "test")
    load_seconds = time.perf_counter() - start
    data = data_summary(folder, len(train[1]), 0, len(test[1]))
    if args.quick:
        train, test = head(train, SMOKE.n_train), head(test, SMOKE.n_test)
    seeds = args.seeds[:SMOKE.seeds] if args.quick else args.seeds
    if args.anchor_seeds < 1:
        raise UserError(f"--anchor-seeds must be at least 1, got {args.anchor_seeds}.")
    anchor_seeds = seeds[:args.anchor_seeds]
    naming = full_mnist_naming({**vars(args), "device": device.type, "source": "local"},
                               {**DEFAULTS, "source": "local"}, data)
    canonical = paths.results_dir() / "speedrun" / f"{tier.recipe_name}.json"
    output = output_path(canonical, {k: naming[k] for k in DEFAULTS}, DEFAULTS, args.output)
    network, recipe = RECIPES[tier.recipe_name]
    anchor = ANCHOR
    if args.quick:
        recipe, anchor = SMOKE.recipe(recipe), SMOKE.recipe(anchor)
    print(f"{data['description']}: read in {load_seconds:.2f} s; recipe {tier.recipe_name!r} "
          f"({SPEED_CHOICES[tier.recipe_name]}), {recipe.epochs} epoch(s), seeds {seeds}; "
          f"anchor from seeds {anchor_seeds}; {devices.device_name(device)}, "
          f"{threads or 'GPU'} thread(s)")
    note_other_choice(tier)
    if not args.no_warmup:
        warm_up(network, recipe, *train, device=device)
        warm_up(ANCHOR_NETWORK, anchor, *train, device=device)
    ours, anchors = [], []
    for seed in seeds:
        ours.append(run_once(tier.recipe_name, network, recipe, train, test, seed=seed,
                             device=device, progress=not args.no_progress))
        if seed in anchor_seeds:
            anchors.append(run_once("anchor", ANCHOR_NETWORK, anchor, train, test, seed=seed,
                                    device=device,
                                    progress=not args.no_progress))
    report = summarise(tier, ours, anchors, seeds, anchor_seeds, n_test=len(test[1]))
    report.update(load_seconds=load_seconds, n_train=len(train[1]), n_test=len(test[1]),
                  recipe_name=tier.recipe_name, candidate=SPEED_CHOICES[tier.recipe_name],
                  network=network.as_dict(), recipe=recipe.as_dict(),
                  anchor_network=ANCHOR_NETWORK.as_dict(), anchor_recipe=anchor.as_dict(),
                  anchor_betas=list(ANCHOR.betas), warmup=not args.no_warmup,
                  cost=cost(network, recipe, len(train[1])),
                  anchor_cost=cost(ANCHOR_NETWORK, anchor, len(train[1])),
                  **machine(device))
    save_metrics(output, report, seed=seeds[0],
                 config={**vars(args), "seeds": seeds, "anchor_seeds": anchor_seeds},
                 data=data)
    print(f"anchor: test accuracy {report['anchor']['test_accuracy']['mean']:.2%} "
          f"(seeds {anchor_seeds}); target {'met' if report['target']['met'] else 'not met'} "
          f"({tier.accuracy:.1%} {tier.time_goal()}); written: {output}")
    print(report["last_line"])


def run_once(name, network, recipe, train, test, *, seed, device, progress=True) -> dict:
    """One training run from ``seed``, scored once on the test digits afterwards."""
    run = train_fast(network, recipe, *train, seed=seed, device=device,
                     progress=progress, desc=f"{name} seed {seed}")
    start = time.perf_counter()
    errors = count_errors(run.model, *test)
    result = {"seed": seed, "test_accuracy": 1 - errors / len(test[1]), "test_errors": errors,
              "train_seconds": run.seconds, "eval_seconds": time.perf_counter() - start,
              "precision": run.precision}
    print(f"  {name} seed {seed}: test accuracy {result['test_accuracy']:.2%} ({errors} errors "
          f"in {len(test[1]):,}), {run.seconds:.2f} s training ({run.precision})", flush=True)
    return result


def summarise(tier, ours: list[dict], anchors: list[dict], seeds, anchor_seeds,
              n_test: int) -> dict:
    """The tier's numbers over seeds, the anchor's, the ratio, the target and the last line."""
    accuracies = [r["test_accuracy"] for r in ours]
    seconds = [r["train_seconds"] for r in ours]
    anchor_seconds = float(np.mean([r["train_seconds"] for r in anchors]))
    ratio = anchor_seconds / float(np.mean(seconds))
    mean_accuracy = float(np.mean(accuracies))
    line = last_line(tier, accuracies, seconds, anchor_seconds)
    return {
        "tier": tier.target, "seeds": list(seeds),
        "test_accuracy": over_seeds(accuracies, seeds),
        "test_errors": {str(r["seed"]): r["test_errors"] for r in ours},
        "train_seconds": over_seeds(seconds, seeds), "per_seed": ours,
        "anchor": {"seeds": list(anchor_seeds), "per_seed": anchors,
                   "test_accuracy": over_seeds([r["test_accuracy"] for r in anchors],
                                               anchor_seeds),
                   "train_seconds": over_seeds([r["train_seconds"] for r in anchors],
                                               anchor_seeds)},
        "ratio": ratio,
        "target": {"accuracy": tier.accuracy, "max_seconds": tier.max_seconds,
                   "min_ratio": tier.min_ratio, "judged_on": "mean over seeds",
                   "accuracy_met": mean_accuracy >= tier.accuracy,
                   "time_met": tier.time_met(float(np.mean(seconds)), ratio),
                   "met": mean_accuracy >= tier.accuracy
                   and tier.time_met(float(np.mean(seconds)), ratio)},
        "headline": (f"{mean_accuracy:.2%} (min {min(accuracies):.2%}, {len(seeds)} seeds) in "
                     f"{np.mean(seconds):.2f} s; anchor {anchor_seconds:.2f} s, ratio "
                     f"{ratio:.2f}"),
        "last_line": line,
    }


def note_other_choice(tier) -> None:
    """Say so when the tier's selection file chose another candidate than the named recipe."""
    selection = paths.results_dir() / "speedrun" / f"selection_{tier.recipe_name}.json"
    if not selection.is_file():
        return
    try:
        chosen = json.loads(selection.read_text())["metrics"]["chosen"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return  # not this command's file to judge; the run itself does not need it
    if chosen != SPEED_CHOICES[tier.recipe_name]:
        print(f"note: {selection} chose {chosen!r}, but {tier.recipe_name!r} is "
              f"{SPEED_CHOICES[tier.recipe_name]!r} (digitlab/mnist/recipes.py SPEED_CHOICES)")


# --- the selection: every candidate on the validation digits ---------------------------------

def select(args, tier, device, threads, folder: Path) -> None:
    files = local_files(folder)
    start = time.perf_counter()
    train, val = validation_split(*read_split(files, "train"), seed=args.seed)
    load_seconds = time.perf_counter() - start
    data = data_summary(folder, len(train[1]), len(val[1]), None)
    if args.quick:
        train, val = head(train, SMOKE.n_train), head(val, SMOKE.n_val)
    full_size = data["n_train"] + data["n_val"] == FULL_MNIST_SIZE[0]
    options = {**vars(args), "device": device.type, "data_dir": None if full_size
               else args.data_dir}
    canonical = paths.results_dir() / "speedrun" / f"selection_{tier.recipe_name}.json"
    output = output_path(canonical, {k: options[k] for k in SELECT_DEFAULTS}, SELECT_DEFAULTS,
                         args.output)
    print(f"{data['description']}: {len(train[1]):,} training and {len(val[1]):,} validation "
          f"digits (test files not opened); {len(SPEED_CANDIDATES[tier.recipe_name])} "
          f"candidates for {tier.recipe_name!r}; {devices.device_name(device)}")
    scores = {}
    for name, (network, recipe) in SPEED_CANDIDATES[tier.recipe_name].items():
        recipe = SMOKE.recipe(recipe) if args.quick else recipe
        if not args.no_warmup:
            warm_up(network, recipe, *train, device=device)
        scores[name] = score_candidate(name, network, recipe, train, val, seed=args.seed,
                                       device=device, progress=not args.no_progress)
    chosen, why = choose(scores, tier.accuracy)
    report = {"tier": tier.target, "recipe_name": tier.recipe_name, "margin": MARGIN,
              "threshold": tier.accuracy + MARGIN, "candidates": scores, "chosen": chosen,
              "why": why, "chosen_accuracy": scores[chosen]["val_accuracy"],
              "named_choice": SPEED_CHOICES[tier.recipe_name], "load_seconds": load_seconds,
              "warmup": not args.no_warmup,
              **machine(device)}
    save_metrics(output, report, seed=args.seed, config=vars(args), data=data)
    print(f"chosen for {tier.recipe_name!r}: {chosen} ({why}); written: {output}")


def score_candidate(name, network, recipe, train, val, *, seed, device, progress) -> dict:
    """Train on the training digits, then score once on the validation digits."""
    run = train_fast(network, recipe, *train, seed=seed, device=device, progress=progress,
                     desc=name)
    errors = count_errors(run.model, *val)
    n_train, n_val = len(train[1]), len(val[1])
    result = {"val_accuracy": 1 - errors / n_val, "val_errors": errors, "n_val": n_val,
              "train_seconds": run.seconds,
              # the final recipe trains on train + validation: an epoch grows with its digits
              "full_set_seconds": run.seconds * (n_train + n_val) / n_train,
              "precision": run.precision, "network": network.as_dict(),
              "recipe": recipe.as_dict(), "cost": cost(network, recipe, n_train + n_val)}
    print(f"  {name}: validation accuracy {result['val_accuracy']:.2%} ({errors} errors in "
          f"{n_val:,}), {run.seconds:.2f} s training ({run.precision})", flush=True)
    return result


# --- what each run costs, and where it ran ----------------------------------------------------

def cost(network, recipe, n_images: int) -> dict:
    """Multiply-adds per image (forward) and of the whole training."""
    forward = macs_per_image(network.build(seed=0))
    return {"macs_per_image": forward, "epochs": recipe.epochs, "images": n_images,
            "training_macs": training_macs(forward, n_images, recipe.epochs)}


def profile(tier, peak_gmacs: float | None) -> None:
    """Print the multiply-adds of the tier's recipe and the anchor on the 60,000 digits."""
    n_images = FULL_MNIST_SIZE[0]
    network, recipe = RECIPES[tier.recipe_name]
    for name, (net, rec) in {tier.recipe_name: (network, recipe),
                             "anchor": (ANCHOR_NETWORK, ANCHOR)}.items():
        c = cost(net, rec, n_images)
        floor = (f"; at least {c['training_macs'] / (peak_gmacs * 1e9):.2f} s at "
                 f"{peak_gmacs:g} GMAC/s" if peak_gmacs else "")
        print(f"{name}: {c['macs_per_image']:,} multiply-adds per image (forward); "
              f"{c['epochs']} epoch(s) x {n_images:,} images x 3 (forward + backward) = "
              f"{c['training_macs'] / 1e9:,.1f} billion{floor}")


def machine(device) -> dict:
    """Where the run computed: device, threads, torch version and the CPU."""
    return {**devices.describe(device), "torch_version": torch.__version__,
            "cpu_name": devices.device_name(torch.device("cpu")),
            "native_bf16": devices.autocast_dtype(device, "bf16") is not None}


def data_summary(folder: Path, n_train: int, n_val: int, n_test: int | None) -> dict:
    """The data as every results file records it (the table checks one scale per tree)."""
    test = "" if n_test is None else f" and {n_test:,} test"
    return {"source": "local", "n_train": n_train, "n_val": n_val, "n_test": n_test,
            "description": f"local MNIST-format folder {folder}: {n_train + n_val:,} "
                           f"training{test} images"}


def head(split: tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    return split[0][:n], split[1][:n]


if __name__ == "__main__":
    main()
