"""How the full-MNIST recipe (``digitlab.mnist.recipes.FULL``) was chosen: on validation.

Usage:
    python benchmarks/mnist_full_recipe.py --data-dir ../mnist   # a full MNIST folder
    python benchmarks/mnist_full_recipe.py --quick --data-dir DIR # 1 epoch on a few hundred digits

Every candidate (``digitlab.mnist.recipes.CANDIDATES_FULL``: a network and a
recipe meant to train in at most 10 minutes on 2 CPU cores) trains on the 55,000 training
digits of the folder for its fixed epochs, as the final model will, and only then
is scored on the 5,000 validation digits (its seconds are training alone); the
test split is never loaded into a model. Of the candidates whose training would stay
within :data:`BUDGET_SECONDS` on all 60,000 digits (their seconds scaled by the
digits), the one with the highest validation accuracy (one digit
is 0.02 point) becomes ``FULL``; the final model then
trains on all 60,000 (``make mnist-bench MNIST_DIR=...`` scores it, once, on the
test digits). Writes ``results/mnist/recipe_selection_full.json`` (validation
accuracy, errors (also with each test-time shift of :data:`VALIDATION_SHIFTS`), training
seconds per candidate, the chosen one); a run with
other options writes beside it.
"""

from __future__ import annotations

from digitlab import devices, paths
from digitlab.cli import add_device, add_seed, cli, configure_logging, script_parser
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.engine.parallel import Cell, StudyStore, fingerprint_arrays, run_study
from digitlab.engine.predict import predict
from digitlab.errors import UserError
from digitlab.mnist.networks import has_shift_averaging, shift_view
from digitlab.mnist.recipes import CANDIDATES_FULL
from digitlab.mnist.variants import train_run
from digitlab.pipeline.benchmarks import add_output_option, output_path
from digitlab.pipeline.scale import FULL_SCALE_TRAIN
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_metrics

DEFAULTS = {"data_dir": None, "quick": False, "seed": 0, "device": "cpu"}
# The chosen recipe may train for at most this long on all 60,000 digits (2 CPU cores).
BUDGET_SECONDS = 600.0
# A test-time shift costs no training, only copies per prediction ((2s+1)^2 at shift s): each
# trained candidate is also scored on validation with each of these, so that a later round
# can weigh a larger shift against its errors (the choice itself uses the candidate's own).
VALIDATION_SHIFTS = (0, 1, 2, 3)


def full_set_seconds(seconds: float, n_train: int, n_val: int) -> float:
    """The training seconds on train + validation, where the chosen recipe trains at the end:
    an epoch's time grows with its digits."""
    return seconds * (n_train + n_val) / n_train


def choose(scores: dict[str, dict], budget: float = BUDGET_SECONDS) -> str | None:
    """The most accurate candidate whose training on train + validation stays within
    ``budget`` seconds (ties: the faster); None when every candidate takes longer."""
    within = [name for name, score in scores.items() if score["full_set_seconds"] <= budget]
    return max(within, key=lambda n: (scores[n]["val_accuracy"], -scores[n]["train_seconds"]),
               default=None)


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--data-dir", default=None,
                        help="the full MNIST folder (default: data/raw/mnist)")
    parser.add_argument("--quick", action="store_true",
                        help="one epoch per candidate on a few digits: the plumbing")
    add_seed(parser)
    add_device(parser)
    add_output_option(parser, "mnist/recipe_selection_full.json")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    device = devices.resolve(args.device)
    devices.set_threads(None, device)
    splits = load_mnist("local", root=args.data_dir or paths.mnist_raw_dir(), seed=args.seed)
    if not args.quick and len(splits.train_labels) + len(splits.val_labels) < FULL_SCALE_TRAIN:
        raise UserError(f"{splits.description} is not a full-size set; pass --data-dir with "
                        f"a folder of at least {FULL_SCALE_TRAIN:,} training digits, such as "
                        "the full MNIST's 60,000 (or --quick).")
    if args.quick:
        splits = SMOKE.splits(splits)
    output = output_path(paths.mnist_results() / "recipe_selection_full.json",
                         {**vars(args), "device": device.type, "data_dir": None}, DEFAULTS,
                         args.output)
    train, val = as_tensors(*splits.split("train")), as_tensors(*splits.split("val"))
    rows = fingerprint_arrays(*train, *val)
    cells = [Cell(name, score_candidate,
                  {"name": name, "network": network, "device": device, "rows": rows,
                   "seed": args.seed,
                   "recipe": recipe.replace(train_on_val=False,
                                            **({"epochs": SMOKE.epochs} if args.quick else {}))})
             for name, (network, recipe) in CANDIDATES_FULL.items()]
    # Each candidate is minutes of training: a finished one is kept in the store until the
    # whole selection is written, so an interrupted run resumes where it stopped.
    store = output.with_name(output.stem + "_runs")
    results = run_study(cells, shared={"train": train, "val": val,
                                       "progress": not args.no_progress},
                        folder=store, device=device, progress=False)
    scores = {cell.name: result for cell, result in zip(cells, results, strict=True)}
    chosen = choose(scores)  # the quick mode's one epoch on a few digits is within budget
    save_metrics(output, {"candidates": scores, "chosen": chosen, "budget_seconds": BUDGET_SECONDS,
                          "chosen_accuracy": scores[chosen]["val_accuracy"] if chosen else None},
                 seed=args.seed, config={**vars(args), **devices.describe(device)},
                 data=splits.summary())
    StudyStore(store).clear()  # the file is written: a timing benchmark run again measures anew
    if chosen is None:
        raise UserError(f"no candidate trained within {BUDGET_SECONDS:.0f} s on this machine; "
                        f"the seconds of each are in {output}.")
    print(f"chosen: {chosen}; written: {output}")


def score_candidate(data: dict, *, name, network, recipe, seed, device, rows) -> dict:
    """One cell of the selection: train on the training digits for the recipe's epochs
    (no validation meanwhile, so the seconds are training alone, as in the final model's
    run), then score once on the validation digits. ``rows`` names the data."""
    train, val = data["train"], data["val"]
    run = train_run(name, network, recipe, train, None, seed=seed, device=device,
                    progress=data["progress"])
    wrong = errors(run.model, val)
    by_shift = errors_by_shift(run.model, val)
    projected = full_set_seconds(run.seconds, len(train[1]), len(val[1]))
    shifts = "".join(f", {n} at shift {s}" for s, n in (by_shift or {}).items())
    print(f"{name}: validation accuracy {1 - wrong / len(val[1]):.4f} ({wrong} errors in "
          f"{len(val[1]):,}{shifts}), {run.seconds:.0f} s training on {len(train[1]):,} "
          f"digits ({projected:.0f} s on {len(train[1]) + len(val[1]):,})", flush=True)
    return {"val_accuracy": 1 - wrong / len(val[1]), "val_errors": wrong, "n_val": len(val[1]),
            "val_errors_by_shift": by_shift,
            "train_seconds": run.seconds, "full_set_seconds": projected,
            "within_budget": projected <= BUDGET_SECONDS, "network": network.as_dict(),
            "recipe": recipe.as_dict()}


def errors(model, data) -> int:
    """How many of ``data``'s digits ``model`` misreads."""
    x, y = data
    return int((predict(model, x) != y.numpy()).sum())


def errors_by_shift(model, data, shifts=VALIDATION_SHIFTS) -> dict[int, int] | None:
    """The errors on ``data`` with each test-time shift (None for a network that does not
    average over shifts)."""
    if not has_shift_averaging(model):
        return None
    by_shift = {}
    for shift in shifts:
        with shift_view(model, shift):
            by_shift[shift] = errors(model, data)
    return by_shift


if __name__ == "__main__":
    main()
