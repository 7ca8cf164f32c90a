"""Wall-clock time of the README's two commands (and the benchmarks), once `.venv` exists.

Usage:
    python benchmarks/pipeline_time.py                 # times `make all` and `make test`
    python benchmarks/pipeline_time.py --targets all   # only the pipeline

Runs each make target from the repository root in turn, prints its wall time
and exit status, and writes ``results/pipeline_time.json`` (each target's output
goes to ``results/pipeline_time_logs/``). Budgets: `make all`
under 15 minutes on 2 cores, `make test` a few minutes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from digitlab import paths
from digitlab.cli import UserError, cli, script_parser
from digitlab.repro import save_metrics


def time_target(target: str, log_dir: Path) -> dict:
    """Run ``make TARGET`` with its output in ``log_dir/TARGET.log``; return the wall time."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{target}.log"
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(["make", target], cwd=paths.PROJECT_ROOT, stdout=handle,
                              stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "minutes": seconds / 60, "exit_status": done.returncode,
            "log": str(log)}


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--targets", nargs="+", default=["all", "test"], help="make targets")
    parser.add_argument("--output", type=Path, default=paths.results_dir() / "pipeline_time.json")
    args = parser.parse_args(argv)
    timings = {}
    for target in args.targets:
        timings[target] = time_target(target, args.output.parent / "pipeline_time_logs")
        print(f"make {target}: {timings[target]['seconds']:.0f} s "
              f"(exit status {timings[target]['exit_status']})", flush=True)
    save_metrics(args.output, timings, seed=None, config={"targets": args.targets})
    failed = [t for t, timing in timings.items() if timing["exit_status"] != 0]
    if failed:
        raise UserError(f"`make {failed[0]}` failed; its output is in {timings[failed[0]]['log']}.")


if __name__ == "__main__":
    main()
