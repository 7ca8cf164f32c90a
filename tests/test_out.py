"""`make ... OUT=DIR`: the whole pipeline writes data/, results/ and models/ under DIR."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from digitlab import paths

# Prints what a recipe of the Makefile sees, without running any of its targets.
PRINT_ROOT = "print-root: ; @echo root=$${DIGITLAB_ROOT-unset}"


def make_root(*variables: str) -> str:
    """``$DIGITLAB_ROOT`` as the recipes of the repository's Makefile see it."""
    # Run from `make test`, the variables of the outer make would reach this one too.
    outer = {"DIGITLAB_ROOT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "OUT"}
    env = {k: v for k, v in os.environ.items() if k not in outer}
    done = subprocess.run(["make", "-s", "--no-print-directory", "--eval", PRINT_ROOT,
                           "print-root", *variables], cwd=paths.PROJECT_ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_out_moves_the_root_of_every_recipe_and_nothing_is_exported_without_it():
    shown = make_root("OUT=runs/full-mnist").removeprefix("root=")
    assert Path(shown).resolve() == paths.full_mnist_run().resolve()
    assert make_root() == "root=unset"
    assert make_root("OUT=") == "root=unset"


def test_an_empty_root_is_the_repository(monkeypatch):
    monkeypatch.setenv("DIGITLAB_ROOT", "")
    assert paths.root() == paths.PROJECT_ROOT
    assert paths.results_dir() == paths.PROJECT_ROOT / "results"
    monkeypatch.setenv("DIGITLAB_ROOT", str(paths.full_mnist_run()))
    assert paths.results_dir() == paths.full_mnist_run() / "results"
