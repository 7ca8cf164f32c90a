"""The generator's web app: a page that draws new digits on demand, and a JSON API.

``create_app(model_dir)`` loads the fitted PCA + KDE model once at start-up.
Routes:

- ``GET /``: the model's stats, a form (count 1-16, optional digit) and a gallery;
- ``POST /generate``: ``{"n_samples": 4, "digit": 7, "seed": 1}`` (digit and seed
  optional) -> ``{"success": true, "images": ["data:image/png;base64,..."], "count": 4}``;
- ``GET /stats``: ``pca_components``, ``variance_explained``, ``kde_bandwidth``,
  ``original_dim``, ``reduced_dim`` (the generator API's names), then kernel, background,
  training images per digit and data source;
- ``GET /healthz``: 200 when the model is loaded.

Bad requests get HTTP 400 with ``{"success": false, "error": "..."}``; without a
fitted model every route answers 503 naming the command that creates it. Each
request draws from its own random generator (seeded when ``seed`` is given),
so concurrent requests never share random state.
"""

from __future__ import annotations

import json
import os

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from digitlab.cli import UserError
from digitlab.generator.pca_kde import FIT_COMMAND, load_generator, model_path
from digitlab.web.png import png_data_uris
from digitlab.web.results import register as register_results

MAX_SAMPLES = 16
MAX_BODY_BYTES = 1024
MAX_SEED = 2**63 - 1
FIELDS = ("n_samples", "digit", "seed")


class BadRequest(ValueError):
    """A request the client must fix; its message is returned as the error."""


def _integer(payload: dict, name: str, low: int, high: int, required: bool = False) -> int | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise BadRequest(f"'{name}' is required: an integer from {low} to {high}.")
        return None
    # bool is an int subclass in Python; true/false are not counts or digits.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}, "
                         f"got {json.dumps(value)}.")
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be from {low} to {high}, got {value}.")
    return value


def parse_generate(payload) -> tuple[int, int | None, int | None]:
    """Validate a /generate body; return (n_samples, digit or None, seed or None)."""
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object such as "
                         '{"n_samples": 4, "digit": 7, "seed": 1}.')
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(FIELDS)}.")
    return (_integer(payload, "n_samples", 1, MAX_SAMPLES, required=True),
            _integer(payload, "digit", 0, 9), _integer(payload, "seed", 0, MAX_SEED))


def _error(message: str, status: int):
    return jsonify(success=False, error=message), status


def create_app(model_dir: str | os.PathLike | None = None,
               results_dir: str | os.PathLike | None = None) -> Flask:
    """The Flask app serving the generator saved in ``model_dir`` (default models/generator)
    and, at /results, the results page of ``results_dir`` (default results/)."""
    app = Flask(__name__)
    register_results(app, results_dir)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    path = model_path(model_dir)
    try:
        model, load_error = load_generator(path), None
    except UserError as err:
        model, load_error = None, str(err)
        app.logger.warning("generator not loaded: %s", load_error)
    stats = model.stats() if model is not None else None
    app.extensions["digitlab_generator"] = model

    def unavailable(page: bool = False):
        message = f"the generator model is not available: {load_error}"
        if page:
            return render_template("unavailable.html", message=message, command=FIT_COMMAND,
                                   path=path), 503
        return _error(message, 503)

    @app.get("/")
    def index():
        if model is None:
            return unavailable(page=True)
        return render_template("index.html", stats=stats, max_samples=MAX_SAMPLES,
                               digits=model.digits)

    @app.get("/stats")
    def get_stats():
        if model is None:
            return unavailable()
        return jsonify(success=True, **stats)

    @app.get("/healthz")
    def healthz():
        if model is None:
            return jsonify(status="unavailable", model_loaded=False, error=load_error), 503
        return jsonify(status="ok", model_loaded=True)

    @app.post("/generate")
    def generate():
        if model is None:
            return unavailable()
        payload = request.get_json(silent=True)
        if payload is None:
            return _error("the body must be JSON (Content-Type: application/json), such as "
                          '{"n_samples": 4, "digit": 7, "seed": 1}.', 400)
        try:
            n, digit, seed = parse_generate(payload)
        except BadRequest as err:
            return _error(str(err), 400)
        try:
            images = model.sample(n, digit=digit, seed=seed)
        except UserError as err:  # a digit the model was not fitted on
            return _error(str(err), 400)
        return jsonify(success=True, images=png_data_uris(images),
                       count=len(images))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return _error(f"the request body is larger than {MAX_BODY_BYTES} bytes.", 400)

    return app
