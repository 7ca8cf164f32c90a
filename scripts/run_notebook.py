"""Execute a notebook from ``notebooks/`` and save the executed copy.

Usage:
    python scripts/run_notebook.py train_mini_mnist
    python scripts/run_notebook.py train_mini_mnist -p quick true -p seed 1

Result: ``results/notebooks/<name>.ipynb`` with every output, plus whatever
figures and metrics the notebook itself writes under ``results/``.
"""

from __future__ import annotations

import json

from digitlab import paths
from digitlab.cli import UserError, cli, script_parser
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
    try:
        out = execute_notebook(args.name, params, args.output_dir)
    except Exception as err:  # papermill wraps kernel errors; name the notebook
        if isinstance(err, UserError):
            raise
        reason = str(err).strip().splitlines()[-1].rstrip(".")
        raise UserError(f"notebook {args.name} failed: {reason} "
                        f"(see the executed copy in {args.output_dir}).") from err
    print(f"executed notebook written to {out}")


if __name__ == "__main__":
    main()
