"""scripts/run_notebook.py: a failing notebook leaves its partial copy under a name that
says so, and the error names that file."""

from __future__ import annotations

import importlib.util

import nbformat
import pytest

from digitlab import paths
from digitlab.paths import PROJECT_ROOT


def run_notebook_main():
    spec = importlib.util.spec_from_file_location(
        "run_notebook", PROJECT_ROOT / "scripts" / "run_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """An empty notebooks folder of the test's own, where digitlab looks for notebooks."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(paths, "notebooks_dir", lambda: folder)
    return folder


def write_notebook(folder, second_cell: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('first cell ran')"),
        nbformat.v4.new_code_cell(second_cell),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / "tiny.ipynb")


@pytest.mark.slow
def test_a_failing_notebook_keeps_its_partial_copy_until_a_later_success(
        tmp_path, notebooks, capsys):
    executed = tmp_path / "executed"
    main = run_notebook_main()
    failed = executed / "tiny.failed.ipynb"

    write_notebook(notebooks, "1 / 0")
    with pytest.raises(SystemExit) as exit_info:
        main(["tiny", "--output-dir", str(executed)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    err = err.splitlines()[-1]  # after the progress bar: one sentence
    assert err.startswith("error: ") and err.endswith(".")
    assert "notebook tiny failed: ZeroDivisionError: division by zero" in err
    assert str(failed) in err
    assert not (executed / "tiny.ipynb").exists()
    partial = nbformat.read(failed, as_version=4)
    texts = ["".join(o.get("text", "")) + o.get("ename", "") for cell in partial.cells
             if cell.cell_type == "code" for o in cell.outputs]
    assert "first cell ran\n" in texts and "ZeroDivisionError" in texts

    write_notebook(notebooks, "y = x + 1")
    main(["tiny", "--output-dir", str(executed)])
    assert (executed / "tiny.ipynb").exists() and not failed.exists()
    assert sorted(p.name for p in executed.iterdir()) == ["tiny.ipynb"]


@pytest.mark.slow
def test_a_notebook_run_shows_its_cells_output_and_text_progress_bars_as_they_run(
        tmp_path, notebooks, monkeypatch, capfd):
    """A training cell inside `make mnist` shows its progress on the terminal (not only a
    cell counter), as text (a widget bar would never reach it), without ipykernel's
    warning about unencrypted TCP: the kernel is on IPC sockets of its own."""
    from digitlab.pipeline.notebooks import execute_notebook

    monkeypatch.chdir(tmp_path)
    write_notebook(notebooks, "from tqdm.auto import tqdm\n"
                              "for _ in tqdm(range(3), desc='training', unit='epoch'):\n"
                              "    pass\n"
                              "print('trained', x)")
    executed = execute_notebook("tiny", {"x": 7}, output_dir=tmp_path / "executed")
    out, err = capfd.readouterr()
    assert "first cell ran\n" in out and "trained 7\n" in out
    assert "training: 100%" in err and "3/3" in err  # tqdm's text bar, relayed
    assert "without encryption" not in err and "CurveZMQ" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["executed", "notebooks"]  # no sockets
    copy = nbformat.read(executed, as_version=4)
    kept = ["".join(o.get("text", "")) for cell in copy.cells for o in cell.outputs]
    assert any("trained 7" in text for text in kept)


# What the kernel process itself logs (not a cell's output): ipykernel can log a traceback
# of its own while it shuts down, which is how a quiet run once printed one.
KERNEL_LOGS = ("from ipykernel.kernelapp import IPKernelApp\n"
               "IPKernelApp.instance().log.error('the kernel itself logged this')\n")


@pytest.mark.slow
def test_a_quiet_notebook_run_prints_nothing_not_even_the_kernels_own_log(
        tmp_path, notebooks, capfd):
    from digitlab.pipeline.notebooks import execute_notebook

    write_notebook(notebooks, KERNEL_LOGS + "import sys; print('to stderr', file=sys.stderr)")
    execute_notebook("tiny", output_dir=tmp_path / "executed", progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert sorted(p.name for p in (tmp_path / "executed").iterdir()) == ["tiny.ipynb"]


@pytest.mark.slow
def test_a_failing_notebook_keeps_the_kernels_own_log_and_names_it(
        tmp_path, notebooks, capfd):
    from digitlab.errors import UserError
    from digitlab.pipeline.notebooks import execute_notebook

    executed = tmp_path / "executed"
    write_notebook(notebooks, KERNEL_LOGS + "1 / 0")
    with pytest.raises(UserError) as error:
        execute_notebook("tiny", output_dir=executed, progress=False)
    log = executed / "tiny.failed.kernel.log"
    assert str(log) in str(error.value)
    assert "the kernel itself logged this" in log.read_text()
    assert capfd.readouterr().err == ""

    write_notebook(notebooks, "pass")  # fixed: a success removes what the failure kept
    execute_notebook("tiny", output_dir=executed, progress=False)
    assert sorted(p.name for p in executed.iterdir()) == ["tiny.ipynb"]
