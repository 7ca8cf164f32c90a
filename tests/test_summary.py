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
    assert "| T | typo | missing |" in table  # a file without the key is a (wrong) result
    # A command none of whose files exist is no row, but one entry of the line under the table.
    assert "| U |" not in table and "not run yet" not in table
    assert table.endswith("\n\nNot run yet: `make u` (its results).\n")


def test_readme_update_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\noutro\n")
    update_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{START}\n| new |\n{END}\noutro\n"


def test_a_readme_without_markers_or_a_broken_results_file_is_reported_clearly(tmp_path):
    import pytest

    from digitlab.errors import UserError

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


def evaluation(results, folder: str, accuracy: float, noise, mtime: int) -> None:
    """A metrics.json laid out as scripts/evaluate_model.py writes it."""
    import os

    path = results / "mnist" / "evaluation" / folder / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "metrics": {"accuracy": accuracy, "n": 1000},
        "test_set": {"source": "embedded", "n_test": 1000, "split": "test", "noise": noise},
        "run": {"config": {"noise": noise}}}))
    os.utime(path, (mtime, mtime))


def test_the_best_cnn_rows_read_the_clean_evaluation_even_when_a_noisy_one_is_newer(tmp_path):
    from digitlab.pipeline.summary import ROWS

    rows = [r for r in ROWS if r.label.startswith("best CNN, ") and "evaluation" in r.file]
    assert len(rows) == 3
    evaluation(tmp_path, "mnist_cnn__test-embedded", 0.99, None, 1_000)
    evaluation(tmp_path, "mnist_cnn__test-embedded_awgn", 0.10, "awgn", 2_000)
    table = render(rows, tmp_path)
    assert "| best CNN, held-out test set | 99.00% |" in table
    assert "| best CNN, test set source | embedded |" in table
    # Only a noisy evaluation: the clean row has nothing to read.
    (tmp_path / "mnist/evaluation/mnist_cnn__test-embedded/metrics.json").unlink()
    table = render(rows, tmp_path)
    assert "held-out test set" not in table
    assert table.startswith("Nothing measured yet") and "Not run yet: `make mnist` (" in table


def load_benchmark(name: str):
    import importlib.util

    from digitlab.paths import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_make_target_is_recorded_and_shown_as_failed(tmp_path, capsys):
    import pytest

    from digitlab.pipeline.summary import ROWS

    # A stand-in Makefile: `make all` succeeds, `make test` fails.
    (tmp_path / "Makefile").write_text("all:\n\t@echo built\ntest:\n\t@echo broken; exit 3\n")
    output = tmp_path / "results" / "pipeline_time.json"
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("pipeline_time").main(["--directory", str(tmp_path), "--output",
                                              str(output)])
    assert exit_info.value.code == 2
    assert "`make test` failed" in capsys.readouterr().err
    saved = json.loads(output.read_text())["metrics"]
    assert saved["all"]["failed"] is False and saved["all"]["minutes"] >= 0
    assert saved["test"]["failed"] is True and saved["test"]["exit_status"] != 0
    assert "minutes" not in saved["test"] and "seconds" not in saved["test"]
    assert "broken" in (tmp_path / "results/pipeline_time_logs/test.log").read_text()
    table = render([r for r in ROWS if r.file == "pipeline_time.json"], tmp_path / "results")
    assert "| `make test` wall time (2 cores) | failed |" in table
    assert f"| `make all` wall time (2 cores) | {saved['all']['minutes']:.1f} min |" in table

    # Re-timing the mended `make test` alone keeps the record of `make all`.
    (tmp_path / "Makefile").write_text("all:\n\texit 5\ntest:\n\t@echo mended\n")
    load_benchmark("pipeline_time").main(["--directory", str(tmp_path), "--output",
                                          str(output), "--targets", "test"])
    again = json.loads(output.read_text())["metrics"]
    assert again["all"] == saved["all"]
    assert again["test"]["failed"] is False and again["test"]["exit_status"] == 0


def test_a_target_that_was_not_timed_is_not_run_rather_than_missing(tmp_path):
    """The full-MNIST run times `make all` alone: its `make test` row is not a broken file."""
    from digitlab.pipeline.summary import ROWS

    (tmp_path / "pipeline_time.json").write_text(json.dumps(
        {"metrics": {"all": {"failed": False, "minutes": 32.04}}}))
    table = render([r for r in ROWS if r.file == "pipeline_time.json"], tmp_path)
    assert "| `make all` wall time (2 cores) | 32.0 min |" in table
    assert "make test` wall time" not in table and "missing |" not in table
    assert "Not run yet: `make pipeline-time` (" in table and "1 of its 2 results missing" in table


def test_a_fresh_make_all_leads_with_its_numbers_and_names_each_benchmark_once(tmp_path):
    """After `make all` (here: one file of each of its steps) every benchmark is missing:
    the table holds only measured rows, and the line under it names each benchmark's make
    target once, with what it measures, never as a row."""
    from digitlab.pipeline.summary import COMMANDS, ROWS

    done = {"mini_mnist/evaluate_metrics.json": {"metrics": {"ari": 0.5, "cluster_accuracy": 0.6}},
            "generator/metrics.json": {"metrics": {"variance_explained": 0.8}}}
    for name, document in done.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(document))
    table = render(ROWS, tmp_path)
    head, _, line = table.partition("\n\nNot run yet: ")
    assert head.splitlines()[2] == ("| Mini MNIST | K-Means ARI (seed 0) | 0.500 | `results/"
                                    "mini_mnist/evaluate_metrics.json` (`make minimnist`) |")
    rows = head.splitlines()[2:]
    assert len(rows) == 2 + 3  # the two Mini MNIST values; generator: one value, two "missing"
    assert all(" not run yet " not in row for row in rows)
    benchmarks = ["make pipeline-time", "make minimnist-bench", "make mnist-recipe",
                  "make mnist-bench", "make full-scale-bench", "make noisy-bench",
                  "make noisy-recipe", "make generator-bench", "make app-bench",
                  "make classify-bench"]
    for command in benchmarks:
        assert f"`{command}`" not in head
        assert line.count(f"`{command}` ({COMMANDS[command]})") == 1
    assert "`make mnist-bench` (best CNN vs the PyTorch example over 3 seeds)" in line
    # make minimnist wrote one of its two files: named once, with how much is missing.
    assert line.count("`make minimnist` (") == 1 and "5 of its 7 results missing" in line
    assert line.endswith(".\n") and "\n" not in line[:-1]


def test_with_every_result_present_the_table_has_no_not_run_line(tmp_path):
    rows = [Row("T", "a", "t/m.json", "acc", "pct", "make t"),
            Row("T", "b", "t/m.json", "n", "int", "make t")]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "m.json").write_text(json.dumps({"acc": 0.5, "n": 3}))
    assert render(rows, tmp_path) == ("| track | result | value | source (regenerate with) |\n"
                                      "| --- | --- | --- | --- |\n"
                                      "| T | a | 50.0% | `results/t/m.json` (`make t`) |\n"
                                      "| T | b | 3 | `results/t/m.json` (`make t`) |\n")
    (tmp_path / "t" / "m.json").unlink()
    assert render(rows, tmp_path) == ("Nothing measured yet: `make all` runs the pipeline.\n\n"
                                      "Not run yet: `make t` (its results).\n")


def test_every_command_of_the_table_says_what_it_measures():
    from digitlab.pipeline.summary import COMMANDS, ROWS

    assert {row.command for row in ROWS} == set(COMMANDS)


def test_every_row_of_the_table_is_one_track_and_result():
    """The README's table joins the trees on (track, result): two rows with both equal would
    be one."""
    from digitlab.pipeline.summary import ROWS

    keys = [(row.track, row.label) for row in ROWS]
    assert len(keys) == len(set(keys))


A_SUMMARY = """# digitlab results

| track | result | value | source (regenerate with) |
| --- | --- | --- | --- |
| T | a | 1.0% | `results/t/m.json` (`make t`) |
| T | b | 2 | `results/t/m.json` (`make t`) |

Not run yet: `make u` (its results).
"""
B_SUMMARY = """# digitlab results

| track | result | value | source (regenerate with) |
| --- | --- | --- | --- |
| T | b | 3 | `results/t/m.json` (`make t`) |
| U | c | 4.0 s | `results/u/n.json` (`make u`) |
"""


def test_a_summary_table_is_read_back_into_its_rows_and_not_run_line():
    import pytest

    from digitlab.errors import UserError
    from digitlab.pipeline.summary import Measured, Summary, parse_summary

    assert parse_summary(A_SUMMARY) == Summary(
        (Measured("T", "a", "1.0%", "results/t/m.json", "make t"),
         Measured("T", "b", "2", "results/t/m.json", "make t")),
        "Not run yet: `make u` (its results).")
    assert parse_summary("# digitlab results\n\nNothing measured yet: `make all` runs the "
                         "pipeline.\n") == Summary(())
    with pytest.raises(UserError, match="old.md: cannot read the table row '| T | a | 1 |'"):
        parse_summary("| T | a | 1 |\n", "old.md")


def test_what_render_writes_parse_reads_back(tmp_path):
    from digitlab.pipeline.summary import parse_summary

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "m.json").write_text(json.dumps({"acc": 0.5, "n": 3}))
    rows = [Row("T", "a", "t/m.json", "acc", "pct", "make t"),
            Row("U", "b", "u/m.json", "n", "int", "make u")]
    summary = parse_summary(render(rows, tmp_path))
    assert [(r.key, r.value, r.file, r.command) for r in summary.rows] == [
        (("T", "a"), "50.0%", "results/t/m.json", "make t")]
    assert summary.not_run == "Not run yet: `make u` (its results)."


def test_two_summaries_are_joined_side_by_side_on_track_and_result():
    from pathlib import Path

    from digitlab.pipeline.summary import Column, join, parse_summary

    summaries = [(Column("A", Path("a/summary.md")), parse_summary(A_SUMMARY)),
                 (Column("B", Path("b/summary.md"), "**B**: each command with `OUT=b`."),
                  parse_summary(B_SUMMARY))]
    assert join(summaries) == (
        "| track | result | A | B | regenerate with |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| T | a | 1.0% | – | `make t` |\n"
        "| T | b | 2 | 3 | `make t` |\n"
        "| U | c | – | 4.0 s | `make u` |\n"
        "\n"
        "Each column is read from a summary that names the JSON file behind every value: "
        "A from `a/summary.md`, B from `b/summary.md`.\n"
        "\n"
        "**B**: each command with `OUT=b`.\n"
        "\n"
        "**A**: Not run yet: `make u` (its results).\n")
    # The order of ROWS wins over the order of the trees.
    table = join(summaries, [("U", "c"), ("T", "a"), ("T", "b")])
    assert [line.split(" | ")[1] for line in table.splitlines()[2:5]] == ["c", "a", "b"]


def test_a_tree_without_summary_is_no_column(tmp_path):
    from digitlab.pipeline.summary import Column, readme_table

    (tmp_path / "a.md").write_text(A_SUMMARY)
    table = readme_table([Column("offline", tmp_path / "a.md"),
                          Column("full", tmp_path / "not-run" / "summary.md", "**full**: ...")])
    assert table.startswith("| track | result | offline | regenerate with |\n"
                            "| --- | --- | --- | --- |\n"
                            "| T | a | 1.0% | `make t` |\n")
    assert "full" not in table and "**offline**: Not run yet: `make u`" in table
    assert readme_table([Column("full", tmp_path / "none.md")]) == (
        "Nothing measured yet: `make all` runs the pipeline.\n")


def test_the_default_columns_are_the_offline_default_then_the_full_mnist():
    from digitlab import paths
    from digitlab.pipeline.summary import default_columns

    offline, full = default_columns()
    assert offline.summary == paths.PROJECT_ROOT / "results" / "summary.md"
    assert full.summary == paths.PROJECT_ROOT / "runs" / "full-mnist" / "results" / "summary.md"
    assert "`MNIST_DIR=FOLDER OUT=runs/full-mnist`" in full.note and not offline.note


def load_script(name: str):
    import importlib.util

    from digitlab.paths import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarize_writes_its_tree_then_joins_both_trees_into_the_readme(tmp_path, capsys):
    results = tmp_path / "run" / "results"
    (results / "mini_mnist").mkdir(parents=True)
    (results / "mini_mnist" / "evaluate_metrics.json").write_text(
        json.dumps({"metrics": {"ari": 0.5, "cluster_accuracy": 0.6}}))
    (tmp_path / "offline.md").write_text(
        "| track | result | value | source (regenerate with) |\n| --- | --- | --- | --- |\n"
        "| Mini MNIST | K-Means ARI (seed 0) | 0.520 | `results/mini_mnist/evaluate_metrics.json`"
        " (`make minimnist`) |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    load_script("summarize").main([
        "--results-dir", str(results), "--readme", str(readme), "--update-readme",
        "--column", f"offline={tmp_path / 'offline.md'}",
        "--column", f"full MNIST={results / 'summary.md'}"])
    assert "| Mini MNIST | K-Means ARI (seed 0) | 0.500 |" in (results / "summary.md").read_text()
    text = readme.read_text()
    assert text.startswith(f"intro\n{START}\n| track | result | offline | full MNIST | "
                           "regenerate with |\n| --- | --- | --- | --- | --- |\n"
                           "| Mini MNIST | K-Means ARI (seed 0) | 0.520 | 0.500 | "
                           "`make minimnist` |\n"
                           "| Mini MNIST | K-Means cluster accuracy (Hungarian) | – | 60.0% | "
                           "`make minimnist` |\n")
    # A default column's name keeps its note: how that tree is regenerated, said once.
    assert text.count("OUT=runs/full-mnist`") == 2 and text.endswith(f".\n{END}\noutro\n")
    assert "**full MNIST**: Not run yet: " in text and "**offline**: Not run" not in text
    assert (results / "index.html").is_file()


def test_a_column_must_be_name_equals_path(tmp_path, capsys):
    import pytest

    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    with pytest.raises(SystemExit) as exit_info:
        load_script("summarize").main(["--results-dir", str(tmp_path), "--readme", str(readme),
                                       "--update-readme", "--column", "no-path"])
    assert exit_info.value.code == 2
    assert "expected NAME=PATH_TO_SUMMARY_MD" in capsys.readouterr().err


def test_make_vars_reach_every_make_call_and_out_moves_the_results_file(tmp_path, capsys):
    import pytest

    (tmp_path / "Makefile").write_text("all:\n\t@echo built into $(OUT) from $(MNIST_DIR)\n")
    load_benchmark("pipeline_time").main([
        "--directory", str(tmp_path), "--targets", "all",
        "--make-vars", "MNIST_DIR=../mnist", "OUT=runs/full"])
    # Where the Makefile's OUT= puts results/: the default tree's record is left alone.
    output = tmp_path / "runs" / "full" / "results" / "pipeline_time.json"
    saved = json.loads(output.read_text())
    assert saved["run"]["config"]["make_vars"] == ["MNIST_DIR=../mnist", "OUT=runs/full"]
    assert saved["metrics"]["all"]["make_vars"] == ["MNIST_DIR=../mnist", "OUT=runs/full"]
    log = output.parent / "pipeline_time_logs" / "all.log"
    # Under `make test` the inner make also prints "Entering directory" lines.
    assert "built into runs/full from ../mnist\n" in log.read_text()
    # A word without "=" would be one more make target: refused.
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("pipeline_time").main(["--directory", str(tmp_path), "--make-vars",
                                              "test"])
    assert exit_info.value.code == 2 and "expected VAR=VALUE" in capsys.readouterr().err


def test_readme_only_rebuilds_the_table_without_reading_or_writing_a_tree(tmp_path):
    (tmp_path / "a.md").write_text(A_SUMMARY)
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\nold\n{END}\n")
    load_script("summarize").main(["--readme-only", "--readme", str(readme), "--results-dir",
                                   str(tmp_path / "gone"), "--column", f"A={tmp_path / 'a.md'}"])
    assert readme.read_text().startswith(f"{START}\n| track | result | A | regenerate with |\n")
    assert not (tmp_path / "gone").exists()


def write_measured(results, file, n_train, n_val, accuracy=0.99):
    path = results / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metrics": {"acc": accuracy},
                                "data": {"source": "local", "n_train": n_train, "n_val": n_val}}))


def test_a_tree_that_mixes_embedded_and_full_mnist_files_is_refused_by_name(tmp_path):
    """A full-MNIST benchmark run without OUT= writes into the offline default's tree; its
    column must then fail loudly rather than show a full-MNIST figure as an embedded one."""
    import pytest

    from digitlab.errors import UserError

    rows = [Row("T", "a", "a/metrics.json", "metrics.acc", "pct", "make a"),
            Row("T", "b", "b/metrics.json", "metrics.acc", "pct", "make b"),
            Row("T", "full scale", "full_scale/benchmark.json", "metrics.acc", "pct", "make f")]
    write_measured(tmp_path, "a/metrics.json", 3_500, 500)  # the embedded 5,000: 4,000 + test
    write_measured(tmp_path, "full_scale/benchmark.json", 55_000, 5_000)  # full-size by design
    write_measured(tmp_path, "b/metrics.json", 3_500, 500)
    assert "| T | b | 99.0% |" in render(rows, tmp_path)  # one scale (+ the full-scale file)

    write_measured(tmp_path, "b/metrics.json", 55_000, 5_000)
    with pytest.raises(UserError) as error:
        render(rows, tmp_path)
    message = str(error.value)
    assert str(tmp_path / "b/metrics.json") in message
    assert str(tmp_path / "a/metrics.json") in message and "OUT=" in message
