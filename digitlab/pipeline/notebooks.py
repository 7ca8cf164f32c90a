"""Execute the project's notebooks with papermill.

Notebooks are stored without outputs; executed copies (with outputs) go to
``results/notebooks/``. Parameters override the cell tagged ``parameters``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from digitlab import paths
from digitlab.errors import UserError
from digitlab.repro import atomic_target, atomic_write


def notebook_path(name: str) -> Path:
    path = paths.notebooks_dir() / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in paths.notebooks_dir().glob("*.ipynb")))
        raise UserError(f"no notebook named {name!r} in {paths.notebooks_dir()}; "
                        f"available: {available}.")
    return path


def execute_notebook(name: str, parameters: dict[str, Any] | None = None,
                     output_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> Path:
    """Run notebook ``name`` top to bottom; return the path of the executed copy.

    The kernel runs with the project root as working directory and inherits
    ``DIGITLAB_ROOT``, so it reads and writes the same data as the scripts.
    If a cell fails, the copy executed up to that cell is kept as
    ``NAME.failed.ipynb`` beside where the executed copy goes (a later success
    removes it) and a UserError names it.
    """
    import papermill

    source = notebook_path(name)
    output = Path(output_dir or paths.executed_notebooks_dir()) / source.name
    failed = failed_copy(output)
    with atomic_target(output) as tmp:
        try:
            papermill.execute_notebook(
                str(source), str(tmp), parameters=parameters or {}, kernel_name="python3",
                cwd=str(paths.PROJECT_ROOT), progress_bar=progress,
            )
        except Exception as err:  # papermill wraps the cell's error; name the notebook
            raise UserError(f"notebook {source.stem} failed: {_reason(err)}"
                            f"{_keep_failed_copy(tmp, failed)}") from err
    failed.unlink(missing_ok=True)
    return output


def figure_saver(folder: str | os.PathLike, collect: dict | None = None):
    """``show(fig, name, caption=None)`` for notebooks: save ``fig`` as ``folder/name``
    and return it, so the notebook displays it too; with ``collect``, also record
    ``collect[caption] = path`` (e.g. the figures a report links)."""
    from digitlab.repro import save_figure

    def show(fig, name: str, caption: str | None = None):
        path = save_figure(fig, Path(folder) / name)
        if collect is not None and caption is not None:
            collect[caption] = path
        return fig

    return show


def failed_copy(output: Path) -> Path:
    """Where the partial copy of a failed run of the notebook ``output`` is kept."""
    return output.with_name(f"{output.stem}.failed.ipynb")


def _keep_failed_copy(partial: Path, failed: Path) -> str:
    """Keep what papermill wrote before the failure; the end of the error sentence."""
    if not partial.is_file() or partial.stat().st_size == 0:
        return " (it stopped before writing any output)."
    with atomic_write(failed, "wb") as handle:
        handle.write(partial.read_bytes())
    return f"; see the executed copy up to the failing cell in {failed}."


def _reason(err: Exception) -> str:
    """The failing cell's exception as one line (``ZeroDivisionError: division by zero``)."""
    if getattr(err, "ename", None):
        return f"{err.ename}: {err.evalue}".strip().splitlines()[-1]
    lines = str(err).strip().splitlines()
    return lines[-1] if lines else type(err).__name__
