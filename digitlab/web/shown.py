"""Paths as the app shows them to its clients: relative to the project root.

An absolute path tells a visitor how the serving machine is laid out (a user
name, a home folder) and helps no one fix anything: the person running the app
knows where the project is. Files inside the project are shown relative to it
(``models/mnist_cnn.pt``); files elsewhere by their name alone. The server's own
log keeps the full paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from digitlab import paths

# An absolute POSIX path of two or more parts (a route such as '/healthz' or the '/' of
# '0 / 255' is not one) or a Windows path, not glued to what comes before it (so not the
# '/json' of 'application/json', nor the '//host' of a URL); it ends at white space or
# punctuation that separates clauses.
_PART = r"[^\s/;,'\"()<>]+"
_ABSOLUTE_PATH = re.compile(rf"(?<![\w.~:/-])(?:(?:/{_PART}){{2,}}|[A-Za-z]:\\[^\s;,'\"()<>]*)")


def _roots() -> list[Path]:
    """The project roots a path may be shown relative to: ``$DIGITLAB_ROOT`` first."""
    roots = []
    for root in (paths.root(), paths.PROJECT_ROOT):
        roots += [root, root.resolve()]
    return list(dict.fromkeys(roots))


def _foreign_absolute(path: str) -> PurePath | None:
    """``path`` as an absolute path of the other operating system's kind, if it is one:
    a checkpoint trained on Windows records C:\\... in its data description."""
    for flavour in (PurePosixPath, PureWindowsPath):
        if flavour(path).is_absolute():
            return flavour(path)
    return None


def shown_path(path: str | os.PathLike) -> str:
    """``path`` relative to the project root if it lies inside it, else its name alone."""
    native = Path(path)
    if native.is_absolute():
        for root in _roots():
            if native.is_relative_to(root):
                return str(native.relative_to(root)) if native != root else "."
        return native.name or "."
    foreign = _foreign_absolute(str(path))
    return str(native) if foreign is None else foreign.name or "."


def _shown_match(match: re.Match) -> str:
    text = match.group(0)
    # A sentence's full stop after a path is not part of it.
    stop = len(text) - len(text.rstrip("."))
    return shown_path(text[:len(text) - stop]) + text[len(text) - stop:]


def without_absolute_paths(text: str) -> str:
    """``text`` with every absolute path in it written as :func:`shown_path` shows it."""
    for root in sorted(_roots(), key=lambda r: len(str(r)), reverse=True):
        # Known roots first: they may hold spaces, which the pattern stops at.
        text = text.replace(str(root) + os.sep, "")
    return _ABSOLUTE_PATH.sub(_shown_match, text)
