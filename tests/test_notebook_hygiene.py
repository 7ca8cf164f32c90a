"""Notebooks are stored without outputs, start with a `parameters` cell that has
a `quick` switch, and match their py:percent twin cell for cell."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from digitlab import paths

NOTEBOOKS = sorted(paths.notebooks_dir().glob("*.ipynb"))


def test_every_track_has_its_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"train_mini_mnist", "noisy_mnist", "train_kde_model"} <= names
    assert sum(name.startswith("mnist_0") for name in names) == 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_parameterised_and_paired(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code), \
        f"{path.name} is stored with outputs; clear them before committing"
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "quick" in code[0].source
    twin = jupytext.read(path.with_suffix(".py"))
    assert [c.source for c in twin.cells] == [c.source for c in nb.cells], \
        f"{path.name} and its .py twin differ; run `make notebooks-sync`"
