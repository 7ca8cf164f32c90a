"""Recognising a drawn digit through the app (Flask's test client): POST /classify, the
drawing page, every bad request, and the routes' independence from each other's model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.data.sources import load_mnist
from digitlab.data.transforms import to_tensor
from digitlab.engine import NetworkSpec, predict_proba
from digitlab.engine.checkpoint import load_checkpoint, save_checkpoint
from digitlab.errors import UserError
from digitlab.generator import pca_kde as gen
from digitlab.mnist.networks import build_cnn
from digitlab.web import MAX_CLASSIFY_BODY_BYTES, create_app
from digitlab.web.classifier import load_classifier

PREFIX = "data:image/png;base64,"


def data_uri(pixels: np.ndarray, **save) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save)
    return PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(uri: str) -> np.ndarray:
    assert uri.startswith(PREFIX)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(PREFIX):]))))


def drawn(digit: np.ndarray, size: int = 280) -> np.ndarray:
    """A 28x28 digit enlarged to size x size, white on black."""
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def digits():
    splits = load_mnist("embedded")
    return splits.test_images[:40], splits.test_labels[:40]


@pytest.fixture(scope="module")
def direct(classifier_checkpoint, digits):
    """The checkpoint's probabilities on the 28x28 originals, without the app."""
    model, _ = load_checkpoint(classifier_checkpoint)
    return predict_proba(model, to_tensor(digits[0])).numpy()


@pytest.fixture(scope="module")
def client(classifier_checkpoint, tmp_path_factory):
    # No generator here: /classify must not need one.
    return create_app(tmp_path_factory.mktemp("no-generator"),
                      checkpoint=classifier_checkpoint).test_client()


def classify(client, image: str):
    return client.post("/classify", json={"image": image})


def test_classify_answers_the_digit_its_probabilities_the_preview_and_the_model(
        client, digits, direct, classifier_checkpoint):
    images, labels = digits
    reply = classify(client, data_uri(drawn(images[0])))
    assert reply.status_code == 200
    body = reply.get_json()
    assert list(body) == ["success", "digit", "probabilities", "preview", "model"]
    assert body["success"] is True
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (10,) and probabilities.min() >= 0
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert body["digit"] == int(probabilities.argmax()) == int(direct[0].argmax())
    preview = decode(body["preview"])
    assert preview.shape == (28, 28) and preview.dtype == np.uint8
    # The network saw (nearly) the MNIST digit the drawing was made from.
    assert np.abs(preview.astype(int) - images[0].astype(int)).mean() < 15
    info = load_checkpoint(classifier_checkpoint)[1]
    assert body["model"] == {
        "checkpoint": "small_cnn.pt", "arch": "cnn2", "data_source": "embedded",
        "data_description": info["data"]["description"], "noise": None,
        "test_accuracy": pytest.approx(info["metrics"]["test_accuracy"])}


def test_drawings_are_read_as_the_network_reads_the_originals(client, digits, direct):
    images, labels = digits
    for polarity in ("light on dark", "dark on light"):
        read = []
        for image in images:
            picture = drawn(image)
            picture = picture if polarity == "light on dark" else 255 - picture
            read.append(classify(client, data_uri(picture)).get_json()["digit"])
        agreement = np.mean(np.array(read) == direct.argmax(1))
        assert agreement >= 0.95, polarity


def test_a_canvas_with_a_transparent_background_and_a_small_digit_works(client, digits, direct):
    images, _ = digits
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = 255                             # white strokes...
    rgba[200:260, 10:70, 3] = drawn(images[1], 60)  # ...drawn small in a corner
    body = classify(client, data_uri(rgba)).get_json()
    assert body["digit"] == int(direct[1].argmax())
    color = np.zeros((300, 200, 3), np.uint8)
    color[...] = (250, 240, 200)                    # cream paper, blue ink
    ink = drawn(images[2], 180)[..., None] / 255
    color[60:240, 10:190] = np.round((1 - ink) * (250, 240, 200) + ink * (20, 30, 120))
    assert classify(client, data_uri(color)).get_json()["digit"] == int(direct[2].argmax())


def test_the_largest_png_fits_the_body_limit(client):
    # 1024x1024 RGBA noise, stored uncompressed: the largest 8-bit PNG there is.
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 4), np.uint8)
    noise[..., 3] = 255
    image = data_uri(noise, compress_level=0)
    assert len(image) > 5_500_000
    assert classify(client, image).status_code == 200


def png_uri(pixels: np.ndarray) -> str:
    return data_uri(pixels.astype(np.uint8))


BLANK = np.zeros((280, 280), np.uint8)
WHITE = np.full((280, 280), 255, np.uint8)
CLEARED_CANVAS = np.zeros((280, 280, 4), np.uint8)


def truncated_png() -> str:
    uri = data_uri(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8))
    data = base64.b64decode(uri[len(PREFIX):])
    return PREFIX + base64.b64encode(data[:len(data) // 2]).decode()


def jpeg_uri() -> str:
    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="JPEG")
    return PREFIX + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("payload, message", [
    ({}, "'image' is required"),
    ({"image": None}, "'image' is required"),
    ({"image": 7}, "must be a PNG data URI starting with data:image/png;base64,"),
    ({"image": "iVBORw0KGgo="}, "must be a PNG data URI"),
    ({"image": "data:image/jpeg;base64,/9j/4AAQ"}, "must be a PNG data URI"),
    ({"image": PREFIX + "not base64!"}, "not valid base64"),
    ({"image": PREFIX + base64.b64encode(b"hello").decode()}, "not a PNG file"),
    ({"image": jpeg_uri()}, "not a PNG file"),
    ({"image": truncated_png()}, "damaged or truncated"),
    ({"image": png_uri(np.zeros((10, 1025)))}, "1025x10 pixels, more than the largest"),
    ({"image": png_uri(BLANK)}, "draw a digit first"),
    ({"image": png_uri(WHITE)}, "draw a digit first"),
    ({"image": png_uri(CLEARED_CANVAS)}, "draw a digit first"),
    ({"image": png_uri(BLANK), "digit": 3}, "unknown field(s) digit"),
    (["data:image/png;base64,"], "must be a JSON object"),
])
def test_bad_classify_requests_get_400_and_a_reason(client, payload, message):
    reply = client.post("/classify", json=payload)
    assert reply.status_code == 400
    body = reply.get_json()
    assert body["success"] is False and message in body["error"]


@pytest.mark.parametrize("data, content_type", [
    ("image=abc", "application/x-www-form-urlencoded"),
    ('{"image": "data:image/png;base64,"}', "text/plain"),
    ('{"image": ', "application/json"),
    ("", "application/json"),
])
def test_classify_bodies_that_are_not_json_get_400(client, data, content_type):
    reply = client.post("/classify", data=data, content_type=content_type)
    assert reply.status_code == 400
    assert "must be JSON" in reply.get_json()["error"]


def test_classify_bodies_over_the_limit_get_400(client):
    # (tests/test_web.py checks that /generate keeps its 1 KiB limit.)
    body = '{"image": "' + "A" * MAX_CLASSIFY_BODY_BYTES + '"}'
    reply = client.post("/classify", data=body, content_type="application/json")
    assert reply.status_code == 400
    assert f"larger than {MAX_CLASSIFY_BODY_BYTES} bytes" in reply.get_json()["error"]


def test_the_drawing_page_has_a_canvas_bars_and_a_preview(client, classifier_checkpoint):
    page = client.get("/draw")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for marker in ('<canvas id="canvas" width="280" height="280"', 'id="clear"', 'id="preview"',
                   'id="read-digit"', "draw.js", "small_cnn.pt", "test accuracy"):
        assert marker in html
    assert html.count('<li data-digit="') == 10
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    script = client.get("/static/draw.js")
    assert script.status_code == 200 and b"pointerdown" in script.data
    script.close()


def test_without_a_checkpoint_classify_answers_503_naming_make_mnist(tmp_path):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:200], splits.train_labels[:200],
                                 n_components=8, bandwidth=0.4, progress=False)
    model.save(gen.model_path(tmp_path))
    client = create_app(tmp_path, checkpoint=tmp_path / "missing.pt").test_client()
    reply = classify(client, png_uri(BLANK))
    assert reply.status_code == 503 and "make mnist" in reply.get_json()["error"]
    # The file is named, but not where the server keeps it: clients see no absolute path.
    assert "at missing.pt;" in reply.get_json()["error"]
    assert str(tmp_path) not in reply.get_json()["error"]
    page = client.get("/draw")
    assert page.status_code == 503 and "make mnist" in page.get_data(as_text=True)
    # The generator's routes are unaffected.
    assert client.post("/generate", json={"n_samples": 2}).status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_without_a_generator_the_classifier_still_serves(client):
    assert classify(client, png_uri(drawn(np.eye(28, dtype=np.uint8) * 255))).status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["model_loaded"] is False
    assert health.get_json()["classifier_loaded"] is True
    page = client.get("/")
    assert page.status_code == 503 and 'href="/draw"' in page.get_data(as_text=True)
    assert client.post("/generate", json={"n_samples": 1}).status_code == 503


def test_a_damaged_checkpoint_is_reported_not_raised(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"garbage")
    client = create_app(tmp_path, checkpoint=tmp_path / "broken.pt").test_client()
    reply = classify(client, png_uri(BLANK))
    assert reply.status_code == 503
    assert "not a readable PyTorch checkpoint" in reply.get_json()["error"]


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu'"),
                                             ("cuda:7", "cuda:7")])
def test_a_device_that_does_not_exist_stops_the_app_with_one_sentence(tmp_path, device, message):
    with pytest.raises(UserError, match=message):
        create_app(tmp_path, checkpoint=tmp_path / "none.pt", device=device)


def test_the_served_network_computes_what_the_checkpoint_does(tmp_path, digits):
    # The best CNN has batch norms, which the app folds into the convolutions.
    torch.manual_seed(0)
    model = build_cnn("best", width=8)
    for module in model.modules():  # statistics as after training, not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    path = save_checkpoint(tmp_path / "best.pt", model, NetworkSpec("best", {"width": 8}),
                           data={"source": "embedded"}, metrics={"test_accuracy": None})
    served = load_classifier(path)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in served.model.modules())
    saved, _ = load_checkpoint(path)
    expected = predict_proba(saved, to_tensor(digits[0])).numpy()
    np.testing.assert_allclose(served.probabilities(digits[0]), expected, atol=1e-5)
