"""The learning journal's experiments at its own settings, and a verdict on each number.

The journal (the original MNIST CNN project) published six test accuracies on the
full MNIST: its 2-conv CNN after 8 epochs, its 3-conv CNN after 20, and the SGD row of
its variants table (plain, dropout, batch norm, both; epochs to converge beside each).
:func:`experiments` lists them at the journal's settings as far as it documents them:
its epochs, 32/64(/128) channels, ``nn.Dropout(p=0.3)`` after every ReLU (convolutions'
and the fully connected layer's), ``nn.BatchNorm2d`` after every convolution. Where it
is silent this module fixes the choice and says so: a fully connected layer of
:data:`HIDDEN` units in the variants (the usual examples'), batches of :data:`BATCH`,
each optimiser's learning rate chosen on the validation digits (:func:`selection_cells`,
:func:`choose_rates`: the plain variant, :data:`SELECTION_EPOCHS` epochs, seed 0; the
day-3 CNNs take the rate chosen for Adam there), SGD with the classic momentum 0.9. The
variants it ran with Adam and RMSprop but published no number for run from one seed.
Two departures, both for the validation reading and the time: every run trains on
55,000 digits (5,000 are held out to validate), and its forward passes run under
bfloat16 autocast where the device computes it natively.

Each run records, per epoch, the validation loss and accuracy and the test accuracy
(``fit(monitor=...)``), so that three readings come from one run (:func:`readings`): the
final epoch fixed in advance (the verdict's reading), the epoch the validation loss
chooses, and the best epoch read on the test digits, the optimistic reading a tutorial
may have published. :func:`verdict` judges a published number against them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import digitlab.architectures  # noqa: F401  (the journal's networks, by name, in any worker)
from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.fit import fit
from digitlab.engine.parallel import Cell
from digitlab.mnist.variants import epochs_to_converge
from digitlab.pipeline.published import PUBLISHED

SEEDS = (0, 1, 2)
HIDDEN = 128  # the fully connected layer of the usual PyTorch MNIST examples
BATCH = 64  # the usual examples' batch size; the journal's DataLoader does not say
DROPOUT = 0.3
VARIANT_OPTIONS = {
    "plain": {},
    "dropout": {"conv_dropout": DROPOUT, "dropout": DROPOUT},
    "batch-norm": {"batchnorm": True},
    "dropout + batch-norm": {"conv_dropout": DROPOUT, "dropout": DROPOUT, "batchnorm": True},
}
OPTIMIZERS = ("sgd", "adam", "rmsprop")
VARIANT_EPOCHS = 15  # the journal's slowest variant converged in about 15
# Candidate learning rates per optimiser, each tried on the plain variant for
# SELECTION_EPOCHS epochs (seed 0) and scored on the validation digits.
SELECTION_RATES = {"sgd": (0.01, 0.05), "adam": (1e-3, 3e-4), "rmsprop": (1e-3, 3e-4)}
SELECTION_EPOCHS = 2
# The day-3 CNNs name no optimiser; the notebook trains them with Adam, like most tutorials.
FIRST_CNN_OPTIMIZER = "adam"
# A published number within this of our mean counts as reproduced (15 digits of 10,000).
TOLERANCE = 0.0015
# Epochs to converge: the first epoch whose validation accuracy is within this of the run's
# best (5 of the 5,000 validation digits).
CONVERGED_WITHIN = 0.001


@dataclass(frozen=True)
class Experiment:
    """One row of the journal's results at its settings: a network, an optimiser, epochs."""

    key: str
    label: str
    network: NetworkSpec
    optimizer: str
    epochs: int
    seeds: tuple[int, ...]
    published: float | None = None  # the journal's test accuracy, None: not published
    published_epochs: int | None = None  # the journal's epochs to converge, if it gave them


def recipe(optimizer: str, lr: float, epochs: int) -> Recipe:
    """The journal's training at a learning rate: classic momentum for SGD, bfloat16 and
    channels-last where the CPU computes them (the cheapest epoch; docs/fullscale.md)."""
    return Recipe(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=BATCH, momentum=0.9,
                  nesterov=False, precision="bf16", channels_last=True)


def variant_network(variant: str) -> NetworkSpec:
    return NetworkSpec("cnn2", {"channels": (32, 64), "hidden": HIDDEN,
                                **VARIANT_OPTIONS[variant]})


def experiments(seeds: tuple[int, ...] = SEEDS) -> list[Experiment]:
    """The published rows first (three seeds each), then the unpublished optimiser cells
    (the first seed only)."""
    sgd = PUBLISHED["variants_sgd"]
    rows = [
        Experiment("cnn2", "2-conv CNN, 8 epochs", NetworkSpec("cnn2", {"channels": (32, 64)}),
                   FIRST_CNN_OPTIMIZER, 8, seeds, PUBLISHED["cnn2"]),
        Experiment("cnn3", "3-conv CNN, 20 epochs",
                   NetworkSpec("cnn3", {"channels": (32, 64, 128)}), FIRST_CNN_OPTIMIZER, 20,
                   seeds, PUBLISHED["cnn3"]),
    ]
    rows += [Experiment(f"{variant} / sgd", f"CNN {variant}, SGD", variant_network(variant),
                        "sgd", VARIANT_EPOCHS, seeds, sgd[variant]["accuracy"],
                        sgd[variant]["epochs"]) for variant in VARIANT_OPTIONS]
    rows += [Experiment(f"{variant} / {optimizer}", f"CNN {variant}, {optimizer}",
                        variant_network(variant), optimizer, VARIANT_EPOCHS, seeds[:1])
             for optimizer in OPTIMIZERS[1:] for variant in VARIANT_OPTIONS]
    return rows


# --- the runs ---------------------------------------------------------------------------------

def journal_run(data: dict, *, network: NetworkSpec, recipe: Recipe, seed: int,
                rows: str) -> dict:
    """One run (a study cell): train on ``data["train"]`` keeping the lowest-validation-loss
    epoch's weights, with the accuracy on ``data["test"]`` (when given) read after every
    epoch and used for nothing else. Returns the per-epoch record. ``rows`` names the
    data (:func:`digitlab.engine.parallel.fingerprint_arrays`), so that a run stored for
    another folder is never reused."""
    start = time.perf_counter()
    model = network.build(seed)
    history = fit(model, recipe, data["train"], data["val"], seed=seed, device=data["device"],
                  progress=data.get("progress", False), desc=f"{network.arch} seed {seed}",
                  monitor=data.get("test"))
    return {"seed": seed, "val_loss": history.val_loss, "val_acc": history.val_acc,
            "test_acc": history.monitor_acc, "train_loss": history.train_loss,
            "best_epoch": history.best_epoch, "epoch_seconds": history.epoch_seconds,
            "seconds": time.perf_counter() - start, "finished": time.time()}


def selection_cells(rows: str, epochs: int | None = None) -> list[Cell]:
    """Every candidate learning rate on the plain variant (for ``epochs``, default
    :data:`SELECTION_EPOCHS`); the study's data holds no test digits."""
    return [Cell(f"select {optimizer} lr {lr:g}", journal_run,
                 {"network": variant_network("plain"), "seed": 0, "rows": rows,
                  "recipe": recipe(optimizer, lr, epochs or SELECTION_EPOCHS)})
            for optimizer, rates in SELECTION_RATES.items() for lr in rates]


def choose_rates(cells: list[Cell], records: list[dict]) -> dict[str, dict]:
    """Per optimiser, the rate whose kept weights read the most validation digits right
    (the smaller rate on a tie); every candidate's score is kept for the results file."""
    chosen: dict[str, dict] = {}
    for cell, record in zip(cells, records, strict=True):
        optimizer, lr = cell.kwargs["recipe"].optimizer, cell.kwargs["recipe"].lr
        accuracy = record["val_acc"][record["best_epoch"] - 1]
        entry = chosen.setdefault(optimizer, {"candidates": {}})
        entry["candidates"][f"{lr:g}"] = accuracy
        best = entry.get("lr")
        if best is None or accuracy > entry["val_accuracy"] or (
                accuracy == entry["val_accuracy"] and lr < best):
            entry.update(lr=lr, val_accuracy=accuracy)
    return chosen


def experiment_cells(rows: list[Experiment], rates: dict[str, float], data_rows: str,
                     epochs: int | None = None) -> list[Cell]:
    """One cell per (row, seed), in the rows' order; ``epochs`` overrides (quick mode)."""
    return [Cell(f"{row.key} seed {seed}", journal_run,
                 {"network": row.network, "seed": seed, "rows": data_rows,
                  "recipe": recipe(row.optimizer, rates[row.optimizer], epochs or row.epochs)})
            for row in rows for seed in row.seeds]


# --- readings and verdicts --------------------------------------------------------------------

def readings(records: list[dict]) -> dict:
    """Three test readings per seed of one experiment, and its epochs to converge."""
    final = [r["test_acc"][-1] for r in records]
    chosen = [r["test_acc"][r["best_epoch"] - 1] for r in records]
    best = [max(r["test_acc"]) for r in records]
    return {
        "final": final, "validation_chosen": chosen, "best_on_test": best,
        "validation_epoch": [r["best_epoch"] for r in records],
        "best_on_test_epoch": [int(np.argmax(r["test_acc"])) + 1 for r in records],
        "epochs_to_converge": [epochs_to_converge(r["val_acc"], CONVERGED_WITHIN)
                               for r in records],
        # still improving: the last epoch is the run's best on validation
        "rising": [r["val_acc"][-1] >= max(r["val_acc"]) for r in records],
        "seconds": [r["seconds"] for r in records],
    }


def _agrees(published: int, values: list[int], n_test: int) -> str | None:
    """How ``published`` agrees with one reading over seeds, or None; all in digits read
    right out of ``n_test``, so that the edge of the tolerance is not a rounding matter."""
    if min(values) <= published <= max(values):
        return "within the seeds' range"
    if abs(published - float(np.mean(values))) <= round(TOLERANCE * n_test):
        return f"within {TOLERANCE * 100:.2f} point of our mean"
    return None


def verdict(published: float, final: list[float], best_on_test: list[float],
            rising: list[bool], n_test: int = 10_000,
            validation_chosen: list[float] | None = None) -> dict:
    """Reproduced when the published number is within the seeds' range of our final-epoch
    accuracies or within :data:`TOLERANCE` of their mean; else the likeliest reason: above
    ours, the best-epoch-on-test reading or more epochs; below every reading of ours (final,
    ``validation_chosen``, best on test), a weaker training than ours."""
    def digits_of(values):
        return [round(v * n_test) for v in values]

    right, ours = round(published * n_test), digits_of(final)
    digits = round(right - float(np.mean(ours)))
    how = _agrees(right, ours, n_test)
    if how:
        return {"reproduced": True, "digits": digits, "verdict": f"reproduced ({how})"}
    side = "above" if digits > 0 else "below"
    if _agrees(right, digits_of(best_on_test), n_test):
        reason = "it matches our best epoch read on the test digits"
    elif digits > 0 and sum(rising) * 2 > len(rising):
        reason = "ours were still improving at the last epoch: more epochs"
    elif digits < 0 and validation_chosen is not None and all(
            right < float(np.mean(digits_of(values))) - round(TOLERANCE * n_test)
            for values in (final, validation_chosen, best_on_test)):
        reason = "below all three readings of ours: a weaker training (rate, momentum not given)"
    else:
        reason = "not explained by the epoch read"
    return {"reproduced": False, "digits": digits,
            "verdict": f"not reproduced: {abs(digits)} digits {side} ours; {reason}"}


# --- the table --------------------------------------------------------------------------------

def report(rows: list[Experiment], records: list[dict], n_test: int) -> dict:
    """Per experiment: its settings, its runs' records, the three readings and, for a
    published number, the verdict. ``records`` are in :func:`experiment_cells`' order."""
    out, position = [], 0
    for row in rows:
        runs = records[position:position + len(row.seeds)]
        position += len(row.seeds)
        out.append({"key": row.key, "label": row.label, "optimizer": row.optimizer,
                    "epochs": len(runs[0]["test_acc"]), "seeds": list(row.seeds),
                    "network": row.network.as_dict(), "published": row.published,
                    "published_epochs": row.published_epochs, "runs": runs})
    return refresh({"rows": out, "n_test": n_test})


def refresh(report: dict) -> dict:
    """Recompute every row's readings and verdict and the headlines from the stored runs
    (``--table-only`` after a change to this module: no run is repeated)."""
    for entry in report["rows"]:
        entry["readings"] = r = readings(entry["runs"])
        entry.pop("verdict", None)
        if entry["published"] is not None:
            entry["verdict"] = verdict(entry["published"], r["final"], r["best_on_test"],
                                       r["rising"], report["n_test"], r["validation_chosen"])
    report["headlines"] = {row["key"]: headline(row) for row in report["rows"]
                           if row["published"] is not None}
    report["run_seconds"] = sum(s for row in report["rows"] for s in row["readings"]["seconds"])
    return report


def headline(row: dict) -> str:
    """One published row in a sentence: ours at the fixed epoch, the journal's, the verdict."""
    return (f"{_over_seeds(row['readings']['final'])} after {row['epochs']} epochs; journal "
            f"{row['published']:.2%}: {row['verdict']['verdict']}")


def _over_seeds(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2%} (1 seed)"
    return f"{np.mean(values):.2%} ± {np.std(values) * 100:.2f} (min {min(values):.2%})"


def setting_lines(report: dict) -> list[str]:
    """Where and how the runs went, and the rates validation chose, as the table's preface."""
    lines = []
    if "data" in report:
        lines.append(f"Data: {report['data']['description']}.")
    if "device_name" in report:
        execution = report.get("execution", {})
        lines.append(f"Device: {report['device_name']}; {execution.get('workers', 1)} worker(s), "
                     f"{execution.get('threads_per_run', '?')} thread(s) per run; "
                     f"{report.get('precision', 'bf16 autocast where native')}, channels-last, "
                     f"batches of {BATCH}.")
    if "rates" in report:
        lines.append("Learning rates chosen on the validation digits (plain CNN, "
                     f"{SELECTION_EPOCHS} epochs, seed 0): " + "; ".join(
                         f"{name} {entry['lr']:g} (of " + ", ".join(
                             f"{lr}: {acc:.2%}" for lr, acc in entry["candidates"].items())
                         + ")" for name, entry in report["rates"].items()) + ".")
    if "wall_seconds" in report:
        seconds, trained = report["wall_seconds"], report.get("trained_here")
        runs = sum(len(row["runs"]) for row in report["rows"])
        done = "" if trained is None else f", which trained {trained} of the {runs} runs"
        lines.append(f"Wall time of the command that wrote this table: {seconds:,.0f} s "
                     f"({seconds / 3600:.2f} h){done}; the runs' own seconds add up to "
                     f"{report['run_seconds']:,.0f} s (the rate selection's not counted).")
    return lines


def markdown(report: dict) -> str:
    """The table: the journal's number beside our three readings, the verdict, the cost."""
    preface = setting_lines(report)
    lines = [*preface, *([""] if preface else []),
        "| experiment | journal | ours, final epoch (fixed) | ours, epoch chosen by validation "
        "| ours, best epoch read on test (optimistic) | journal - ours, digits of "
        f"{report['n_test']:,} | verdict | epochs to converge, journal / ours | s per run |",
        "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        r = row["readings"]
        published = "not published" if row["published"] is None else f"{row['published']:.2%}"
        verdict_text = row.get("verdict", {}).get("verdict", "")
        digits = row["verdict"]["digits"] if "verdict" in row else ""
        converge = (f"{row['published_epochs'] or '-'} / "
                    + ", ".join(str(e) for e in r["epochs_to_converge"]))
        lines.append(
            f"| {row['label']} | {published} | {_over_seeds(r['final'])} after "
            f"{row['epochs']} | {_over_seeds(r['validation_chosen'])} (epochs "
            f"{', '.join(map(str, r['validation_epoch']))}) | {_over_seeds(r['best_on_test'])} "
            f"(epochs {', '.join(map(str, r['best_on_test_epoch']))}) | {digits} | "
            f"{verdict_text} | {converge} | {np.mean(r['seconds']):.0f} |")
    return "\n".join(lines)
