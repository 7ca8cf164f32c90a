"""Every default location in the project; nothing else hard-codes a path.

The root can be moved (for example by the tests) with the ``DIGITLAB_ROOT``
environment variable; every default below is derived from it at call time.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def root() -> Path:
    """The project root: ``$DIGITLAB_ROOT`` if set (and not empty), else the repository."""
    return Path(os.environ.get("DIGITLAB_ROOT") or PROJECT_ROOT)


def full_mnist_run() -> Path:
    """Where the README's full-MNIST run writes (``make all MNIST_DIR=... OUT=runs/full-mnist``)."""
    return PROJECT_ROOT / "runs" / "full-mnist"


def data_dir() -> Path:
    return root() / "data"


def results_dir() -> Path:
    return root() / "results"


def models_dir() -> Path:
    return root() / "models"


# Mini MNIST
def mini_mnist_csv() -> Path:
    return data_dir() / "mini_mnist.csv"


def mini_mnist_results() -> Path:
    return results_dir() / "mini_mnist"


# MNIST family
def mnist_raw_dir() -> Path:
    return data_dir() / "raw" / "mnist"


# Debian's dataset-fashion-mnist package installs the full-size Fashion-MNIST (60,000 +
# 10,000 images in the MNIST format) here: a full-scale set on a machine without internet.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def mnist_results() -> Path:
    return results_dir() / "mnist"


def noisy_mnist_dir() -> Path:
    return data_dir() / "noisy_mnist"


def noisy_results() -> Path:
    return results_dir() / "noisy_mnist"


def noisy_folder_results(name: str) -> Path:
    """The noisy notebook's results on a folder of your own ``.npy`` files, kept apart
    from the canonical ``results/noisy_mnist/metrics.json`` that the summary reads."""
    return noisy_results() / "npy_folders" / name


def generator_dir() -> Path:
    return models_dir() / "generator"


def generator_results() -> Path:
    return results_dir() / "generator"


def web_results() -> Path:
    """The web app's measurements (``benchmarks/classify_api.py``)."""
    return results_dir() / "web"


def docs_dir() -> Path:
    """Committed documentation images, such as the drawing page's screenshot."""
    return PROJECT_ROOT / "docs"


def notebooks_dir() -> Path:
    return PROJECT_ROOT / "notebooks"


def executed_notebooks_dir() -> Path:
    return results_dir() / "notebooks"


def cnn_checkpoint() -> Path:
    """The best CNN trained by the default pipeline (``scripts/train_cnn.py``)."""
    return models_dir() / "mnist_cnn.pt"



def mnist_project_results() -> Path:
    """The CNN project notebook's figures and ``metrics.json``."""
    return mnist_results() / "project"


def mnist_slides() -> Path:
    """The CNN project's slide deck (``scripts/make_slides.py``)."""
    return mnist_results() / "slides.pdf"

