"""Notebooks start with a `parameters` cell that has a `quick` switch and match their
py:percent twin cell for cell. Only the cell sources are read: a notebook opened, run and
saved in JupyterLab (outputs and all) passes, and git strips its outputs when it is
committed (the nbstripout filter that `make setup` configures). A notebook run shows
every figure it saves (checked on every run of the suite by tests/shown_figures.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pytest

from digitlab import paths
from digitlab.pipeline.notebooks import execute_notebook

NOTEBOOKS = sorted(paths.notebooks_dir().glob("*.ipynb"))
NBSTRIPOUT = Path(paths.PROJECT_ROOT) / ".venv" / "bin" / "nbstripout"


def check_notebook(path: Path) -> None:
    """The hygiene checks on the cell sources of ``path`` and its ``.py`` twin."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), \
        f"{path.name}: tag its first code cell `parameters`"
    assert "quick" in code[0].source, f"{path.name}: its parameters need a `quick` switch"
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    twin = jupytext.read(path.with_suffix(".py"))
    assert [c.source for c in twin.cells] == [c.source for c in nb.cells], \
        f"{path.name} and its .py twin differ; run `make notebooks-sync`"


def saved_after_running(path: Path) -> nbformat.NotebookNode:
    """``path`` as JupyterLab saves it after a run: every code cell numbered, with a
    printed line and an image among its outputs."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for count, cell in enumerate(code, start=1):
        cell.execution_count = count
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=f"cell {count} ran\n"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                         "text/plain": "<Figure>"}),
        ]
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def test_every_track_has_its_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"train_mini_mnist", "noisy_mnist", "train_kde_model"} <= names
    assert sum(name.startswith("mnist_0") for name in names) == 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_parameterised_and_paired(path):
    check_notebook(path)


@pytest.fixture
def lab_saved(tmp_path):
    """A copy of a notebook and its twin, the notebook saved from JupyterLab after a run."""
    source = paths.notebooks_dir() / "train_mini_mnist.ipynb"
    shutil.copy(source.with_suffix(".py"), tmp_path)
    copy = tmp_path / source.name
    nbformat.write(saved_after_running(source), copy)
    return copy


def test_a_notebook_saved_with_its_outputs_still_passes(lab_saved):
    assert any(cell.get("outputs") for cell in nbformat.read(lab_saved, as_version=4).cells)
    check_notebook(lab_saved)


def test_a_notebook_whose_cell_was_edited_without_its_twin_fails(lab_saved):
    nb = nbformat.read(lab_saved, as_version=4)
    nb.cells[-1].source += "\nprint('edited in the notebook only')"
    nbformat.write(nb, lab_saved)
    with pytest.raises(AssertionError, match="make notebooks-sync"):
        check_notebook(lab_saved)


def git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    return subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True)


def make(folder: Path, target: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    return subprocess.run(["make", "--no-print-directory", "-f",
                           str(paths.PROJECT_ROOT / "Makefile"), target,
                           f"VENV={paths.PROJECT_ROOT / '.venv'}"],
                          cwd=folder, env=env, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None or not NBSTRIPOUT.exists(),
                    reason="needs git and nbstripout (make setup)")
def test_git_commits_a_notebook_saved_with_outputs_without_them(lab_saved, tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    assert git(repo, "init", "-q").returncode == 0
    shutil.copy(paths.PROJECT_ROOT / ".gitattributes", repo)
    assert make(repo, "notebook-filter").returncode == 0
    shutil.copy(lab_saved, repo / "notebooks")
    shutil.copy(lab_saved.with_suffix(".py"), repo / "notebooks")
    assert git(repo, "add", "notebooks").returncode == 0
    committed = nbformat.reads(git(repo, "show", f":notebooks/{lab_saved.name}").stdout,
                               as_version=4)
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    original = nbformat.read(paths.notebooks_dir() / lab_saved.name, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in original.cells]
    assert code[0].metadata["tags"] == ["parameters"]
    # The working copy keeps its outputs for the student.
    assert any(cell.get("outputs") for cell in
               nbformat.read(repo / "notebooks" / lab_saved.name, as_version=4).cells)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_after_setup_a_fresh_clone_does_not_filter_its_notebooks_on_every_git_call(tmp_path):
    """In a fresh clone the index predates the filter's configuration, so git reruns the
    filter on every notebook at each `git status` until the index is rewritten; the
    results' commit lookup (a `git status` with a timeout) then timed out on every metrics
    file. `make notebook-filter` refreshes the index once, itself."""
    source = tmp_path / "source"
    (source / "notebooks").mkdir(parents=True)
    shutil.copy(paths.PROJECT_ROOT / ".gitattributes", source)
    shutil.copy(paths.notebooks_dir() / "mnist_01_exploration.ipynb", source / "notebooks")
    assert git(source, "init", "-q").returncode == 0
    assert git(source, "add", ".").returncode == 0
    assert git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
               "x").returncode == 0
    assert git(tmp_path, "clone", "-q", str(source), "clone").returncode == 0
    log, venv = tmp_path / "filter.log", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "nbstripout"  # slow like the real one, and counting its runs
    fake.write_text(f"#!/bin/sh\necho run >> {log}\nsleep 1\ncat\n")
    fake.chmod(0o755)
    clone = tmp_path / "clone"
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    assert subprocess.run(["make", "--no-print-directory", "-f",
                           str(paths.PROJECT_ROOT / "Makefile"), "notebook-filter",
                           f"VENV={venv}"], cwd=clone, env=env).returncode == 0
    runs = log.read_text().count("run") if log.exists() else 0
    assert git(clone, "status", "--porcelain").stdout == ""
    assert (log.read_text().count("run") if log.exists() else 0) == runs


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_configuring_the_filter_outside_a_git_checkout_is_harmless(tmp_path):
    result = make(tmp_path, "notebook-filter")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".git").exists()


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """A notebooks folder of the test's own, results under a project root of its own."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(paths, "notebooks_dir", lambda: folder)
    monkeypatch.setenv("DIGITLAB_ROOT", str(tmp_path))
    return folder


@pytest.mark.slow
def test_a_notebook_that_saves_a_figure_without_showing_it_is_caught(
        notebooks, every_saved_figure_is_shown):
    cells = [
        "quick = True",
        "import matplotlib.pyplot as plt\nfrom digitlab import paths\n"
        "from digitlab.repro import save_figure\nout = paths.results_dir() / 'demo'",
        "save_figure(plt.subplots()[0], out / 'shown.png')",
        "fig, ax = plt.subplots()\nfig.savefig(out / 'hidden.png')\nplt.close(fig)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, notebooks / "figures.ipynb")
    execute_notebook("figures", output_dir=notebooks.parent / "executed", progress=False)
    [run] = every_saved_figure_is_shown
    assert run.notebook == "figures" and run.shown == 1
    assert sorted(path.name for path in run.written) == ["hidden.png", "shown.png"]
    assert run.hides_a_figure and "hidden.png" in run.describe()
    every_saved_figure_is_shown.clear()  # caught: this test's own teardown has nothing to add
