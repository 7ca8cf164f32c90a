"""The generator side of the web app through Flask's test client: every route and every
error (the recognise side is in tests/test_web_classify.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from digitlab.data.sources import load_mnist
from digitlab.data.transforms import to_tensor
from digitlab.engine import predict_proba
from digitlab.engine.checkpoint import load_checkpoint
from digitlab.generator import pca_kde as gen
from digitlab.web import MAX_BODY_BYTES, MAX_SEED, create_app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:300], splits.train_labels[:300],
                                 n_components=10, bandwidth=0.4, progress=False,
                                 metadata={"data": splits.summary()})
    folder = tmp_path_factory.mktemp("generator")
    model.save(gen.model_path(folder))
    return folder


@pytest.fixture(scope="module")
def client(model_dir, classifier_checkpoint):
    return create_app(model_dir, checkpoint=classifier_checkpoint).test_client()


def decode(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))))


def test_page_shows_stats_and_the_form(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for marker in ('id="count"', 'id="digit"', 'id="generate"', 'id="gallery"', "app.js",
                   "10 of 784 pixels", 'href="/draw"'):
        assert marker in html
    assert client.get("/static/app.js").status_code == 200


def test_stats_and_health(client, model_dir):
    stats = client.get("/stats").get_json()
    model = gen.load_generator(gen.model_path(model_dir))
    assert stats["success"] is True
    # The generator API's documented fields, by name: a client written for it keeps working.
    documented = {"pca_components": 10, "variance_explained": model.variance_explained,
                  "kde_bandwidth": 0.4, "original_dim": 784, "reduced_dim": 10}
    assert {key: stats[key] for key in documented} == pytest.approx(documented)
    assert stats["kernel"] == "gaussian" and stats["n_train"] == 300
    assert client.get("/healthz").get_json() == {"status": "ok", "model_loaded": True,
                                                 "classifier_loaded": True}


def test_generate_returns_that_many_png_digits(client, model_dir):
    reply = client.post("/generate", json={"n_samples": 4, "digit": 7, "seed": 1})
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["success"] is True and body["count"] == 4 and len(body["images"]) == 4
    images = np.stack([decode(uri) for uri in body["images"]])
    model = gen.load_generator(gen.model_path(model_dir))
    np.testing.assert_array_equal(images, model.sample(4, digit=7, seed=1))
    for n in (1, 16):
        assert client.post("/generate", json={"n_samples": n}).get_json()["count"] == n


def test_generate_says_what_the_classifier_reads_each_image_as(client, classifier_checkpoint):
    assert "predictions" not in client.post("/generate", json={"n_samples": 2}).get_json()
    body = client.post("/generate", json={"n_samples": 6, "seed": 3, "classify": True}).get_json()
    images = np.stack([decode(uri) for uri in body["images"]])
    model, _ = load_checkpoint(classifier_checkpoint)
    expected = predict_proba(model, to_tensor(images)).numpy()
    assert [p["digit"] for p in body["predictions"]] == expected.argmax(1).tolist()
    np.testing.assert_allclose([p["probability"] for p in body["predictions"]],
                               expected.max(1), rtol=1e-5)


def test_generate_leaves_predictions_out_without_a_classifier(model_dir, tmp_path):
    client = create_app(model_dir, checkpoint=tmp_path / "none.pt").test_client()
    body = client.post("/generate", json={"n_samples": 2, "seed": 0, "classify": True}).get_json()
    assert body["success"] is True and "predictions" not in body
    assert client.get("/healthz").get_json()["classifier_loaded"] is False


def test_the_largest_seed_is_accepted(client):
    assert MAX_SEED == 2**63 - 1
    reply = client.post("/generate", json={"n_samples": 1, "seed": MAX_SEED})
    assert reply.status_code == 200 and reply.get_json()["count"] == 1


def test_seeded_requests_are_reproducible_and_unseeded_ones_differ(client):
    first = client.post("/generate", json={"n_samples": 3, "seed": 42}).get_json()["images"]
    again = client.post("/generate", json={"n_samples": 3, "seed": 42}).get_json()["images"]
    other = client.post("/generate", json={"n_samples": 3, "seed": 43}).get_json()["images"]
    fresh = [client.post("/generate", json={"n_samples": 3}).get_json()["images"]
             for _ in range(2)]
    assert first == again and first != other and fresh[0] != fresh[1]


@pytest.mark.parametrize("payload, message", [
    ({}, "'n_samples' is required"),
    ({"n_samples": None}, "'n_samples' is required"),
    ({"n_samples": "4"}, "must be an integer"),
    ({"n_samples": 4.0}, "must be an integer"),
    ({"n_samples": 2.5}, "must be an integer"),
    ({"n_samples": True}, "must be an integer"),
    ({"n_samples": 0}, "from 1 to 16"),
    ({"n_samples": 17}, "from 1 to 16"),
    ({"n_samples": -3}, "from 1 to 16"),
    ({"n_samples": 4, "digit": 10}, "'digit' must be from 0 to 9"),
    ({"n_samples": 4, "digit": -1}, "'digit' must be from 0 to 9"),
    ({"n_samples": 4, "digit": "7"}, "'digit' must be an integer"),
    ({"n_samples": 4, "digit": False}, "'digit' must be an integer"),
    ({"n_samples": 4, "seed": -1}, "'seed' must be from 0"),
    ({"n_samples": 4, "seed": "abc"}, "'seed' must be an integer"),
    ({"n_samples": 4, "seed": MAX_SEED + 1}, f"'seed' must be from 0 to {MAX_SEED}, got 9223"),
    ({"n_samples": 4, "seed": 10**300}, "'seed' must be from 0 to 9223372036854775807, "
                                        "got a 301-digit number."),
    ({"n_samples": 4, "seed": 1e30}, "'seed' must be an integer from 0 to"),
    ({"n_samples": 4, "seed": 7.0}, "'seed' must be an integer from 0 to"),
    ({"n_samples": 4, "digits": 7}, "unknown field(s) digits"),
    ({"n_samples": 4, "classify": "yes"}, "'classify' must be true or false"),
    ([4], "must be a JSON object"),
    ("4", "must be a JSON object"),
])
def test_bad_generate_requests_get_400_and_a_reason(client, payload, message):
    reply = client.post("/generate", json=payload)
    assert reply.status_code == 400
    body = reply.get_json()
    assert body["success"] is False and message in body["error"]


@pytest.mark.parametrize("data, content_type", [
    ("n_samples=4", "application/x-www-form-urlencoded"),
    ('{"n_samples": 4}', "text/plain"),
    ('{"n_samples": 4', "application/json"),
    ("", "application/json"),
])
def test_bodies_that_are_not_json_get_400(client, data, content_type):
    reply = client.post("/generate", data=data, content_type=content_type)
    assert reply.status_code == 400
    assert reply.get_json()["success"] is False and "must be JSON" in reply.get_json()["error"]


def test_oversized_bodies_get_400_even_after_a_large_classify_request(client):
    padding = " " * MAX_BODY_BYTES
    # /classify takes megabytes; its limit must not carry over to the next request.
    assert client.post("/classify", data='{"image": 1}' + padding,
                       content_type="application/json").status_code == 400
    reply = client.post("/generate", data='{"n_samples": 4}' + padding,
                        content_type="application/json")
    assert reply.status_code == 400
    assert f"larger than {MAX_BODY_BYTES} bytes" in reply.get_json()["error"]


def test_wrong_methods_and_routes(client):
    assert client.get("/generate").status_code == 405
    assert client.get("/no-such-page").status_code == 404


def test_without_any_model_every_route_answers_503_naming_the_command(tmp_path):
    client = create_app(tmp_path / "empty", checkpoint=tmp_path / "none.pt").test_client()
    page = client.get("/")
    assert page.status_code == 503 and "make generator" in page.get_data(as_text=True)
    for reply in (client.get("/stats"), client.post("/generate", json={"n_samples": 1}),
                  client.get("/healthz")):
        assert reply.status_code == 503
        body = reply.get_json()
        assert body.get("success", False) is False
        assert "make generator" in (body.get("error") or "")


def test_a_corrupted_model_file_is_reported_not_raised(tmp_path):
    gen.model_path(tmp_path).write_bytes(b"garbage")
    app = create_app(tmp_path, checkpoint=tmp_path / "none.pt")
    reply = app.test_client().post("/generate", json={"n_samples": 1})
    assert reply.status_code == 503 and "is not a readable generator model" in \
        reply.get_json()["error"]


def test_a_digit_the_model_was_not_fitted_on_is_a_clear_400(tmp_path):
    splits = load_mnist("embedded")
    low = splits.train_labels < 5
    model, _ = gen.fit_generator(splits.train_images[low][:200], splits.train_labels[low][:200],
                                 n_components=8, bandwidth=0.4, progress=False)
    model.save(gen.model_path(tmp_path))
    client = create_app(tmp_path, checkpoint=tmp_path / "none.pt").test_client()
    answer = client.post("/generate", json={"n_samples": 2, "digit": 7})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["success"] is False and "digit 7 is not one" in body["error"]
    assert client.post("/generate", json={"n_samples": 2, "digit": 3}).status_code == 200


@pytest.mark.parametrize("kernel", ["epanechnikov", "exponential"])
def test_the_app_serves_a_model_of_a_kernel_scikit_learn_cannot_sample(tmp_path, kernel):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:200], splits.train_labels[:200],
                                 n_components=8, bandwidth=0.05 if kernel == "exponential"
                                 else 6.0, kernel=kernel, progress=False)
    model.save(gen.model_path(tmp_path))
    client = create_app(tmp_path).test_client()
    assert client.get("/stats").get_json()["kernel"] == kernel
    assert f"{kernel}, " in client.get("/").get_data(as_text=True)
    reply = client.post("/generate", json={"n_samples": 3, "digit": 4, "seed": 2})
    assert reply.status_code == 200
    expected = model.sample(3, digit=4, seed=2)
    for uri, image in zip(reply.get_json()["images"], expected, strict=True):
        np.testing.assert_array_equal(decode(uri), image)
