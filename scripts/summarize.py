"""Collect the headline numbers from results/ into one table, and write the results page.

Usage:
    python scripts/summarize.py                  # writes results/summary.md and results/index.html
    python scripts/summarize.py --update-readme  # also refreshes README.md's results table

Result: a Markdown table whose every value is read from a JSON file under
results/, with the command that regenerates it; a command whose files are
missing is no row but one entry of the "Not run yet:" line under the table,
with what it measures. results/index.html shows the same table, then every figure
under results/ with its caption and command, and links to the report, the
slides and the executed notebooks; it opens straight from disk.
"""

from __future__ import annotations

from pathlib import Path

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.pipeline.dashboard import write_page
from digitlab.pipeline.summary import ROWS, check_readme, render, update_readme
from digitlab.repro import atomic_write


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--results-dir", type=Path, default=paths.results_dir())
    parser.add_argument("--output", type=Path, default=None,
                        help="summary file (default: RESULTS_DIR/summary.md)")
    parser.add_argument("--html", type=Path, default=None,
                        help="results page (default: RESULTS_DIR/index.html)")
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the table between the results markers of README.md")
    parser.add_argument("--readme", type=Path, default=paths.PROJECT_ROOT / "README.md")
    args = parser.parse_args(argv)
    if args.update_readme:
        check_readme(args.readme)  # before anything is written
    table = render(ROWS, args.results_dir)
    output = args.output or args.results_dir / "summary.md"
    with atomic_write(output) as handle:
        handle.write("# digitlab results\n\n" + table)
    if args.update_readme:
        update_readme(table, args.readme)
    page = write_page(args.results_dir, args.html or args.results_dir / "index.html")
    print(table)
    print(f"results page: {page}")


if __name__ == "__main__":
    main()
