"""The web app: generate new digits, and draw a digit to see what the network reads.

``create_app(model_dir, checkpoint, device)`` loads, once at start-up, the
fitted PCA + KDE generator and the CNN classifier checkpoint (default
``models/mnist_cnn.pt``) on ``device``. Routes:

- ``GET /``: the generator's stats, a form (count 1-16, optional digit) and a gallery;
- ``POST /generate``: ``{"n_samples": 4, "digit": 7, "seed": 1}`` (digit and seed
  optional) -> ``{"success": true, "images": ["data:image/png;base64,..."], "count": 4}``,
  plus, with ``"classify": true`` and a classifier loaded, ``"predictions":
  [{"digit": 7, "probability": 0.98}, ...]`` (the generator page asks for them);
- ``GET /draw``: a canvas to draw a digit on, with the classifier's reading;
- ``POST /classify``: ``{"image": "data:image/png;base64,..."}`` -> ``{"success": true,
  "digit": 7, "probabilities": [...10...], "preview": "data:image/png;base64,...",
  "model": {...}}``, ``preview`` being the 28x28 digit the network saw;
- ``GET /stats``: ``pca_components``, ``variance_explained``, ``kde_bandwidth``,
  ``original_dim``, ``reduced_dim`` (the generator API's names), then kernel, background,
  training images per digit and data source;
- ``GET /results/``: the results page ``results/index.html`` and its files, read-only;
- ``GET /healthz``: which models are loaded (200 when at least one is).

Bad requests, malformed JSON of any depth included, get HTTP 400 with
``{"success": false, "error": "..."}``; a route
whose model is missing answers 503 naming the command that creates it, and the
other model's routes keep working. Each /generate request draws from its own
random generator (seeded when ``seed`` is given), so concurrent requests never
share random state.

By default the app answers only requests addressed to ``localhost``, ``127.0.0.1``
or ``[::1]`` (see :mod:`digitlab.web.hosts`); ``allowed_hosts=None`` answers any
``Host``, for a server listening on a public interface. Paths in its answers are
relative to the project root (:mod:`digitlab.web.shown`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from digitlab import devices
from digitlab.errors import UserError
from digitlab.generator.pca_kde import FIT_COMMAND, load_generator, model_path
from digitlab.web.classifier import TRAIN_COMMAND, checkpoint_path, load_classifier
from digitlab.web.hosts import LOOPBACK_NAMES, refuse_other_hosts
from digitlab.web.images import (
    MAX_SIDE,
    BadImage,
    png_bytes_from_data_uri,
    png_data_uri,
    png_data_uris,
    read_png,
)
from digitlab.web.recognise import EmptyImage, prepare_digit
from digitlab.web.results import register as register_results
from digitlab.web.shown import shown_path, without_absolute_paths

MAX_SAMPLES = 16
MAX_BODY_BYTES = 1024
# /classify: room for any 8-bit 1024x1024 PNG, even uncompressed RGBA
# (4.2 MB, 5.6 MB in base64), with its JSON wrapper.
MAX_CLASSIFY_BODY_BYTES = 6 * 1024 * 1024
MAX_SEED = 2**63 - 1
FIELDS = ("n_samples", "digit", "seed", "classify")
CLASSIFY_FIELDS = ("image",)
GENERATE_EXAMPLE = '{"n_samples": 4, "digit": 7, "seed": 1}'
CLASSIFY_EXAMPLE = '{"image": "data:image/png;base64,..."}'


class BadRequest(ValueError):
    """A request the client must fix; its message is returned as the error."""


def _shown_value(value) -> str:
    """A client's value, short, for an error message: a list or an object by its kind
    (it may be nested thousands deep, or huge), anything else as JSON."""
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return json.dumps(value)[:30]


def _integer(payload: dict, name: str, low: int, high: int, required: bool = False) -> int | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise BadRequest(f"'{name}' is required: an integer from {low} to {high}.")
        return None
    # bool is an int subclass in Python; true/false are not counts or digits.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}, "
                         f"got {_shown_value(value)}.")
    if not low <= value <= high:
        # JSON integers have no size limit; do not echo hundreds of digits back.
        shown = str(value) if len(str(value)) <= 30 else f"a {len(str(abs(value)))}-digit number"
        raise BadRequest(f"'{name}' must be from {low} to {high}, got {shown}.")
    return value


def _object(payload, fields: tuple[str, ...], example: str) -> dict:
    if not isinstance(payload, dict):
        raise BadRequest(f"the body must be a JSON object such as {example}.")
    unknown = sorted(set(payload) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(fields)}.")
    return payload


def _flag(payload: dict, name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false, got {_shown_value(value)}.")
    return value


def parse_generate(payload) -> tuple[int, int | None, int | None, bool]:
    """Validate a /generate body; return (n_samples, digit or None, seed or None, whether
    the classifier should read the images)."""
    payload = _object(payload, FIELDS, GENERATE_EXAMPLE)
    return (_integer(payload, "n_samples", 1, MAX_SAMPLES, required=True),
            _integer(payload, "digit", 0, 9), _integer(payload, "seed", 0, MAX_SEED),
            _flag(payload, "classify"))


def parse_classify(payload) -> bytes:
    """Validate a /classify body; return the PNG file it carries."""
    payload = _object(payload, CLASSIFY_FIELDS, CLASSIFY_EXAMPLE)
    if payload.get("image") is None:
        raise BadRequest(f"'image' is required: a PNG data URI, as in {CLASSIFY_EXAMPLE}.")
    return png_bytes_from_data_uri(payload["image"])


def _error(message: str, status: int):
    return jsonify(success=False, error=message), status


def _json_body(example: str):
    """The request's JSON document; BadRequest for anything else, however malformed."""
    if not request.is_json:
        raise BadRequest(f"the body must be JSON (Content-Type: application/json), such as "
                         f"{example}.")
    body = request.get_data()  # over the route's size limit: RequestEntityTooLarge
    try:
        payload = json.loads(body)
    except RecursionError:  # '[[[[...' thousands deep: the decoder runs out of stack
        raise BadRequest(f"the body's JSON is nested too deeply; send a flat object such "
                         f"as {example}.") from None
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        payload = None
    if payload is None:
        raise BadRequest(f"the body must be JSON (Content-Type: application/json), such as "
                         f"{example}.")
    return payload


def _load(loader):
    try:
        return loader(), None
    except UserError as err:
        return None, str(err)


def _public(error: str | None) -> str | None:
    return without_absolute_paths(error) if error else error


def create_app(model_dir: str | os.PathLike | None = None,
               checkpoint: str | os.PathLike | None = None, device: str = "cpu",
               results_dir: str | os.PathLike | None = None,
               allowed_hosts: Collection[str] | None = LOOPBACK_NAMES) -> Flask:
    """The app serving the generator in ``model_dir`` (default models/generator), the
    classifier ``checkpoint`` (default models/mnist_cnn.pt) on ``device`` and, at
    /results, the results page of ``results_dir`` (default results/).

    Requests whose ``Host`` is not one of ``allowed_hosts`` (lower-case names, ports
    ignored) are refused with 403; None answers any host.
    A device that does not exist raises :class:`UserError`; a missing model only
    disables its own routes.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    if allowed_hosts is not None:
        refuse_other_hosts(app, allowed_hosts)
    register_results(app, results_dir)
    target = devices.resolve(device)
    path = model_path(model_dir)
    model, load_error = _load(lambda: load_generator(path))
    classifier, classifier_error = _load(lambda: load_classifier(checkpoint, target))
    for name, error in (("generator", load_error), ("classifier", classifier_error)):
        if error:
            app.logger.warning("%s not loaded: %s", name, error)  # full paths, for the operator
    load_error, classifier_error = _public(load_error), _public(classifier_error)
    stats = model.stats() if model is not None else None
    model_info = classifier.describe() if classifier is not None else None
    app.extensions["digitlab_generator"] = model
    app.extensions["digitlab_classifier"] = classifier

    def unavailable(page: bool = False):
        message = f"the generator model is not available: {load_error}"
        if page:
            return render_template("unavailable.html", title="The generator is not fitted yet",
                                   message=message, command=FIT_COMMAND,
                                   path=shown_path(path),
                                   draw_link=classifier is not None), 503
        return _error(message, 503)

    def classifier_unavailable(page: bool = False):
        message = f"the classifier is not available: {classifier_error}"
        if page:
            return render_template("unavailable.html", title="The classifier is not trained yet",
                                   message=message, command=TRAIN_COMMAND,
                                   path=shown_path(checkpoint_path(checkpoint)),
                                   draw_link=False), 503
        return _error(message, 503)

    def predictions(images) -> list[dict] | None:
        if classifier is None:
            return None
        probabilities = classifier.probabilities(images)
        return [{"digit": int(p.argmax()), "probability": float(p.max())} for p in probabilities]

    @app.get("/")
    def index():
        if model is None:
            return unavailable(page=True)
        return render_template("index.html", stats=stats, max_samples=MAX_SAMPLES,
                               digits=model.digits)

    @app.get("/draw")
    def draw():
        if classifier is None:
            return classifier_unavailable(page=True)
        return render_template("draw.html", model=model_info)

    @app.get("/stats")
    def get_stats():
        if model is None:
            return unavailable()
        return jsonify(success=True, **stats)

    @app.get("/healthz")
    def healthz():
        loaded = {"model_loaded": model is not None, "classifier_loaded": classifier is not None}
        errors = [e for e in (load_error, classifier_error) if e]
        if model is None and classifier is None:
            return jsonify(status="unavailable", **loaded, error=" ".join(errors)), 503
        return jsonify(status="ok", **loaded, **({"error": " ".join(errors)} if errors else {}))

    @app.post("/generate")
    def generate():
        if model is None:
            return unavailable()
        try:
            n, digit, seed, read = parse_generate(_json_body(GENERATE_EXAMPLE))
            images = model.sample(n, digit=digit, seed=seed)
        except (BadRequest, UserError) as err:  # UserError: a digit the model was not fitted on
            return _error(str(err), 400)
        # Reading the digits costs more than drawing them: only when the client asks.
        extra = {"predictions": predictions(images)} if read and classifier is not None else {}
        return jsonify(success=True, images=png_data_uris(images), count=len(images), **extra)

    @app.post("/classify")
    def classify():
        request.max_content_length = MAX_CLASSIFY_BODY_BYTES
        if classifier is None:
            return classifier_unavailable()
        try:
            png = parse_classify(_json_body(CLASSIFY_EXAMPLE))
            digit = prepare_digit(*read_png(png, MAX_SIDE))
        except (BadRequest, BadImage, EmptyImage) as err:
            return _error(str(err), 400)
        probabilities = classifier.probabilities(digit[None])[0]
        return jsonify(success=True, digit=int(probabilities.argmax()),
                       probabilities=probabilities.tolist(), preview=png_data_uri(digit),
                       model=model_info)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return _error(f"the request body is larger than {request.max_content_length} bytes.",
                      400)

    return app
