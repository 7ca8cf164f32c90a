""".gitignore: model files and operating-system files stay out, committed files stay in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from digitlab.paths import PROJECT_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists(),
    reason="needs git and a git checkout")

# Committed on purpose although results/ is ignored: they are shown in the README.
SHOWN_IN_README = {"results/summary.md", "results/mini_mnist/samples.png",
                   "results/generator/samples.png"}


def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, input=stdin, text=True,
                          capture_output=True, check=False)


@pytest.mark.parametrize("path", [
    "models/mnist_cnn.pt", "notebooks/checkpoint.pt", "scratch/deep/dir/net.pth", "model.pth",
    ".DS_Store", "notebooks/.DS_Store", "digitlab/Thumbs.db", "results/desktop.ini",
])
def test_model_and_operating_system_files_are_ignored_wherever_they_are(path):
    assert git("check-ignore", "--no-index", "-q", path).returncode == 0, path


@pytest.mark.parametrize("path", ["digitlab/engine/checkpoint.py", "notebooks/model.ipynb",
                                  "scripts/train_cnn.py", "tests/test_cnn.py", "README.md"])
def test_sources_are_not_ignored(path):
    assert git("check-ignore", "--no-index", "-q", path).returncode == 1, path


# A run written elsewhere with OUT= (runs/full-mnist: the README's full-MNIST column) is
# generated like results/, except its results table, which the README's table is read from.
@pytest.mark.parametrize("path", [
    "runs/full-mnist/results/mnist/benchmark.json", "runs/full-mnist/results/index.html",
    "runs/full-mnist/results/mnist/summary.md", "runs/full-mnist/data/raw/mnist/x-idx3-ubyte",
    "runs/full-mnist/models/generator/pca.npz", "runs/other/results/pipeline_time.json",
    "runs/full-mnist/results/journal/reproduction.json",
    "runs/full-mnist/results/journal/runs/cnn2-seed-0.pt",
])
def test_a_run_written_with_out_is_ignored(path):
    assert git("check-ignore", "--no-index", "-q", path).returncode == 0, path


@pytest.mark.parametrize("path", ["runs/full-mnist/results/summary.md",
                                  "runs/other/results/summary.md",
                                  "runs/full-mnist/results/journal/reproduction.md",
                                  "runs/full-mnist/results/journal/test_curves.png"])
def test_the_results_table_of_a_run_written_with_out_can_be_committed(path):
    assert git("check-ignore", "--no-index", "-q", path).returncode == 1, path


def test_no_committed_file_is_ignored_except_the_readme_images():
    tracked_but_ignored = git("ls-files", "--cached", "--ignored", "--exclude-standard")
    assert set(tracked_but_ignored.stdout.split()) <= SHOWN_IN_README
