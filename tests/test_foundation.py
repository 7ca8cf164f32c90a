"""The shared plumbing: atomic writes, metadata, batching, the CLI wrapper and figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digitlab.cli import cli
from digitlab.data.batching import TensorBatches
from digitlab.errors import UserError
from digitlab.repro import atomic_write, save_metrics, set_seed


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            handle.write("half a fi")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_metrics_file_records_seed_config_and_versions(tmp_path):
    path = save_metrics(tmp_path / "m.json", {"acc": np.float32(0.5)}, seed=3, config={"lr": 0.1})
    saved = json.loads(path.read_text())
    assert saved["metrics"]["acc"] == 0.5
    assert saved["run"]["seed"] == 3 and saved["run"]["config"] == {"lr": 0.1}
    assert "numpy" in saved["run"]["versions"]


def test_set_seed_makes_torch_and_numpy_repeatable():
    first = (set_seed(7).random(3), torch.rand(3))
    again = (set_seed(7).random(3), torch.rand(3))
    assert np.array_equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_batches_cover_every_row_once_keep_rows_with_their_labels_and_are_seeded():
    # Row i of x holds (i, 100 + i) and its label is 1000 + i: any batch that paired a row
    # with another row's label, or dropped or repeated a row, shows here.
    x = torch.stack([torch.arange(10), 100 + torch.arange(10)], dim=1).float()
    y = 1000 + torch.arange(10)
    batches = list(TensorBatches(x, y, batch_size=3, seed=1))
    assert [len(yb) for _, yb in batches] == [3, 3, 3, 1]
    xs, ys = torch.cat([xb for xb, _ in batches]), torch.cat([yb for _, yb in batches])
    assert sorted(ys.tolist()) == list(range(1000, 1010))
    assert torch.equal(xs[:, 0].long() + 1000, ys) and torch.equal(xs[:, 1].long() + 900, ys)
    assert ys.tolist() != list(range(1000, 1010))  # shuffled
    again = torch.cat([yb for _, yb in TensorBatches(x, y, batch_size=3, seed=1)])
    assert torch.equal(ys, again)
    assert len(TensorBatches(x, y, batch_size=3)) == 4
    assert len(TensorBatches(x, y, batch_size=3, drop_last=True)) == 3


def test_cli_turns_user_errors_into_exit_status_2(capsys):
    @cli
    def main(argv=None):
        raise UserError("data/x.csv is missing; run scripts/generate_data.py first.")

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "data/x.csv is missing" in capsys.readouterr().err


@pytest.mark.parametrize("umask, mode", [(0o027, 0o640), (0o022, 0o644), (0o077, 0o600)])
def test_atomic_files_get_the_permissions_the_umask_allows(tmp_path, umask, mode):
    # mkstemp creates 0600 files; a published file must look like one open() created.
    import os
    import stat

    target = tmp_path / "metrics.json"
    previous = os.umask(umask)
    try:
        with atomic_write(target) as handle:
            handle.write("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize("cmap", ["Blues", "viridis"])
def test_heatmap_cell_text_stays_readable_on_dark_and_light_cells(cmap):
    import matplotlib.pyplot as plt

    from digitlab import plots

    counts = np.array([[90, 0], [3, 60]])
    figures = [plots.heatmap(counts, ["a", "b"], ["a", "b"], "t", fmt="{:.0f}", cmap=cmap)]
    if cmap == "Blues":
        figures.append(plots.confusion_matrix(counts))
    for fig in figures:
        texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
        assert set(texts) == {"90", "0", "3", "60"}
        # Blues darkens with the count, viridis lightens: the text colour must follow.
        dark_cell = "90" if cmap == "Blues" else "0"
        light_cell = "0" if cmap == "Blues" else "90"
        assert texts[dark_cell] == "white" and texts[light_cell] == "black"
        plt.close(fig)


def test_verbose_shows_digitlab_debug_lines_and_not_other_libraries():
    import logging

    from digitlab.cli import configure_logging

    ours, theirs = logging.getLogger("digitlab"), logging.getLogger("urllib3")
    before = ours.level
    try:
        configure_logging(verbose=True)
        assert ours.isEnabledFor(logging.DEBUG) and not theirs.isEnabledFor(logging.DEBUG)
        configure_logging(verbose=False)
        assert ours.isEnabledFor(logging.INFO) and not ours.isEnabledFor(logging.DEBUG)
    finally:
        ours.setLevel(before)
