"""Writes that belong together land together: the noisy sets with their manifest, the
generator's model with its figures and metrics, and a `make all` run's results page.

The interruption tests stop a second run at its k-th write (a file saved, a file or
folder renamed), for every k, and check that what is on disk is exactly the first run's
files or exactly the second run's, never a mix."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import digitlab.noisy.sets as noisy_sets
from digitlab import repro
from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde
from digitlab.paths import PROJECT_ROOT
from digitlab.pipeline import summary
from digitlab.pipeline.dashboard import render_page
from digitlab.repro import atomic_folder


def script(name: str):
    """The module ``scripts/<name>.py`` (scripts are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def no_git(monkeypatch):
    """Every metrics file asks git for the commit (a subprocess, slow on a busy machine);
    which commit it names is not what these tests check."""
    monkeypatch.setattr(repro, "git_commit", lambda: "0" * 40)


@pytest.fixture(scope="module")
def small_splits():
    """A few embedded digits of every split, per seed: the writes, not the data, are tested."""
    @functools.cache
    def load(source, root=None, seed=0):
        full = load_mnist("embedded", seed=seed)
        return full.replace(train_images=full.train_images[:200],
                            train_labels=full.train_labels[:200],
                            val_images=full.val_images[:40], val_labels=full.val_labels[:40],
                            test_images=full.test_images[:40], test_labels=full.test_labels[:40])
    return load


def small_figure(*args, **kwargs):
    """A figure that saves in milliseconds, standing in for the scripts' own; drawn from
    their first array, so figures of two runs differ as theirs do."""
    values = np.ravel(next((a for a in args if isinstance(a, np.ndarray)), np.arange(4)))
    fig = plt.figure(figsize=(0.2, 0.2))
    fig.figimage(np.resize(values.astype(float), (8, 8)))
    return fig


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under ``folders`` (hidden ones too: a leftover temporary counts) by path."""
    return {p.as_posix(): p.read_bytes() for folder in folders if folder.exists()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Interrupt:
    """Ctrl-C at the ``at``-th call of any of the wrapped write functions."""

    def __init__(self, monkeypatch, at: int, targets: list[tuple[object, str]]):
        self.at, self.calls = at, 0
        for owner, name in targets:
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, function):
        def counted(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return function(*args, **kwargs)
        return counted


def interrupted_runs(monkeypatch, run, targets, check):
    """``run()`` interrupted at its 1st, 2nd, ... write until it completes; ``check(k,
    completed)`` after each. Returns how many writes a complete run made."""
    k = 0
    while True:
        k += 1
        with monkeypatch.context() as patch:
            interrupt = Interrupt(patch, k, targets)
            try:
                run()
                completed = True
            except SystemExit as stop:
                assert stop.code == 130  # the script reports the interruption
                completed = False
        plt.close("all")
        check(k, completed)
        if completed:
            assert interrupt.calls < k
            return interrupt.calls


# --- the folder swap itself ------------------------------------------------------------------

def test_a_failed_group_leaves_the_old_folder_and_a_complete_one_replaces_it(tmp_path):
    target = tmp_path / "group"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    (target / "gone.txt").write_text("old only")
    with pytest.raises(RuntimeError), atomic_folder(target) as staging:
        (staging / "a.txt").write_text("new a")
        raise RuntimeError("stopped half way")
    assert snapshot(tmp_path) == {f"{target}/a.txt": b"old a", f"{target}/gone.txt": b"old only"}
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("new a")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.txt").write_text("new b")
    # Exactly the new group: the old-only file went with the old folder, no temporaries left.
    assert snapshot(tmp_path) == {f"{target}/a.txt": b"new a", f"{target}/sub/b.txt": b"new b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # not the private 0700 of mkdtemp


def test_a_symlinked_folder_is_replaced_where_its_files_are(tmp_path):
    real = tmp_path / "big-disk" / "noisy"
    real.mkdir(parents=True)
    (real / "a.txt").write_text("old")
    link = tmp_path / "noisy"
    link.symlink_to(real)
    with atomic_folder(link) as staging:
        (staging / "a.txt").write_text("new")
    # The link still points at the user's disk, which now holds the new group and nothing else.
    assert link.is_symlink() and (real / "a.txt").read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "big-disk").iterdir()) == ["noisy"]


# --- the noisy sets ---------------------------------------------------------------------------

def test_interrupting_make_noisy_mnist_leaves_the_old_sets_or_the_new_ones(
        project_root, tmp_path, monkeypatch, small_splits):
    module = script("make_noisy_mnist")
    monkeypatch.setattr(module, "load_mnist", small_splits)
    monkeypatch.setattr(module, "sample_figure", small_figure)
    sets, results = project_root / "data", project_root / "results"

    # The new run's files, written undisturbed elsewhere: the reference for "complete new".
    module.main(["--seed", "2", "--noise", "awgn", "--output-dir", str(tmp_path / "new"),
                 "--results-dir", str(tmp_path / "new_results")])
    new = {k.replace(str(tmp_path / "new"), str(sets / "noisy_mnist")): v
           for k, v in snapshot(tmp_path / "new").items()}
    module.main(["--seed", "1", "--noise", "awgn", "motion-blur"])
    old = snapshot(sets)
    assert f"{sets}/noisy_mnist/motion-blur/test_images.npy" in old and old != new
    seen = set()

    def check(k, completed):
        now = snapshot(sets)  # all of data/: a temporary folder left beside would show
        assert now in (old, new), f"a mix of two runs after an interruption at write {k}"
        seed = json.loads((sets / "noisy_mnist" / "manifest.json").read_text())["seed"]
        assert seed == (1 if now == old else 2)
        assert noisy_sets.load_manifest()["sets"] == (["clean", "awgn", "motion-blur"]
                                                      if now == old else ["clean", "awgn"])
        seen.add("old" if now == old else "new")
        if now == new and not completed:  # stopped after the swap: start again from old
            module.main(["--seed", "1", "--noise", "awgn", "motion-blur"])
            assert snapshot(sets) == old

    writes = interrupted_runs(
        monkeypatch, lambda: module.main(["--seed", "2", "--noise", "awgn"]),
        [(np, "save"), (noisy_sets, "save_json"), (module, "save_figure"),
         (module, "save_metrics"), (os, "replace"), (os, "rename")], check)
    # 12 arrays, each saved then renamed, the manifest, the swap's two renames, and more.
    assert writes > 12 * 2 + 2 and seen == {"old", "new"}
    assert json.loads((results / "noisy_mnist/data_metrics.json").read_text())["run"]["seed"] == 2


def test_make_noisy_mnist_refuses_to_replace_a_folder_holding_other_files(project_root,
                                                                          small_splits,
                                                                          monkeypatch, capsys):
    module = script("make_noisy_mnist")
    monkeypatch.setattr(module, "load_mnist", small_splits)
    mine = project_root / "data" / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit) as stop:
        module.main(["--noise", "awgn", "--output-dir", str(mine)])
    assert stop.value.code == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


# --- the generator ----------------------------------------------------------------------------

FIGURES = ("cumulative_variance.png", "samples.png", "per_digit.png")  # no CV: no bandwidth_cv
GENERATOR_OPTIONS = ["--components", "5", "--bandwidth", "0.5", "--max-samples", "100"]


def generator_files(root: Path) -> dict[str, bytes]:
    return snapshot(root / "models", root / "results")


def test_interrupting_fit_generator_leaves_the_old_model_and_metrics_or_the_new_ones(
        project_root, monkeypatch, small_splits):
    module = script("fit_generator")
    monkeypatch.setattr(module, "load_mnist", small_splits)
    monkeypatch.setattr(module, "make_figures", lambda model, search, curve, *_: {
        name: small_figure(model.mean) for name in FIGURES})
    module.main([*GENERATOR_OPTIONS, "--seed", "1"])
    old = generator_files(project_root)
    model_file = project_root / "models/generator/generator.npz"
    metrics_file = project_root / "results/generator/metrics.json"
    seen = set()

    def check(k, completed):
        now = generator_files(project_root)
        assert now.keys() == old.keys(), f"files appeared or vanished at write {k}"
        model = pca_kde.load_generator(model_file)
        metrics = json.loads(metrics_file.read_text())
        if now == old:
            seen.add("old")
            return
        # The new group: every file replaced, the model and its metrics from one fit.
        assert all(now[name] != old[name] for name in now), f"a mix at write {k}"
        assert metrics["run"]["seed"] == model.metadata["seed"] == 2
        assert metrics["run_id"] == model.metadata["run_id"]
        assert metrics["metrics"]["bandwidth"] == model.bandwidth
        seen.add("new")
        if not completed:
            module.main([*GENERATOR_OPTIONS, "--seed", "1"])
            assert generator_files(project_root).keys() == old.keys()
            old.update(generator_files(project_root))

    writes = interrupted_runs(
        monkeypatch, lambda: module.main([*GENERATOR_OPTIONS, "--seed", "2"]),
        [(np, "savez_compressed"), (module, "save_figure"), (module, "save_metrics"),
         (os, "replace"), (os, "link")], check)
    assert writes >= 5 and seen == {"old", "new"}


def test_the_notebook_does_not_reuse_a_model_beside_the_metrics_of_another_fit(
        project_root, monkeypatch, small_splits):
    module = script("fit_generator")
    monkeypatch.setattr(module, "load_mnist", small_splits)
    module.main(GENERATOR_OPTIONS)
    splits = small_splits("embedded")
    images, labels = pca_kde.select_training_images(splits.train_images, splits.train_labels,
                                                    100, 0)
    settings = {"n_components": 5, "kernel": "gaussian", "bandwidth": 0.5, "folds": 3,
                "kde_points": 100}
    assert pca_kde.saved_fit(images, labels, **settings) is not None
    # As a hard kill between the model's rename and the metrics' would leave them.
    metrics_file = project_root / "results/generator/metrics.json"
    document = json.loads(metrics_file.read_text())
    metrics_file.write_text(json.dumps({**document, "run_id": "an earlier fit"}))
    assert pca_kde.saved_fit(images, labels, **settings) is None


# --- the results page of a make all run ------------------------------------------------------

def write_json(path: Path, document: dict, age_days: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    if age_days:
        stamp = path.stat().st_mtime - age_days * 86400
        os.utime(path, (stamp, stamp))
    return path


GENERATOR_METRICS = {"metrics": {"variance_explained": 0.83, "components_for_95pct": 146,
                                 "bandwidth": 0.398}}
MINI_METRICS = {"metrics": {"ari": 0.52, "cluster_accuracy": 0.673}}


def test_the_page_says_a_run_is_unfinished_and_tags_files_from_an_earlier_run(tmp_path):
    results = tmp_path / "results"
    write_json(results / "generator/metrics.json", GENERATOR_METRICS, age_days=2)
    assert "unfinished-run" not in render_page(results)  # no make all recorded: no banner
    summary.begin_run(results)
    write_json(results / "mini_mnist/evaluate_metrics.json", MINI_METRICS)
    page = render_page(results)
    assert 'id="unfinished-run"' in page and "has not finished" in page
    # The generator's values predate the run; Mini MNIST's were written during it.
    generator_row = page[page.index("bandwidth chosen by cross-validation"):]
    assert generator_row[:generator_row.index("</tr>")].count("earlier run") == 1
    mini_row = page[page.index("K-Means ARI (seed 0)"):]
    assert "earlier run" not in mini_row[:mini_row.index("</tr>")]
    steps = page[page.index('id="earlier-steps"'):]
    steps = steps[:steps.index("</div>")]
    assert "make generator" in steps and "results/generator/metrics.json" in steps
    assert "make minimnist" not in steps

    summary.end_run(results)
    page = render_page(results)
    assert "unfinished-run" not in page and 'id="earlier-steps"' in page


def test_make_all_begins_by_replacing_the_old_page_and_ends_without_the_banner(tmp_path):
    main = script("summarize").main
    results = tmp_path / "results"
    write_json(results / "generator/metrics.json", GENERATOR_METRICS, age_days=2)
    (results / "index.html").write_text("<p>the old run's page, looking current</p>")
    main(["--results-dir", str(results), "--begin"])
    page = (results / "index.html").read_text()
    assert "the old run's page" not in page and 'id="unfinished-run"' in page
    assert not (results / "summary.md").exists()  # --begin writes the page alone

    # Interrupted now, `make summary` keeps saying so, in summary.md too.
    main(["--results-dir", str(results)])
    assert 'id="unfinished-run"' in (results / "index.html").read_text()
    assert "Unfinished run" in (results / "summary.md").read_text()

    write_json(results / "generator/metrics.json", GENERATOR_METRICS)  # the run rewrote it
    main(["--results-dir", str(results), "--end"])
    page = (results / "index.html").read_text()
    assert "unfinished-run" not in page and "earlier run" not in page
    assert "Unfinished run" not in (results / "summary.md").read_text()
    # The README's table still reads this summary.md.
    rows = summary.parse_summary((results / "summary.md").read_text()).rows
    assert ("Generator", "bandwidth chosen by cross-validation") in {r.key for r in rows}


def test_make_all_begins_even_when_the_old_results_cannot_be_summarised(tmp_path):
    results = tmp_path / "results"
    (results / "generator").mkdir(parents=True)
    (results / "generator/metrics.json").write_text("{truncated")
    (results / "index.html").write_text("<p>the old run's page</p>")
    script("summarize").main(["--results-dir", str(results), "--begin"])
    page = (results / "index.html").read_text()
    assert "the old run's page" not in page and 'id="unfinished-run"' in page
    assert "generator/metrics.json" in page  # the reason the full page could not be made
    assert sorted(p.name for p in results.iterdir()) == [".make_all.json", "generator",
                                                          "index.html"]
