"""What a quick run is: one preset for every ``--quick`` and every ``quick=True``.

Scripts and benchmarks take ``--quick``, notebooks a ``quick`` parameter; the
test suite runs each of them that way to check the plumbing in seconds. A quick
run trains every torch network for :attr:`Smoke.epochs` (or
:attr:`Smoke.curve_epochs` where a figure draws a learning curve), on the first
:attr:`Smoke.n_train` / :attr:`Smoke.n_val` / :attr:`Smoke.n_test` digits of
each split, for the first seed only, with :attr:`Smoke.folds` folds where it
cross-validates. Its numbers say that the pipeline runs, nothing about the
models; a quick run never writes a benchmark's canonical results file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Smoke:
    epochs: int = 1
    curve_epochs: int = 2  # two points make a learning curve
    n_train: int = 300
    n_val: int = 200
    n_test: int = 200
    seeds: int = 1
    folds: int = 2

    def splits(self, splits):
        """The first digits of each split (:meth:`digitlab.data.splits.Splits.head`)."""
        return splits.head(n_train=self.n_train, n_val=self.n_val, n_test=self.n_test)

    def recipe(self, recipe, curve: bool = False):
        """``recipe`` for :attr:`epochs` (:attr:`curve_epochs` with ``curve``) at most."""
        epochs = self.curve_epochs if curve else self.epochs
        return recipe.replace(epochs=min(recipe.epochs, epochs))


SMOKE = Smoke()
