"""Reproducibility helpers: seeding, run metadata and atomic file writes.

Every artifact goes through :func:`atomic_write` so an interrupted run never
leaves a half-written CSV, model or metrics file behind: content is written to
a temporary file in the destination folder and then renamed over the target,
which is atomic on POSIX and Windows file systems.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.paths import PROJECT_ROOT

_TRACKED_PACKAGES = ("numpy", "scipy", "scikit-learn", "torch", "pandas", "matplotlib")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | os.PathLike, path: Path) -> None:
    """Give the temporary file normal permissions (mkstemp makes it 0600), then rename."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if installed) PyTorch; return a NumPy Generator."""
    random.seed(seed)
    # Libraries that still draw from NumPy's global state get seeded too.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    try:
        import torch
    except ImportError:  # torch is optional for the NumPy-only steps
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def git_commit() -> str | None:
    """The current commit of the repository (with ``-dirty`` if modified), if any."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
            text=True, check=True, timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def run_metadata(seed: int | None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a reader needs to reproduce a run: seed, config, commit, versions."""
    return {
        "seed": seed,
        "config": _jsonable(config or {}),
        "git_commit": git_commit(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "versions": library_versions(),
    }


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path``; rename it over ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is left as it was.
    """
    with atomic_target(path) as tmp, open(tmp, mode) as handle:
        yield handle


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_write` for libraries that want a file *name*.

    Yields a temporary path with the same suffix as ``path`` (so that e.g.
    ``np.savez`` or ``torch.save`` behave); once the block ends without an
    error it is flushed to disk and renamed over ``path``, else removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:  # durable before it becomes visible
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_targets(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """:func:`atomic_target` for files that belong together (a model and its metrics).

    Every file is written to its temporary sibling first; only when all of them
    are complete are they renamed into place, one right after the other. An
    interruption while writing leaves every old file as it was, never a new
    model beside old metrics; so does one between the renames (an error or
    Ctrl-C): the files already renamed are put back as they were.
    """
    with contextlib.ExitStack() as stack:
        temporaries = [stack.enter_context(_deferred_target(Path(p))) for p in paths]
        yield [tmp for tmp, _ in temporaries]
        for tmp, _ in temporaries:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        olds = [stack.enter_context(_old_version(path)) for _, path in temporaries]
        published: list[tuple[Path, Path | None]] = []
        try:
            for (tmp, path), old in zip(temporaries, olds, strict=True):
                published.append((path, old))  # first: put back even if cut off mid-rename
                _publish(tmp, path)
        except BaseException:
            for path, old in reversed(published):
                if old is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                else:
                    os.replace(old, path)
            raise


@contextlib.contextmanager
def _old_version(path: Path) -> Iterator[Path | None]:
    """A second name (a hard link, else a copy) for the file at ``path`` while a new one
    replaces it, so that it can be put back; None if there is no file there yet."""
    if not path.is_file():
        yield None
        return
    fd, keep = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".old")
    os.close(fd)
    os.unlink(keep)
    try:
        try:
            os.link(path, keep)
        except OSError:  # a file system without hard links
            shutil.copy2(path, keep)
        yield Path(keep)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(keep)


@contextlib.contextmanager
def _deferred_target(path: Path) -> Iterator[tuple[Path, Path]]:
    """A temporary sibling of ``path`` that is removed unless it was renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp), path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Build a group of files that belong together (the noisy sets and their manifest)
    in a temporary sibling of the folder ``path``; on success swap it into place.

    The swap is two renames, old folder away, new folder in, then the old one is
    deleted; so readers see the complete old group or the complete new one, never a
    mix. On any exception (including KeyboardInterrupt) the temporary folder is removed
    and ``path`` is left untouched. Only a hard kill between the two renames (microseconds)
    can leave ``path`` missing, with the old group kept beside it as ``.NAME.*.old``.
    """
    path = Path(path).resolve()  # a symlinked folder is swapped where its files are
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new"))
    try:
        yield tmp
        _fsync_tree(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        _swap_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_folder(new: Path, path: Path) -> None:
    """Rename ``new`` to ``path``, moving an existing ``path`` away first and deleting it
    after; if the second rename fails, the old folder is put back."""
    if not path.exists():
        os.rename(new, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rmdir(old)  # only its unique name is wanted
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk before the folder becomes visible."""
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())


def metrics_document(metrics: dict[str, Any], *, seed: int | None,
                     config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The content of a ``metrics.json``: the numbers and what reproduces them."""
    return _jsonable({"metrics": metrics, **extra, "run": run_metadata(seed, config)})


def json_text(data: dict[str, Any]) -> str:
    """The text :func:`save_json` writes. NaN and infinities, which JSON cannot hold (a
    diverged loss, a score of nothing), become null, as the results table and the
    generator's bandwidth search already read a value that is not a number."""
    def finite(value: Any) -> Any:
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(_jsonable(data)), indent=2, sort_keys=False, allow_nan=False) + "\n"


def save_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as JSON (:func:`json_text`), atomically."""
    text = json_text(data)
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def save_metrics(
    path: str | os.PathLike, metrics: dict[str, Any], *, seed: int | None,
    config: dict[str, Any] | None = None, **extra: Any,
) -> Path:
    """Write ``metrics.json``: the numbers, plus everything needed to reproduce them."""
    return save_json(metrics_document(metrics, seed=seed, config=config, **extra), path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, show: bool | None = None) -> Path:
    """Save a Matplotlib figure atomically, show it in a notebook, and close it.

    ``show`` (default: when running in a Jupyter kernel) displays the figure where it
    was made, so a notebook shows every figure it saves; a script only writes the file.
    """
    import matplotlib.pyplot as plt

    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    if show if show is not None else _in_notebook():
        from IPython.display import display

        display(fig)
    plt.close(fig)
    return Path(path)


def _in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (a notebook), where figures can be shown."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and paths to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
