"""Execute a notebook from ``notebooks/`` and save the executed copy.

Usage:
    python scripts/run_notebook.py train_mini_mnist
    python scripts/run_notebook.py train_mini_mnist -p quick true -p seed 1

Result: ``results/notebooks/<name>.ipynb`` with every output, plus whatever
figures and metrics the notebook itself writes under ``results/``. If a cell
fails, the copy executed up to that cell is ``results/notebooks/<name>.failed.ipynb``,
beside the kernel's own log if it wrote one (both removed by the next successful run),
and the error names them; exit status 2.
"""

from __future__ import annotations

import json

from digitlab import paths
from digitlab.cli import cli, script_parser
from digitlab.pipeline.notebooks import execute_notebook


def parse_value(text: str):
    """Interpret ``-p`` values as JSON where possible (numbers, true/false), else text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("name", help="notebook name, without .ipynb")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override a parameter")
    parser.add_argument("--output-dir", default=paths.executed_notebooks_dir(),
                        help="where the executed copy goes")
    args = parser.parse_args(argv)
    params = {key: parse_value(value) for key, value in args.parameter}
    out = execute_notebook(args.name, params, args.output_dir)  # a failure: one sentence
    print(f"executed notebook written to {out}")


if __name__ == "__main__":
    main()
