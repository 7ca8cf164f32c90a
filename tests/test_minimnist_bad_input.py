"""Bad Mini MNIST input: one clear sentence naming the file, exit status 2, no output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import UserError
from digitlab.minimnist import dataset

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
HEADER = ",".join(dataset.COLUMNS)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def good_rows(n: int = 3) -> list[str]:
    return [",".join(["0"] * 72 + [str(i % 10)]) for i in range(n)]


def with_cell(column: str, value: str) -> str:
    rows = good_rows()
    cells = rows[1].split(",")
    cells[dataset.COLUMNS.index(column)] = value
    rows[1] = ",".join(cells)
    return "\n".join([HEADER, *rows]) + "\n"


def without_column(column: str) -> str:
    keep = [i for i, name in enumerate(dataset.COLUMNS) if name != column]
    rows = [",".join(np.array(line.split(","))[keep]) for line in [HEADER, *good_rows()]]
    return "\n".join(rows) + "\n"


BAD_FILES = {
    "missing column": (without_column("pixel_5"), "missing column(s) pixel_5 of"),
    "extra column": ("\n".join([HEADER + ",extra", *[r + ",1" for r in good_rows()]]) + "\n",
                     "unexpected column(s) extra"),
    "non-numeric cell": (with_cell("pixel_7", "dark"), "non-numeric value 'dark' at line 3"),
    "empty cell": (with_cell("pixel_7", ""), "missing (empty or NaN) value at line 3"),
    "NaN cell": (with_cell("label", "NaN"), "missing (empty or NaN) value at line 3"),
    "label 10": (with_cell("label", "10"), "labels outside 0-9"),
    "label -1": (with_cell("label", "-1"), "labels outside 0-9"),
    "label 2.5": (with_cell("label", "2.5"), "non-integer labels"),
    "pixel 300": (with_cell("pixel_0", "300"), "pixel values outside 0-255"),
    "ragged row": ("\n".join([HEADER, *good_rows(), "1,2,3," * 30]) + "\n", "not a well-formed"),
    "header only": (HEADER + "\n", "no data rows"),
    "empty file": ("", "is empty"),
}


def run_and_capture(script: str, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        load_script(script).main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_csv_is_rejected_with_one_sentence_and_no_output(case, tmp_path, capsys):
    content, expected = BAD_FILES[case]
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    out = tmp_path / "out"
    message = run_and_capture("preprocess", ["--input", str(bad), "--output-dir", str(out)], capsys)
    assert str(bad) in message and expected in message
    assert not out.exists()


@pytest.mark.parametrize("script", ["preprocess", "clustering", "evaluate", "split_data"])
def test_every_script_reports_a_missing_input_file(script, project_root, capsys):
    missing = project_root / "data" / "nowhere.csv"
    message = run_and_capture(script, ["--input", str(missing)], capsys)
    assert f"{missing} does not exist" in message
    assert list((project_root / "results").iterdir()) == []
    assert list((project_root / "data").iterdir()) == []


def test_evaluate_rejects_assignments_that_do_not_match_the_data(project_root, capsys):
    images, labels = dataset.generate(3, seed=0)
    data = dataset.write_csv(project_root / "data" / "mini_mnist.csv", images, labels)
    assignments = project_root / "clusters.csv"
    assignments.write_text("row,cluster\n" + "".join(f"{i},0\n" for i in range(5)))
    message = run_and_capture("evaluate", ["--input", str(data), "--assignments", str(assignments)],
                              capsys)
    assert str(assignments) in message and "exactly once" in message
    assert list((project_root / "results").iterdir()) == []


def test_generate_rejects_bad_options_before_writing(project_root, capsys):
    message = run_and_capture("generate_data", ["--n-per-class", "0"], capsys)
    assert "--n-per-class" in message
    message = run_and_capture("generate_data", ["--width-min", "3", "--width-max", "1"], capsys)
    assert "--width-min" in message
    assert list((project_root / "data").iterdir()) == []
    assert np.all([not p.exists() for p in (project_root / "results").iterdir()])


def test_generate_refuses_a_size_that_cannot_fit_in_memory_before_allocating(
        project_root, capsys, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("generate() ran: the size was not refused up front")

    monkeypatch.setattr(dataset, "generate", must_not_run)
    message = run_and_capture("generate_data", ["--n-per-class", "1000000000"], capsys)
    assert "--n-per-class: 1,000,000,000 images per digit would need" in message
    assert "GB of memory" in message and "\n" not in message.strip()
    assert list((project_root / "data").iterdir()) == []


def test_the_memory_estimate_covers_the_measured_peak(tmp_path):
    import tracemalloc

    n_per_class = 200
    tracemalloc.start()
    try:
        images, labels = dataset.generate(n_per_class, mode="random")
        dataset.write_csv(tmp_path / "m.csv", images, labels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = 10 * n_per_class * dataset.BYTES_PER_IMAGE
    assert peak <= estimate + 64 * 1024  # a few buffers of fixed size on top
    dataset.check_fits_in_memory(n_per_class, memory=estimate)
    with pytest.raises(UserError, match="GB; use at most 200 per digit[.]$"):
        dataset.check_fits_in_memory(n_per_class + 1, memory=estimate)


def test_a_trailing_comma_on_every_row_does_not_shift_the_columns(tmp_path):
    rows = [",".join([str(i)] * 72 + [str(i % 10)]) + "," for i in range(3)]
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    pixels, labels = dataset.read_csv(path)
    assert pixels.reshape(3, -1)[:, 0].tolist() == [0, 1, 2] and labels.tolist() == [0, 1, 2]
