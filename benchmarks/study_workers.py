"""What more workers buy: the recipe comparison run with 1 and with N worker processes.

Usage:
    python benchmarks/study_workers.py             # 2 candidates x 4 folds, 1 then 2 workers
    python benchmarks/study_workers.py --workers 4 --candidates "15 epochs" "25 epochs"
    python benchmarks/study_workers.py --quick     # the smoke preset: checks the plumbing

Runs ``benchmarks/mnist_cnn_recipe.py`` twice, back to back (like ``make
mnist-recipe WORKERS=1`` then ``WORKERS=N``, with ``--threads 1 --fresh``), on
the same candidates, with one CPU thread per run both times: a run's numbers depend on
its thread count, so only then can the two tables be compared digit for digit.
Each run starts afresh (``--fresh``), so neither reuses the other's stored
folds. The default candidates are a subset of the comparison (the chosen
recipe and a shorter one), so that the two runs together take minutes, not
hours, on two cores.

Result: ``results/mnist/study_workers.json``: both wall times, their ratio, the
worker and thread counts, and whether every candidate's out-of-fold accuracy,
log-loss and predictions are identical; the two comparison tables are beside
it (``study_workers_1.json``, ``study_workers_N.json``). Runs with other
options write beside it, named by what differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from digitlab import paths
from digitlab.cli import add_device, cli, script_parser
from digitlab.errors import UserError
from digitlab.pipeline.benchmarks import add_output_option, output_path
from digitlab.repro import save_metrics

CANDIDATES = ["15 epochs", "30 epochs, batch 32, shifted copies at test"]
COMPARED = ("accuracy", "log_loss", "fold_accuracy", "oof_predictions")
DEFAULTS = {"workers": 2, "candidates": CANDIDATES, "quick": False, "device": "cpu"}
RECIPE_BENCHMARK = paths.PROJECT_ROOT / "benchmarks" / "mnist_cnn_recipe.py"


def run_comparison(workers: int, candidates: list[str], output: Path, quick: bool,
                   device: str) -> dict:
    """One run of the recipe comparison in its own process; its results document."""
    command = [sys.executable, str(RECIPE_BENCHMARK), "--workers", str(workers),
               "--threads", "1", "--fresh", "--device", device, "--output", str(output),
               "--only", *candidates, *(["--quick"] if quick else [])]
    print(f"$ {' '.join(command[1:])}", flush=True)
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0:
        raise UserError(f"the recipe comparison with {workers} worker(s) failed (exit status "
                        f"{finished.returncode}); its message is above.")
    return json.loads(output.read_text())["metrics"]


def identical(one: dict, other: dict) -> bool:
    """Every candidate's out-of-fold scores and predictions are the same in both tables."""
    return one.keys() == other.keys() and all(
        one[name][key] == other[name][key] for name in one for key in COMPARED)


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--workers", type=int, default=DEFAULTS["workers"],
                        help="worker processes of the second run (the first has one)")
    parser.add_argument("--candidates", nargs="+", default=CANDIDATES, metavar="NAME",
                        help="recipe comparison candidates to run (quoted names)")
    parser.add_argument("--quick", action="store_true",
                        help="the smoke preset, the first candidate only: the plumbing")
    add_device(parser, default="cpu")
    add_output_option(parser, "mnist/study_workers.json")
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    if args.workers < 2:
        raise UserError(f"--workers must be at least 2 to compare with one, got {args.workers}.")
    candidates = args.candidates[:1] if args.quick else args.candidates
    output = output_path(paths.mnist_results() / "study_workers.json", vars(args), DEFAULTS,
                         args.output)
    tables = {}
    for workers in (1, args.workers):
        tables[workers] = run_comparison(
            workers, candidates, output.with_name(f"{output.stem}_{workers}.json"),
            args.quick, args.device)
    one, many = tables[1], tables[args.workers]
    report = {"workers": [1, args.workers], "threads_per_run": 1, "candidates": candidates,
              "wall_seconds": {str(w): t["wall_seconds"] for w, t in tables.items()},
              "speedup": one["wall_seconds"] / many["wall_seconds"],
              "identical": identical(one["candidates"], many["candidates"])}
    save_metrics(output, report, seed=0, config={**vars(args), "candidates": candidates})
    print(f"1 worker: {one['wall_seconds']:.0f} s; {args.workers} workers: "
          f"{many['wall_seconds']:.0f} s ({report['speedup']:.2f}x); tables identical: "
          f"{report['identical']}\nwritten: {output}")
    if not report["identical"]:
        raise UserError("the two tables differ: a run's numbers depended on its worker.")


if __name__ == "__main__":
    main()
