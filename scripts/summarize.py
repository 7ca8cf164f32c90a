"""Collect the headline numbers of one results tree into its table, and write its results page.

Usage:
    python scripts/summarize.py                  # writes results/summary.md and results/index.html
    python scripts/summarize.py --update-readme  # also rebuilds README.md's results table
    python scripts/summarize.py --update-readme --column "NAME=PATH/summary.md" ...
    python scripts/summarize.py --readme-only    # only the README, from the summary.md files

Result: a Markdown table whose every value is read from a JSON file under
RESULTS_DIR (results/, or OUT/results/ when make is given OUT=), with the
command that regenerates it; a command whose files are missing is no row but
one entry of the "Not run yet:" line under the table, with what it measures.
RESULTS_DIR/index.html shows the same table, then every figure under it with
its caption and command, and links to the report, the slides and the executed
notebooks; it opens straight from disk.

README.md's table sets several trees side by side, one value column each, read
from their summary.md files: by default "embedded digits (offline default)"
(results/summary.md) and "full MNIST" (runs/full-mnist/results/summary.md),
each left out while its summary.md does not exist. --column replaces them.
--readme-only rebuilds that table alone, reading no results tree: a tree whose
JSON files are gone keeps its committed summary.md.

`make all` begins with --begin and ends with --end. --begin records in
RESULTS_DIR/.make_all.json that a run starts now and rewrites index.html at
once with a banner saying the run has not finished, so an interrupted run never
leaves the earlier run's page looking current. --end (run only when every step
succeeded) records that the run finished, then writes the summary and the page
as usual. Until then summary.md and the page say the run is unfinished, and
the page tags each value, figure and notebook older than the run's start as
"earlier run".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.pipeline.dashboard import write_page, write_run_page
from digitlab.pipeline.summary import (
    ROWS,
    Column,
    begin_run,
    check_readme,
    default_columns,
    end_run,
    read_run,
    readme_table,
    render,
    run_note,
    update_readme,
)
from digitlab.repro import atomic_write


def column(spec: str) -> Column:
    """``NAME=PATH`` as a README column; a default column's name keeps its note."""
    name, equals, path = spec.partition("=")
    if not (name and equals and path):
        raise argparse.ArgumentTypeError(f"expected NAME=PATH_TO_SUMMARY_MD, got {spec!r}")
    notes = {default.name: default.note for default in default_columns()}
    return Column(name, Path(path), notes.get(name, ""))


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--results-dir", type=Path, default=paths.results_dir())
    parser.add_argument("--output", type=Path, default=None,
                        help="summary file (default: RESULTS_DIR/summary.md)")
    parser.add_argument("--html", type=Path, default=None,
                        help="results page (default: RESULTS_DIR/index.html)")
    parser.add_argument("--update-readme", action="store_true",
                        help="rebuild the table between the results markers of README.md")
    parser.add_argument("--readme", type=Path, default=paths.PROJECT_ROOT / "README.md")
    parser.add_argument("--column", type=column, action="append", metavar="NAME=PATH",
                        help="a value column of the README's table: NAME read from the "
                             "summary.md at PATH (repeatable, in order; default: the "
                             "offline default and the full-MNIST tree)")
    parser.add_argument("--readme-only", action="store_true",
                        help="only rebuild README.md's table from the columns' summary.md "
                             "(writes no summary.md and no results page)")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--begin", action="store_true",
                       help="record that make all starts now and rewrite the results page "
                            "with a banner saying the run has not finished (nothing else)")
    stage.add_argument("--end", action="store_true",
                       help="record that every step of make all succeeded, then summarise")
    args = parser.parse_args(argv)
    if args.begin:
        begin_run(args.results_dir)
        page = write_run_page(args.results_dir, args.html or args.results_dir / "index.html")
        print(f"make all begins: {page} says so until the run ends")
        return
    if args.end:
        end_run(args.results_dir)
    if args.readme_only:
        update_readme(readme_table(args.column), args.readme)
        print(f"results table of {args.readme} rebuilt")
        return
    if args.update_readme:
        check_readme(args.readme)  # before anything is written
    table = render(ROWS, args.results_dir)
    output = args.output or args.results_dir / "summary.md"
    # This tree's summary.md first: the README's table is read from it.
    note = run_note(read_run(args.results_dir))
    with atomic_write(output) as handle:
        handle.write("# digitlab results\n\n" + (f"{note}\n\n" if note else "") + table)
    if args.update_readme:
        columns = args.column or default_columns()
        update_readme(readme_table(columns), args.readme)
        if output.resolve() not in {c.summary.resolve() for c in columns}:
            # Not an error (a scratch tree), but its numbers are not in the README.
            print(f"note: {output} is no column of {args.readme}'s table (see --column)")
    page = write_page(args.results_dir, args.html or args.results_dir / "index.html")
    print(table)
    print(f"results page: {page}")


if __name__ == "__main__":
    main()
