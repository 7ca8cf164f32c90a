"""The CNN project's slides: ten pages whose numbers come from the project's metrics file."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from matplotlib.image import imsave
from matplotlib.text import Text
from test_minimnist_bad_input import load_script

from digitlab.errors import UserError
from digitlab.mnist.slides import build_slides, confusions, draw, layer_lines, write_slides

PICTURES = ("architectures_learning_curves.png", "confusion_matrix.png", "misclassified.png",
            "filters.png", "feature_maps.png")


def confusion_matrix() -> np.ndarray:
    """1,000 test digits, 912 right: 4 read as 9 fifty times, 3 as 5 thirty, 7 as 1 eight."""
    matrix = np.diag([91] * 9 + [93])
    matrix[4, 9], matrix[3, 5], matrix[7, 1] = 50, 30, 8
    return matrix


def run(name: str, augment: bool, acc: float) -> dict:
    return {"run": name, "arch": name.split()[0], "augment": augment, "parameters": 50186,
            "val_accuracy": acc, "epochs_to_converge": 3, "train_seconds": 12.34}


def document() -> dict:
    matrix = confusion_matrix()
    per_class = {str(d): {"precision": 0.9, "recall": matrix[d, d] / matrix[d].sum(),
                          "f1": 0.9, "support": int(matrix[d].sum())} for d in range(10)}
    return {
        "metrics": {
            "comparison": [run("cnn2", False, 0.9512), run("cnn3", False, 0.9401)],
            "chosen_architecture": "cnn2",
            "augmentation": [run("cnn2", False, 0.9512), run("cnn2 + augmentation", True, 0.9634)],
            "final_model": "cnn2 + augmentation",
            "test_accuracy": 0.912, "test_macro_f1": 0.8766,
            "test": {"accuracy": 0.912, "macro_precision": 0.9, "macro_recall": 0.9,
                     "macro_f1": 0.8766, "per_class": per_class,
                     "confusion_matrix": matrix.tolist(), "n": 1000},
        },
        "data": {"source": "embedded", "description": "embedded subset", "n_train": 3500,
                 "n_val": 500, "n_test": 1000},
        "run": {"config": {"quick": False, "candidates": ["cnn2", "cnn3"], "recipe": {
            "optimizer": "adamw", "schedule": "onecycle", "learning_rate": 0.003,
            "batch_size": 128, "epochs": 5, "model_kwargs": {},
            "augment_params": {"degrees": 10.0, "translate": 0.1, "scale": [0.9, 1.1]}}},
            "git_commit": "0123456789abcdef"},
    }


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "results" / "mnist" / "project"
    folder.mkdir(parents=True)
    for name in PICTURES:
        imsave(folder / name, np.eye(8))
    (folder / "metrics.json").write_text(json.dumps(document()))
    return folder


def texts(slide) -> str:
    """Every text drawn on the slide's page, with line wrapping undone."""
    figure = draw(slide, 1, 10, "footer")
    cells = [cell.get_text() for ax in figure.axes for table in ax.tables
             for cell in table.get_celld().values()]
    return " ".join(" ".join(t.get_text() for t in figure.findobj(Text) + cells).split())


def test_the_deck_is_one_pdf_of_ten_pages_written_atomically(project, tmp_path):
    output = write_slides(project / "metrics.json", tmp_path / "talk" / "slides.pdf")
    data = output.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 10
    assert [p.name for p in output.parent.iterdir()] == ["slides.pdf"]  # no temporary left


def test_the_numbers_on_the_slides_come_from_the_metrics_file(project):
    slides = build_slides(document(), project)
    assert [s.title for s in slides][:3] == ["Recognising handwritten digits with a CNN",
                                             "The data", "Preprocessing"]
    results = texts(slides[5])
    assert "91.2%" in results and "1,000 images" in results and "0.877" in results
    # The table: each run's validation accuracy, parameters and training time.
    assert "cnn2 + augmentation 50,186 96.3% 3 12.3" in results
    assert "cnn3 50,186 94.0% 3 12.3" in results
    conclusions = texts(slides[-1])
    assert "91.2%" in conclusions and "96.3% with, 95.1% without" in conclusions
    assert "Augmentation helped" in conclusions
    mistakes = texts(slides[8])
    assert "88 of 1,000 test digits misclassified" in mistakes
    assert "true 4 read as 9: 50 times; true 3 read as 5: 30 times; true 7 read as 1: 8 times" \
        in mistakes
    # The lowest recall is digit 4 (91 of 141), then 3 (91 of 121).
    assert "digit 4 64.5%; digit 3 75.2%" in texts(slides[6])
    assert "3,500 training, 500 validation and 1,000 test images" in texts(slides[1])


def test_the_network_slide_lists_each_layer_with_its_parameters():
    # cnn2: conv 1->32 3x3 (9*32 + 32), conv 32->64 3x3 (9*32*64 + 64), linear 64*7*7 -> 10.
    counts = [int(line.split()[-1].replace(",", "")) for line in layer_lines("cnn2", {})]
    assert [c for c in counts if c] == [320, 18_496, 31_370]
    assert layer_lines("nope", {})[0].startswith("unknown CNN architecture 'nope'")


def test_confusions_are_the_largest_off_diagonal_counts():
    assert confusions(confusion_matrix()) == [(4, 9, 50), (3, 5, 30), (7, 1, 8)]
    assert confusions(np.diag([5, 5])) == []


def test_a_missing_picture_is_named_on_its_slide_and_the_rest_still_draws(project):
    (project / "filters.png").unlink()
    slides = build_slides(document(), project)
    assert "filters.png not found; `make mnist` writes it." in texts(slides[7])


def test_a_missing_or_foreign_metrics_file_is_one_sentence_naming_make_mnist(tmp_path, capsys):
    missing = tmp_path / "metrics.json"
    with pytest.raises(UserError, match=r"does not exist; run `make mnist`"):
        write_slides(missing, tmp_path / "slides.pdf")
    missing.write_text(json.dumps({"metrics": {"accuracy": 0.9}}))
    with pytest.raises(UserError, match=r"not the CNN project's metrics file.*`make mnist`"):
        write_slides(missing, tmp_path / "slides.pdf")
    missing.unlink()
    with pytest.raises(SystemExit) as exit_info:
        load_script("make_slides").main(["--metrics", str(missing),
                                         "--output", str(tmp_path / "slides.pdf")])
    assert exit_info.value.code == 2
    assert "make mnist" in capsys.readouterr().err
    assert not (tmp_path / "slides.pdf").exists()
