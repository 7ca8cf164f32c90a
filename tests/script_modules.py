"""Scripts and benchmarks are files, not a package: load one as a module by its path."""

from __future__ import annotations

import importlib.util

from digitlab.paths import PROJECT_ROOT


def load(relative_path: str):
    """The module of ``PROJECT_ROOT / relative_path``, e.g. ``"benchmarks/speedrun.py"``."""
    path = PROJECT_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
