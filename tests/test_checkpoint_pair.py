"""A checkpoint and its run's metrics.json are one pair: the same run id in both, read
back independently, and an interruption while the pair is written leaves the old pair."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from digitlab.data.splits import Splits
from digitlab.engine import NetworkSpec, Recipe
from digitlab.mnist.training import train_and_save


def tiny_splits() -> Splits:
    rng = np.random.default_rng(0)

    def part(n):
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10

    (tx, ty), (vx, vy), (sx, sy) = part(40), part(20), part(20)
    return Splits(tx, ty, vx, vy, sx, sy, source="test", description="40 random digits")


def save_pair(tmp_path, seed: int = 0) -> dict:
    return train_and_save(NetworkSpec("cnn2", {"channels": (2, 4)}),
                          Recipe(optimizer="adam", epochs=1, batch_size=20), tiny_splits(),
                          checkpoint=tmp_path / "models" / "cnn.pt",
                          results_dir=tmp_path / "results", name="pair test", seed=seed,
                          progress=False)


def run_ids(tmp_path) -> tuple[str, str]:
    """The run id of the checkpoint and of metrics.json, each read from its own file."""
    payload = torch.load(tmp_path / "models" / "cnn.pt", map_location="cpu",
                         weights_only=True)
    document = json.loads((tmp_path / "results" / "metrics.json").read_text())
    return payload["extra"]["run_id"], document["run_id"]


def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for folder in ("models", "results") for p in (tmp_path / folder).iterdir()
                  if p.name not in ("cnn.pt", "metrics.json", "training_curves.png"))


def test_a_checkpoint_and_its_metrics_carry_one_run_id_and_each_run_a_new_one(tmp_path):
    save_pair(tmp_path)
    model_id, metrics_id = run_ids(tmp_path)
    assert isinstance(model_id, str) and len(model_id) >= 16
    assert model_id == metrics_id
    save_pair(tmp_path, seed=1)
    again = run_ids(tmp_path)
    assert again[0] == again[1] != model_id
    document = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert document["run"]["seed"] == 1


@pytest.mark.parametrize("failing_call", [1, 2], ids=["first-rename", "second-rename"])
def test_an_interrupted_pair_write_leaves_the_old_pair_whole(tmp_path, monkeypatch,
                                                             failing_call):
    save_pair(tmp_path)
    old_model = (tmp_path / "models" / "cnn.pt").read_bytes()
    old_metrics = (tmp_path / "results" / "metrics.json").read_text()
    real_replace, calls = os.replace, []

    def interrupted(src, dst, *args, **kwargs):
        if str(dst).endswith(("cnn.pt", "metrics.json")):
            calls.append(dst)
            if len(calls) == failing_call:
                raise KeyboardInterrupt  # e.g. Ctrl-C between the two renames
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_pair(tmp_path, seed=1)
    monkeypatch.undo()
    assert (tmp_path / "models" / "cnn.pt").read_bytes() == old_model
    assert (tmp_path / "results" / "metrics.json").read_text() == old_metrics
    model_id, metrics_id = run_ids(tmp_path)
    assert model_id == metrics_id == json.loads(old_metrics)["run_id"]
    assert leftovers(tmp_path) == []  # no temporary or backup file stays behind


def test_a_failure_while_writing_the_metrics_leaves_the_old_pair_whole(tmp_path, monkeypatch):
    save_pair(tmp_path)
    old_model = (tmp_path / "models" / "cnn.pt").read_bytes()
    old_metrics = (tmp_path / "results" / "metrics.json").read_text()
    real_write_text = type(tmp_path).write_text

    def disk_full(self, *args, **kwargs):
        if self.suffix == ".json" and self.name.startswith(".metrics."):
            raise OSError(28, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_pair(tmp_path, seed=1)
    monkeypatch.undo()
    assert (tmp_path / "models" / "cnn.pt").read_bytes() == old_model
    assert (tmp_path / "results" / "metrics.json").read_text() == old_metrics
    assert leftovers(tmp_path) == []


def test_the_first_pair_interrupted_leaves_no_file_at_all(tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def interrupted(src, dst, *args, **kwargs):
        if str(dst).endswith(("cnn.pt", "metrics.json")):
            calls.append(dst)
            if len(calls) == 2:
                raise OSError(13, "Permission denied")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="Permission denied"):
        save_pair(tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "models" / "cnn.pt").exists()
    assert not (tmp_path / "results" / "metrics.json").exists()
    assert leftovers(tmp_path) == []
