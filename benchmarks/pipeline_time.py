"""Wall-clock time of the README's two commands (and the benchmarks), once `.venv` exists.

Usage:
    python benchmarks/pipeline_time.py                 # times `make all` and `make test`
    python benchmarks/pipeline_time.py --targets test  # re-times one; keeps the other's record
    python benchmarks/pipeline_time.py --targets all --make-vars MNIST_DIR=DIR OUT=runs/full-mnist

Runs each make target from the repository root in turn, prints its wall time
and exit status, and writes ``results/pipeline_time.json`` (each target's output
goes to ``results/pipeline_time_logs/``). A target that fails is recorded as
failed, without a wall time, and the results table shows "failed". A target not
run this time keeps its record from the existing file, with the time it was
measured (``finished``), so one can be re-timed without the other. Budgets:
`make all` under 15 minutes on 2 cores on the embedded default and under 60
minutes on the full MNIST (``--make-vars MNIST_DIR=FOLDER OUT=runs/full-mnist``,
passed to every make call: the results file then lands in that run's results/,
beside the tree it timed), `make test` a few minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.errors import UserError
from digitlab.repro import save_metrics


def time_target(target: str, log_dir: Path, directory: Path = paths.PROJECT_ROOT,
                make_vars: list[str] | None = None) -> dict:
    """Run ``make TARGET [VAR=VALUE ...]`` in ``directory`` with its output in
    ``log_dir/TARGET.log``; return its wall time, or ``failed`` and no wall time if it did
    not succeed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{target}.log"
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(["make", target, *(make_vars or [])], cwd=directory, stdout=handle,
                              stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    record = {"exit_status": done.returncode, "log": str(log), "make_vars": make_vars or [],
              "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    if done.returncode != 0:
        # The time to a failure is not the time of the pipeline: no number to quote.
        return {"failed": True, **record, "seconds_until_failure": seconds}
    return {"failed": False, **record, "seconds": seconds, "minutes": seconds / 60}


def make_var(text: str) -> str:
    """``VAR=VALUE``: anything else would be a make target, and timed as part of each one."""
    name, equals, _ = text.partition("=")
    if not (name and equals):
        raise argparse.ArgumentTypeError(f"expected VAR=VALUE, got {text!r}")
    return text


def default_output(make_vars: list[str], directory: Path) -> Path:
    """``pipeline_time.json`` in the results/ of the tree make writes: with ``OUT=DIR`` the
    Makefile moves results/ under DIR (relative to where make runs), so the full MNIST's
    times never overwrite the default's."""
    out = dict(var.partition("=")[::2] for var in make_vars).get("OUT")
    root = Path(os.path.abspath(directory / out)) if out else paths.root()
    return root / "results" / "pipeline_time.json"


def earlier_timings(path: Path) -> dict:
    """The per-target records of an existing results file ({} if there is none)."""
    try:
        return dict(json.loads(path.read_text())["metrics"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--targets", nargs="+", default=["all", "test"], help="make targets")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: results/pipeline_time.json of the tree make writes "
                             "(OUT/results/ when --make-vars holds OUT=)")
    parser.add_argument("--directory", type=Path, default=paths.PROJECT_ROOT,
                        help="where make runs (the folder of the Makefile)")
    parser.add_argument("--make-vars", nargs="*", type=make_var, default=[],
                        metavar="VAR=VALUE",
                        help="variables for every make call, e.g. MNIST_DIR=FOLDER "
                             "OUT=runs/full-mnist (the full-MNIST run)")
    args = parser.parse_args(argv)
    args.output = args.output or default_output(args.make_vars, args.directory)
    timings = earlier_timings(args.output)
    for target in args.targets:
        timing = timings[target] = time_target(target, args.output.parent / "pipeline_time_logs",
                                               args.directory, args.make_vars)
        took = ("failed after {seconds_until_failure:.0f} s" if timing["failed"]
                else "{seconds:.0f} s").format(**timing)
        print(f"make {target}: {took} (exit status {timing['exit_status']})", flush=True)
    save_metrics(args.output, timings, seed=None,
                 config={"targets": args.targets, "directory": args.directory,
                         "make_vars": args.make_vars})
    failed = [t for t in args.targets if timings[t]["failed"]]
    if failed:
        raise UserError(f"`make {failed[0]}` failed; its output is in {timings[failed[0]]['log']}.")


if __name__ == "__main__":
    main()
