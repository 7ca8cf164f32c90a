"""Every figure a notebook saves is shown in it: a check on each notebook run of the suite.

The tests that run notebooks (quick mode) call ``execute_notebook``, which hands the
notebook to papermill. :func:`every_saved_figure_is_shown` wraps that call for the length
of each test: it notes the PNG files under ``results/`` before the run, and after it
counts the images in the executed copy against the PNG files the run wrote (new, or
rewritten). A test whose notebook wrote more figures than it showed fails at teardown,
naming the notebook and the files; no notebook runs twice for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from digitlab import paths


def png_files(folder: Path) -> dict[Path, int]:
    """Every PNG under ``folder`` with its modification time (ns); hidden temporary files of
    an atomic write left out."""
    if not folder.is_dir():
        return {}
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*.png")
            if path.is_file() and not path.name.startswith(".")}


def written_since(before: dict[Path, int], folder: Path) -> list[Path]:
    """The PNG files under ``folder`` that are new or changed since ``before``."""
    return sorted(path for path, mtime in png_files(folder).items() if before.get(path) != mtime)


def shown_images(notebook) -> int:
    """How many PNG images the cells of an executed notebook display."""
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


@dataclass
class Run:
    notebook: str
    shown: int
    written: list[Path]

    @property
    def hides_a_figure(self) -> bool:
        return self.shown < len(self.written)

    def describe(self) -> str:
        names = ", ".join(path.name for path in self.written)
        return (f"notebook {self.notebook} shows {self.shown} figure(s) but wrote "
                f"{len(self.written)} PNG file(s) ({names}): save figures with "
                "digitlab.repro.save_figure, which also displays them")


def recording(execute, runs: list[Run]):
    """papermill's ``execute_notebook``, counting shown and written figures into ``runs``."""

    def execute_and_count(input_path, output_path, *args, **kwargs):
        results = paths.results_dir()
        before = png_files(results)
        notebook = execute(input_path, output_path, *args, **kwargs)
        runs.append(Run(Path(str(input_path)).stem, shown_images(notebook),
                        written_since(before, results)))
        return notebook

    return execute_and_count


@pytest.fixture(autouse=True)
def every_saved_figure_is_shown(monkeypatch):
    """Fail a test whose notebook run saved a figure it did not show."""
    import papermill

    runs: list[Run] = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        recording(papermill.execute_notebook, runs))
    yield runs
    hidden = [run.describe() for run in runs if run.hides_a_figure]
    assert not hidden, "; ".join(hidden)
