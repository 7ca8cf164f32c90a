"""What the app tells its clients about files: where a missing model belongs, relative to
the project root, never where the serving machine keeps the project."""

from __future__ import annotations

import pytest

from digitlab.web import create_app
from digitlab.web.shown import without_absolute_paths


def test_missing_models_are_named_relative_to_the_project_root(project_root):
    client = create_app().test_client()  # both models at their defaults, neither there
    answers = {
        "generate": client.post("/generate", json={"n_samples": 1}),
        "classify": client.post("/classify", json={"image": "data:image/png;base64,"}),
        "healthz": client.get("/healthz"),
        "page": client.get("/"),
        "draw": client.get("/draw"),
        "results": client.get("/results/"),
    }
    texts = {name: answer.get_data(as_text=True) for name, answer in answers.items()}
    assert "no generator model at models/generator/generator.npz;" in \
        answers["generate"].get_json()["error"]
    assert "no classifier checkpoint at models/mnist_cnn.pt;" in \
        answers["classify"].get_json()["error"]
    assert "models/generator/generator.npz" in answers["healthz"].get_json()["error"]
    assert "<code>models/generator/generator.npz</code>" in texts["page"]
    assert "<code>models/mnist_cnn.pt</code>" in texts["draw"]
    assert "(results/index.html)" in texts["results"]
    for name, text in texts.items():
        assert str(project_root) not in text, name


def test_a_model_outside_the_project_is_named_by_its_file_alone(project_root,
                                                                 tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    client = create_app(elsewhere, checkpoint=elsewhere / "other.pt").test_client()
    error = client.post("/generate", json={"n_samples": 1}).get_json()["error"]
    assert "no generator model at generator.npz;" in error and str(elsewhere) not in error
    assert "<code>other.pt</code>" in client.get("/draw").get_data(as_text=True)


@pytest.mark.parametrize("text, shown", [
    ("no model at {root}/models/x.pt; fit one.", "no model at models/x.pt; fit one."),
    ("{root}/data/raw/mnist is empty.", "data/raw/mnist is empty."),
    ("folder /usr/share/datasets/fashion-mnist: 60,000", "folder fashion-mnist: 60,000"),
    ("folder C:\\Users\\ada\\mnist: 60,000", "folder mnist: 60,000"),
    ("send Content-Type: application/json, data:image/png;base64,",
     "send Content-Type: application/json, data:image/png;base64,"),
    ("see https://example.org/mnist/ or models/x.pt", "see https://example.org/mnist/ or "
     "models/x.pt"),
    # Not paths: a route and a division are left as they are.
    ("pixels 0 / 255; see /healthz or /classify.", "pixels 0 / 255; see /healthz or /classify."),
    ("stored at /tmp/run.pt.", "stored at run.pt."),
])
def test_absolute_paths_in_text_are_shown_relative_or_by_name(project_root, text, shown):
    assert without_absolute_paths(text.format(root=project_root)) == shown

