"""A stored run is reused only for the same inputs and the same code; ``fresh`` reruns it.

The references are hand-computed: each study's function returns a number known in
advance (``value + 1``, ``value + 100``), and the runs that really ran are counted, so
a reused run and a rerun can be told apart by their result and by the count.
"""

from __future__ import annotations

import importlib
import linecache
import shlex
import shutil
import subprocess
import sys
import textwrap

import pytest

from digitlab.cli import add_study_options, execution_from_args, script_parser
from digitlab.engine import parallel
from digitlab.engine.parallel import Cell, Execution, StudyError, StudyStore, run_study
from digitlab.paths import PROJECT_ROOT
from digitlab.repro import atomic_target


def plus_offset(shared, *, value):
    """Counts its calls in the shared dict (the runs here go through this process)."""
    shared["calls"].append(value)
    if value in shared.get("fail", ()):
        raise RuntimeError("the machine went away")
    return {"value": value + shared["offset"]}


def cells_of(fn, values=(5, 1, 4)):
    return [Cell(f"value {v}", fn, {"value": v}) for v in values]


def values(results):
    return [r["value"] for r in results]


def test_a_study_run_twice_reads_every_run_back_without_running_any(tmp_path, capsys):
    shared = {"calls": [], "offset": 10}
    first = run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    assert values(first) == [15, 11, 14] and sorted(shared["calls"]) == [1, 4, 5]
    assert "reused" not in capsys.readouterr().out

    shared["calls"].clear()
    again = run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, desc="grid",
                      progress=False)
    assert values(again) == [15, 11, 14]
    assert shared["calls"] == []
    out = capsys.readouterr().out
    assert "grid: reused 3 of 3 stored runs" in out and "fresh=True" in out


def write_module(folder, name, body):
    (folder / f"{name}.py").write_text(textwrap.dedent(f"""\
        def run(shared, *, value):
            shared["calls"].append(value)
            return {{"value": {body}}}
        """))


def test_a_function_whose_code_changed_is_retrained(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    write_module(tmp_path, "study_code_v", "value + 1")
    module = importlib.import_module("study_code_v")
    monkeypatch.setitem(sys.modules, "study_code_v", module)  # forgotten after the test
    store, shared = tmp_path / "runs", {"calls": []}
    assert values(run_study(cells_of(module.run), shared=shared, folder=store,
                            progress=False)) == [6, 2, 5]

    # The same code imported anew (a new process, a notebook's kernel restarted): reused.
    shared["calls"].clear()
    module = importlib.reload(module)
    assert values(run_study(cells_of(module.run), shared=shared, folder=store,
                            progress=False)) == [6, 2, 5]
    assert shared["calls"] == []

    write_module(tmp_path, "study_code_v", "value + 100")
    module = importlib.reload(module)
    assert values(run_study(cells_of(module.run), shared=shared, folder=store,
                            progress=False)) == [105, 101, 104]
    assert sorted(shared["calls"]) == [1, 4, 5], "a run of the old code was reused"


def notebook_cell(source: str, number: int):
    """A function defined in a notebook cell: IPython compiles each cell under a name of its
    own and registers the cell's text in linecache, where inspect finds it."""
    filename = f"/tmp/ipykernel_0/cell_{number}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["run"]


def generated(source: str):
    """A function built at run time, whose source no one can find."""
    namespace = {"__name__": "generated"}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace["run"]


SOURCE = ("def run(shared, *, value):\n    shared['calls'].append(value)\n"
          "    return {{'value': {}}}\n")


def test_a_notebook_cell_run_again_reuses_its_runs_and_an_edited_one_does_not(tmp_path):
    shared = {"calls": []}
    first = notebook_cell(SOURCE.format("value * 2"), 1)
    assert values(run_study(cells_of(first), shared=shared, folder=tmp_path,
                            progress=False)) == [10, 2, 8]
    shared["calls"].clear()
    same = notebook_cell(SOURCE.format("value * 2"), 7)  # the cell executed again
    assert values(run_study(cells_of(same), shared=shared, folder=tmp_path,
                            progress=False)) == [10, 2, 8]
    assert shared["calls"] == []
    edited = notebook_cell(SOURCE.format("value * 3"), 8)
    assert values(run_study(cells_of(edited), shared=shared, folder=tmp_path,
                            progress=False)) == [15, 3, 12]
    assert sorted(shared["calls"]) == [1, 4, 5]


def test_a_function_without_source_is_told_apart_by_its_code():
    with pytest.raises(OSError):  # the case under test: inspect cannot find the source
        __import__("inspect").getsource(generated(SOURCE.format("value + 1")))
    one, twin, other = (Cell("a", generated(SOURCE.format(body)), {"value": 1}).fingerprint()
                        for body in ("value + 1", "value + 1", "value - 1"))
    assert one == twin
    assert one != other


def test_a_change_in_the_package_source_reruns_the_study(tmp_path, monkeypatch):
    shared = {"calls": [], "offset": 0}
    run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    shared["calls"].clear()
    monkeypatch.setattr(parallel, "package_digest", lambda: "another digitlab")
    run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    assert sorted(shared["calls"]) == [1, 4, 5]


def test_the_source_digest_covers_every_python_file_below_the_folder(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "__init__.py").write_text("")
    nested = tmp_path / "engine" / "fit.py"
    nested.write_text("LR = 0.1\n")
    before = parallel.source_digest(tmp_path)
    nested.write_text("LR = 0.2\n")
    assert parallel.source_digest(tmp_path) != before, "a nested module was left out"
    nested.write_text("LR = 0.1\n")
    assert parallel.source_digest(tmp_path) == before
    # Caches, backups and other files are not the package's code.
    (tmp_path / "engine" / "__pycache__").mkdir()
    (tmp_path / "engine" / "__pycache__" / "fit.cpython-311.pyc").write_bytes(b"\0" * 8)
    (tmp_path / "engine" / ".#fit.py").write_text("LR = 0.3\n")
    (tmp_path / "notes.txt").write_text("LR = 0.3\n")
    assert parallel.source_digest(tmp_path) == before


def test_fresh_reruns_every_run_and_overwrites_the_stored_ones(tmp_path, capsys):
    shared = {"calls": [], "offset": 10}
    run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    shared.update(calls=[], offset=20)  # what the reruns return tells them apart
    fresh = run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False,
                      execution=Execution(fresh=True))
    assert values(fresh) == [25, 21, 24] and sorted(shared["calls"]) == [1, 4, 5]
    assert "reused" not in capsys.readouterr().out
    shared.update(calls=[], offset=30)
    assert values(run_study(cells_of(plus_offset), shared=shared, folder=tmp_path,
                            progress=False)) == [25, 21, 24], "fresh runs were not stored"
    assert shared["calls"] == []


def test_an_interrupted_fresh_study_resumes_without_older_runs(tmp_path):
    shared = {"calls": [], "offset": 10}
    run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    shared.update(calls=[], offset=20, fail={4})
    with pytest.raises(StudyError, match="1 of 3 runs failed"):
        run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False,
                  execution=Execution(fresh=True))
    shared.update(calls=[], fail=set())
    resumed = run_study(cells_of(plus_offset), shared=shared, folder=tmp_path, progress=False)
    assert values(resumed) == [25, 21, 24], "the run stored before the fresh study was mixed in"
    assert shared["calls"] == [4]


def test_clear_leaves_a_run_that_another_process_is_writing(tmp_path):
    cells = cells_of(plus_offset)
    run_study(cells, shared={"calls": [], "offset": 0}, folder=tmp_path, progress=False)
    store = StudyStore(tmp_path)
    (tmp_path / "notes.txt").write_text("not a run")
    with atomic_target(tmp_path / "value-9.pt") as in_flight:  # as StudyStore.save names it
        in_flight.write_bytes(b"half written")
        store.clear()
        assert in_flight.exists(), "clear deleted another process's temporary file"
        assert not any(store.path(cell).exists() for cell in cells)
    assert (tmp_path / "value-9.pt").read_bytes() == b"half written"
    assert (tmp_path / "notes.txt").exists()


def test_clear_of_some_cells_forgets_only_theirs(tmp_path):
    cells = cells_of(plus_offset)
    run_study(cells, shared={"calls": [], "offset": 0}, folder=tmp_path, progress=False)
    StudyStore(tmp_path).clear(cells[:1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["value-1.pt", "value-4.pt"]


def test_results_land_at_their_own_cell_whatever_order_they_finish_in(tmp_path, monkeypatch):
    real = parallel._in_process

    def last_first(todo, shared, threads):
        yield from reversed(list(real(todo, shared, threads)))

    monkeypatch.setattr(parallel, "_in_process", last_first)
    shared = {"calls": [], "offset": 100}
    cells = cells_of(plus_offset, values=(7, 3, 9, 2))
    assert values(run_study(cells, shared=shared, folder=tmp_path,
                            progress=False)) == [107, 103, 109, 102]
    assert shared["calls"] == [7, 3, 9, 2]  # the order they ran in, before being reversed
    # Each stored file holds its own cell's result too.
    assert [StudyStore(tmp_path).load(cell)[1]["value"] for cell in cells] == [107, 103, 109, 102]


def test_the_fresh_option_reaches_the_execution():
    parser = script_parser("A study.")
    add_study_options(parser)
    assert execution_from_args(parser.parse_args(["--fresh"])).fresh is True
    assert execution_from_args(parser.parse_args([])).fresh is False


def load_run_notebook():
    spec = importlib.util.spec_from_file_location("run_notebook",
                                                  PROJECT_ROOT / "scripts" / "run_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_fresh_reaches_every_study_script_and_notebook():
    targets = ["mnist-recipe", "noisy-recipe", "mnist-bench", "noisy-bench", "mnist", "noisy"]

    def commands(*variables):
        done = subprocess.run(["make", "-n", "-B", *targets, "PY=python", *variables],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
        return [shlex.split(line) for line in done.stdout.splitlines()
                if "--workers" in line or "-p workers" in line
                or "benchmarks/mnist_cnn.py" in line or "benchmarks/noisy_mnist.py" in line]

    fresh = commands("FRESH=1")
    assert len(fresh) == 6  # the two recipe studies, two benchmarks, two notebooks
    parse_value = load_run_notebook().parse_value
    for command in fresh:
        if command[1] == "scripts/run_notebook.py":
            at = [i for i, word in enumerate(command) if word == "fresh"]
            assert at and command[at[0] - 1] == "-p", command
            assert parse_value(command[at[0] + 1]) is True, "the notebook gets no boolean"
        else:
            assert "--fresh" in command, command
    for command in commands() + commands("FRESH=0"):
        assert "--fresh" not in command and "fresh" not in command, command
