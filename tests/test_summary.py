import json

from digitlab.pipeline.summary import END, START, Row, render, update_readme


def test_table_reads_values_from_results_and_names_missing_files(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "m.json").write_text(json.dumps({"metrics": {"acc": 0.9876, "f": [1, 2]}}))
    rows = [Row("T", "accuracy", "t/m.json", "metrics.acc", "pct", "make t"),
            Row("T", "second", "t/m.json", "metrics.f.1", "int", "make t"),
            Row("U", "other", "u/none.json", "x", "pct", "make u"),
            Row("T", "typo", "t/m.json", "metrics.nope", "pct", "make t")]
    table = render(rows, tmp_path)
    assert "| T | accuracy | 98.8% |" in table
    assert "| T | second | 2 |" in table
    assert "| U | other | not run yet |" in table and "`make u`" in table
    assert "| T | typo | missing |" in table


def test_readme_update_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\noutro\n")
    update_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{START}\n| new |\n{END}\noutro\n"


def test_a_readme_without_markers_or_a_broken_results_file_is_reported_clearly(tmp_path):
    import pytest

    from digitlab.cli import UserError

    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(UserError, match="has no .* block"):
        update_readme("| t |\n", readme)
    assert readme.read_text() == "no markers here\n"
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(UserError, match="m.json is not valid JSON.*`make t`"):
        render([Row("T", "x", "m.json", "a", "pct", "make t")], tmp_path)


def test_a_glob_row_reads_the_newest_matching_file(tmp_path):
    import os

    for name, acc, mtime in (("test-embedded", 0.98, 1_000), ("test-local", 0.99, 2_000)):
        folder = tmp_path / "eval" / name
        folder.mkdir(parents=True)
        (folder / "m.json").write_text(json.dumps({"acc": acc}))
        os.utime(folder / "m.json", (mtime, mtime))
    table = render([Row("T", "acc", "eval/test-*/m.json", "acc", "pct", "make t")], tmp_path)
    assert "| T | acc | 99.0% |" in table
