"""``/results``: the results page (``results/index.html``, written by ``make summary``) and
the files it links to, served read-only from the results folder.

Only regular files inside the results folder can be reached: ``..``, absolute paths,
hidden files and symbolic links that lead outside the folder all answer 404, as does
anything that is not there. The folder is read on every request, so a new
``make summary`` shows without restarting the app.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from flask import Blueprint, Flask, send_file
from werkzeug.security import safe_join

from digitlab import paths
from digitlab.web.shown import shown_path

PAGE = "index.html"


def inside(results: Path, name: str) -> Path | None:
    """The regular file ``name`` under ``results``, or None if it is not one or would
    leave the folder."""
    joined = safe_join(str(results), name)  # None for '..', absolute and drive paths
    if joined is None or any(part.startswith(".") for part in Path(name).parts):
        return None
    path = Path(joined).resolve()  # follows symbolic links, so the check below sees targets
    if not path.is_relative_to(results.resolve()) or not path.is_file():
        return None
    return path


def _not_found(message: str):
    return (f"<!doctype html><title>Not found</title><p>{escape(message)}</p>", 404,
            {"Content-Type": "text/html; charset=utf-8"})


def blueprint(results_dir: str | os.PathLike | None = None) -> Blueprint:
    """The ``/results`` routes, serving ``results_dir`` (default ``results/``)."""
    results = Path(results_dir or paths.results_dir())
    routes = Blueprint("results", __name__, url_prefix="/results")

    # '/results' redirects to '/results/' so that the page's relative links resolve
    # under /results/, as they do next to index.html on disk.
    @routes.get("/")
    def page():
        path = inside(results, PAGE)
        if path is None:
            return _not_found(f"There is no results page yet ({shown_path(results / PAGE)}); run "
                              "`make summary` to write it.")
        return send_file(path)

    @routes.get("/<path:name>")
    def result_file(name: str):
        path = inside(results, name)
        if path is None:
            return _not_found("There is no such file under the results folder.")
        return send_file(path)

    return routes


def register(app: Flask, results_dir: str | os.PathLike | None = None) -> None:
    """Serve ``results_dir`` (default ``results/``) at ``/results`` in ``app``."""
    app.register_blueprint(blueprint(results_dir))
