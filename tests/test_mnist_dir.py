"""One switch, ``make ... MNIST_DIR=FOLDER``, puts every step that reads MNIST on that folder:
make hands the folder to each script, benchmark and notebook, each of them loads it, and
each metrics file it writes names the folder as its data."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import subprocess

import pytest

from digitlab.data.sources import load_embedded, write_mnist_folder
from digitlab.paths import PROJECT_ROOT

# Every target that runs a step reading MNIST (the recipe comparisons are left out: see
# below); `make -n` prints their commands without running them.
TARGETS = ("all", "benchmarks", "full-scale-bench")


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """A tiny MNIST-format folder: 480 training and 120 test digits of the embedded set, as
    the four gzip IDX files (the same layout as the full MNIST)."""
    splits = load_embedded(seed=0)
    folder = tmp_path_factory.mktemp("my_mnist")
    return write_mnist_folder(folder, (splits.train_images[:480], splits.train_labels[:480]),
                              (splits.test_images[:120], splits.test_labels[:120]))


def reads_mnist(path) -> bool:
    return "load_mnist(" in path.read_text() or "MNISTDataLoader(" in path.read_text()


def make_commands(folder) -> list[list[str]]:
    """The project commands ``make -n`` prints for :data:`TARGETS` with ``MNIST_DIR``."""
    done = subprocess.run(["make", "-n", "-B", *TARGETS, f"MNIST_DIR={folder}", "PY=python"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    commands = [shlex.split(line) for line in done.stdout.splitlines()]
    return [c for c in commands if len(c) > 1 and c[0] == "python"
            and re.match(r"(scripts|benchmarks)/\w+\.py$", c[1])]


def step_file(command: list[str]):
    """The file a command runs: the script, or the py:percent twin of the notebook."""
    if command[1] == "scripts/run_notebook.py":
        return PROJECT_ROOT / "notebooks" / f"{command[2]}.py"
    return PROJECT_ROOT / command[1]


def test_make_hands_the_folder_to_every_step_that_reads_mnist(mnist_folder):
    commands = make_commands(mnist_folder)
    steps = {step_file(c).relative_to(PROJECT_ROOT).as_posix(): c for c in commands}
    # The steps that must get the folder: the ones whose file loads MNIST.
    readers = {name for name, c in steps.items() if reads_mnist(step_file(c))}
    assert {"scripts/train_cnn.py", "notebooks/mnist_05_cnn_project.py",
            "scripts/make_noisy_mnist.py", "notebooks/train_kde_model.py",
            "benchmarks/full_scale.py", "benchmarks/classify_api.py"} <= readers
    for name in sorted(readers):
        line = " ".join(steps[name])
        if name.startswith("notebooks/"):
            assert f"-p source local -p data_dir {mnist_folder}" in line, line
        elif name == "benchmarks/full_scale.py":  # only ever reads a local folder
            assert f"--data-dir {mnist_folder}" in line, line
        else:
            assert f"--source local --data-dir {mnist_folder}" in line, line
    # Without the switch nothing changes: every step keeps its own default source.
    default = subprocess.run(["make", "-n", "-B", *TARGETS, "PY=python"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert "--data-dir" not in default and "data_dir" not in default


def notebook_calls(path):
    """(function name, positional argument names, keyword names) of every call."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield (node.func.id, [a.id for a in node.args if isinstance(a, ast.Name)],
                   {k.arg: getattr(k.value, "id", None) for k in node.keywords})


@pytest.mark.parametrize("name", sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("*.py")
                                        if reads_mnist(p)))
def test_each_notebook_that_reads_mnist_loads_its_source_and_data_dir_parameters(name):
    """Cheaper than running them all on the folder (test_mnist_notebooks runs each in quick
    mode): the parameters exist and every load passes them on."""
    path = PROJECT_ROOT / "notebooks" / f"{name}.py"
    parameters = path.read_text().split('# %% tags=["parameters"]\n', 1)[1].split("# %%", 1)[0]
    assert re.search(r'^source = "auto"', parameters, re.M), name
    assert re.search(r"^data_dir = None", parameters, re.M), name
    loads = [call for call in notebook_calls(path) if call[0] in ("load_mnist", "MNISTDataLoader")]
    assert loads, name
    for function, args, keywords in loads:
        assert args[:1] == ["source"], (name, function)
        assert "data_dir" in args[1:2] or keywords.get("root") == "data_dir", (name, function)


def module(relative: str):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_")[:-3],
                                                  PROJECT_ROOT / relative)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.mark.slow
def test_every_script_and_benchmark_records_the_folder_it_ran_on(project_root, mnist_folder):
    """Each step as make runs it with MNIST_DIR (quick or tiny settings), then every JSON
    document it wrote under results/ must name the folder as its data."""
    data = ["--source", "local", "--data-dir", str(mnist_folder)]
    steps = [
        ("scripts/train_cnn.py", [*data, "--epochs", "1", "--no-progress"]),
        ("scripts/evaluate_model.py", data),
        ("scripts/make_noisy_mnist.py", [*data, "--noise", "awgn"]),
        ("scripts/fit_generator.py", [*data, "--components", "10", "--bandwidth", "0.5"]),
        ("benchmarks/mnist_cnn.py", [*data, "--quick"]),
        ("benchmarks/noisy_mnist.py", [*data, "--quick"]),
        ("benchmarks/generator_quality.py", [*data, "--quick"]),
        ("benchmarks/classify_api.py", [*data, "--quick"]),
        ("benchmarks/app_load.py", [*data, "--quick"]),
        ("benchmarks/full_scale.py", ["--data-dir", str(mnist_folder), "--quick",
                                      "--no-progress"]),
        ("benchmarks/mnist_full_recipe.py", ["--data-dir", str(mnist_folder), "--quick",
                                             "--no-progress"]),
    ]
    for script, argv in steps:
        before = set((project_root / "results").rglob("*.json"))
        module(script).main(argv)
        written = set((project_root / "results").rglob("*.json")) - before
        # A metrics document (repro.metrics_document) has "run": seed, config, versions.
        documents = [p for p in written if "run" in json.loads(p.read_text())]
        assert documents, f"{script} wrote no metrics document ({sorted(written)})"
        for path in documents:
            recorded = json.loads(path.read_text()).get("data")
            assert recorded, f"{path} ({script}) does not say which data it used"
            assert recorded["source"] == "local", (script, path)
            assert str(mnist_folder) in recorded["description"], (script, path)
            assert recorded["n_train"] + recorded["n_val"] <= 480, (script, path)


@pytest.mark.slow
def test_a_notebook_run_as_make_runs_it_loads_the_folder(project_root, mnist_folder):
    """The parameters make passes (``-p source local -p data_dir FOLDER``) reach the load."""
    module("scripts/run_notebook.py").main(
        ["mnist_01_exploration", "-p", "quick", "true", "-p", "source", "local",
         "-p", "data_dir", str(mnist_folder), "--output-dir", str(project_root / "nb")])
    saved = json.loads((project_root / "results/mnist/exploration/exploration.json").read_text())
    assert saved["data"]["source"] == "local"
    assert str(mnist_folder) in saved["data"]["description"]
    assert saved["data"]["n_train"] + saved["data"]["n_val"] == 480
    assert saved["run"]["config"]["data_dir"] == str(mnist_folder)


class Interrupted(Exception):
    pass


def test_a_failed_full_recipe_selection_reruns_only_its_missing_candidates(
        project_root, mnist_folder, monkeypatch, capsys):
    """Each candidate is minutes of training: when one fails (or the run is stopped), the
    others are kept, the rerun trains only what is missing and writes every candidate."""
    bench = module("benchmarks/mnist_full_recipe.py")
    trained, fail = [], [True]

    def candidate(data, *, name, network, recipe, seed, device, rows):
        trained.append(name)
        if fail[0] and len(trained) == 2:
            raise Interrupted(name)
        return {"val_accuracy": 0.99, "train_seconds": 1.0, "full_set_seconds": 1.0}

    monkeypatch.setattr(bench, "score_candidate", candidate)
    argv = ["--data-dir", str(mnist_folder), "--quick", "--no-progress"]
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert "rerunning the study runs only what is missing" in capsys.readouterr().err
    names = list(bench.CANDIDATES_FULL)
    assert trained == names
    fail[0] = False
    bench.main(argv)
    assert trained == [*names, names[1]]  # only the failed one trained again
    (written,) = (project_root / "results/mnist").glob("recipe_selection_full*.json")
    assert set(json.loads(written.read_text())["metrics"]["candidates"]) == set(names)
    assert not list((project_root / "results/mnist").glob("recipe_selection_full*_runs/*"))
