"""Reproduce the learning journal's published MNIST numbers at its own settings.

Usage:
    python scripts/reproduce_journal.py --data-dir ~/datasets/mnist             # the full MNIST
    python scripts/reproduce_journal.py --data-dir DIR --workers 2              # 2 runs at a time
    python scripts/reproduce_journal.py --data-dir DIR --device cuda
    python scripts/reproduce_journal.py --table-only    # the table again, from the results file
    python scripts/reproduce_journal.py --data-dir DIR --quick     # the plumbing, in seconds

``make reproduce MNIST_DIR=FOLDER`` (``WORKERS=``, ``SCHEDULER=``, ``DEVICE=``, ``FRESH=1``).
First each optimiser's learning rate is chosen on the validation digits (the test digits
are not in that study's data), then every experiment of ``digitlab.mnist.journal`` runs
from seeds 0, 1 and 2 (one seed for the cells the journal published no number for),
with the test accuracy read after every epoch. Finished runs are stored under the
output folder's ``runs/`` as they finish: a stopped reproduction resumes where it
stopped, and one run again with the same code reuses them all.

Writes ``results/journal/reproduction.json`` (every run's per-epoch record, the chosen
rates, the readings and verdicts, the wall time and how many runs this command trained),
``reproduction.md`` (the table, the journal's number beside ours) and
``test_curves.png``. ``--table-only`` recomputes the readings and verdicts from the runs
in ``reproduction.json`` and rewrites the three files, training nothing. ``--quick``
writes beside them (``results/journal_quick/``): the first seed, two epochs, a few
hundred digits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from digitlab import devices, paths
from digitlab.cli import (
    add_device,
    add_study_options,
    add_verbose_option,
    cli,
    configure_logging,
    execution_from_args,
    script_parser,
)
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.engine.parallel import fingerprint_arrays, run_study
from digitlab.errors import UserError
from digitlab.mnist import journal
from digitlab.pipeline.benchmarks import FULL_MNIST_SIZE
from digitlab.pipeline.smoke import SMOKE
from digitlab.plots import journal_curves
from digitlab.repro import atomic_write, save_figure, save_json, save_metrics


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="MNIST-format folder (default: data/raw/mnist)")
    parser.add_argument("--quick", action="store_true",
                        help="the first seed, 2 epochs, a few hundred digits: the plumbing")
    parser.add_argument("--table-only", action="store_true",
                        help="write the table and figure again from the results file, no runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: results/journal, results/journal_quick)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(parser)
    add_study_options(parser)
    add_verbose_option(parser)
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    out = args.out or paths.results_dir() / ("journal_quick" if args.quick else "journal")
    if args.table_only:
        results = out / "reproduction.json"
        if not results.is_file():
            raise UserError(f"{results} does not exist yet; run the reproduction first "
                            "(make reproduce MNIST_DIR=FOLDER).")
        document = json.loads(results.read_text())
        document["metrics"] = journal.refresh(document["metrics"])
        save_json(document, results)
        write_report(document["metrics"], out)
        return
    start, started_at = time.perf_counter(), time.time()
    device = devices.resolve(args.device)
    devices.set_threads(None, device)
    splits = load_mnist("local", root=args.data_dir or paths.mnist_raw_dir(), seed=0)
    full = (len(splits.train_labels) + len(splits.val_labels),
            len(splits.test_labels)) == FULL_MNIST_SIZE
    if not args.quick and not full:
        raise UserError(f"{splits.description} is not the full MNIST (60,000 + 10,000 digits), "
                        "which the journal's numbers are about; give its folder "
                        "(make reproduce MNIST_DIR=FOLDER, or --data-dir FOLDER), or --quick "
                        "to check the plumbing.")
    if args.quick:
        splits = SMOKE.splits(splits)
    execution = execution_from_args(args)
    data = {"train": as_tensors(*splits.split("train")), "val": as_tensors(*splits.split("val")),
            "device": device}
    quick_epochs = SMOKE.curve_epochs if args.quick else None
    cells = journal.selection_cells(fingerprint_arrays(*data["train"], *data["val"]),
                                    quick_epochs)
    data["progress"] = not args.no_progress and execution.in_this_process(device, len(cells))
    selected = run_study(cells, shared=data, folder=out / "runs", execution=execution,
                         device=device, desc="learning rates (validation)")
    rates = journal.choose_rates(cells, selected)
    print("chosen on the validation digits: " + ", ".join(
        f"{name} lr {entry['lr']:g}" for name, entry in rates.items()), flush=True)
    rows = journal.experiments(journal.SEEDS[:1] if args.quick else journal.SEEDS)
    data["test"] = as_tensors(*splits.split("test"))
    cells = journal.experiment_cells(rows, {k: v["lr"] for k, v in rates.items()},
                                     fingerprint_arrays(*data["train"], *data["val"],
                                                        *data["test"]), quick_epochs)
    data["progress"] = not args.no_progress and execution.in_this_process(device, len(cells))
    records = run_study(cells, shared=data, folder=out / "runs", execution=execution,
                        device=device, desc="journal experiments")
    report = journal.report(rows, records, n_test=len(splits.test_labels))
    report.update(rates=rates, wall_seconds=time.perf_counter() - start,
                  trained_here=sum(r["finished"] >= started_at for r in records),
                  data=splits.summary(), quick=args.quick, **devices.describe(device),
                  execution=execution.describe(device),
                  precision=("bf16 autocast" if devices.autocast_dtype(device, "bf16")
                             else "float32"),
                  cpu_name=devices.device_name(devices.resolve("cpu")))
    save_metrics(out / "reproduction.json", report, seed=0,
                 config={**vars(args), "out": out}, data=splits.summary())
    write_report(report, out)


def write_report(report: dict, out: Path) -> None:
    """The markdown table and the test-accuracy curves, printed and written."""
    table = journal.markdown(report)
    with atomic_write(out / "reproduction.md") as handle:
        handle.write(table + "\n")
    save_figure(journal_curves(report["rows"]), out / "test_curves.png")
    print(table)
    print(f"written: {out / 'reproduction.md'}, {out / 'test_curves.png'}")


if __name__ == "__main__":
    main()
