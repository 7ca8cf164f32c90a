"""Execute the project's notebooks with papermill.

Notebooks are stored without outputs; executed copies (with outputs) go to
``results/notebooks/``. Parameters override the cell tagged ``parameters``.

The kernel runs on this machine only, so it talks to papermill over Unix
sockets (ZeroMQ's IPC transport) in a private temporary folder, not over TCP:
nothing listens on a port, and ipykernel has no reason to warn that TCP
traffic is unencrypted. While a notebook runs, what its cells print and their
progress bars appear on this process's stdout and stderr as they happen; a
training cell that takes minutes shows its epochs, not only a cell counter.

The kernel process's own stderr (its log, not the cells' output, which travels
over ZeroMQ) goes to a file: ipykernel can log a harmless traceback while it
shuts down, which a quiet run must not print and a user must not mistake for a
failed notebook. When a notebook fails, that log is kept beside its copy.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from digitlab import paths
from digitlab.errors import UserError
from digitlab.repro import atomic_target, atomic_write

# Run in the kernel before the first cell: tqdm.auto would pick the ipywidgets bar inside a
# kernel, which a terminal never sees (and a saved notebook shows as "Loading widget...");
# the plain text bar is written to stderr, which is relayed here and kept in the copy.
TEXT_PROGRESS_BARS = "import tqdm.auto, tqdm.std; tqdm.auto.tqdm = tqdm.std.tqdm"


def notebook_path(name: str) -> Path:
    path = paths.notebooks_dir() / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in paths.notebooks_dir().glob("*.ipynb")))
        raise UserError(f"no notebook named {name!r} in {paths.notebooks_dir()}; "
                        f"available: {available}.")
    return path


def execute_notebook(name: str, parameters: dict[str, Any] | None = None,
                     output_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> Path:
    """Run notebook ``name`` top to bottom; return the path of the executed copy.

    The kernel runs with the project root as working directory and inherits
    ``DIGITLAB_ROOT``, so it reads and writes the same data as the scripts.
    With ``progress``, the cells' stdout and stderr (their prints and text
    progress bars) are written to ``sys.stdout`` and ``sys.stderr`` as they
    arrive; without it the run is silent. Either way they are in the copy.
    If a cell fails, the copy executed up to that cell is kept as
    ``NAME.failed.ipynb`` beside where the executed copy goes, with the kernel's own
    log, if not empty, as ``NAME.failed.kernel.log`` (a later success removes both),
    and a UserError names them.
    """
    import papermill

    source = notebook_path(name)
    output = Path(output_dir or paths.executed_notebooks_dir()) / source.name
    failed = failed_copy(output)
    relay = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if progress else {}
    with tempfile.TemporaryDirectory(prefix="digitlab-kernel-") as private, \
            atomic_target(output) as tmp:
        kernel_log = Path(private) / "kernel.log"
        try:
            papermill.execute_notebook(
                str(source), str(tmp), parameters=parameters or {}, kernel_name="python3",
                cwd=str(paths.PROJECT_ROOT), progress_bar=False, **relay,
                **_local_kernel_options(Path(private), kernel_log),
            )
        except Exception as err:  # papermill wraps the cell's error; name the notebook
            raise UserError(f"notebook {source.stem} failed: {_reason(err)}"
                            f"{_keep_failed_copy(tmp, failed)}"
                            f"{_keep_kernel_log(kernel_log, failed_log(output))}.") from err
    failed.unlink(missing_ok=True)
    failed_log(output).unlink(missing_ok=True)
    return output


def _local_kernel_options(private: Path, kernel_log: Path) -> dict[str, Any]:
    """papermill's options for a kernel on IPC sockets under ``private`` (a folder of this
    run's own: two notebooks run at once never share a socket, and none is left in the
    working directory, where jupyter_client's relative default would put them), whose
    process writes its stderr to ``kernel_log``."""
    from traitlets.config import Config

    return {"config": Config({"KernelManager": {"transport": "ipc",
                                                "ip": str(private / "kernel")},
                              "KernelLogToFile": {"log_file": str(kernel_log)}}),
            "kernel_manager_class": _kernel_manager_class(),
            "extra_arguments": [f"--IPKernelApp.exec_lines={TEXT_PROGRESS_BARS}"]}


def _kernel_manager_class():
    """nbclient's default kernel manager, with the kernel process's stderr sent to a file.
    (Defined on first use: jupyter_client is imported only when a notebook runs.)"""
    from jupyter_client import AsyncKernelManager
    from traitlets import Unicode

    class KernelLogToFile(AsyncKernelManager):
        log_file = Unicode(config=True, help="file the kernel process's stderr goes to")

        async def start_kernel(self, **kw: Any) -> None:
            with open(self.log_file, "ab") as log:  # Popen gives the child its own copy
                await super().start_kernel(**{"stderr": log, **kw})

    return KernelLogToFile


def failed_copy(output: Path) -> Path:
    """Where the partial copy of a failed run of the notebook ``output`` is kept."""
    return output.with_name(f"{output.stem}.failed.ipynb")


def failed_log(output: Path) -> Path:
    """Where the kernel's own log of a failed run of the notebook ``output`` is kept."""
    return output.with_name(f"{output.stem}.failed.kernel.log")


def _keep_kernel_log(log: Path, kept: Path) -> str:
    """Keep the kernel's log if it has anything in it; the error sentence's last clause."""
    return f", and the kernel's own log in {kept}" if _keep(log, kept) else ""


def _keep_failed_copy(partial: Path, failed: Path) -> str:
    """Keep what papermill wrote before the failure; the error sentence's next clause."""
    if not _keep(partial, failed):
        return " (it stopped before writing any output)"
    return f"; see the executed copy up to the failing cell in {failed}"


def _keep(source: Path, kept: Path) -> bool:
    """Copy ``source`` to ``kept`` (atomically) if it exists and is not empty."""
    if not source.is_file() or source.stat().st_size == 0:
        return False
    with atomic_write(kept, "wb") as handle:
        handle.write(source.read_bytes())
    return True


def _reason(err: Exception) -> str:
    """The failing cell's exception as one line (``ZeroDivisionError: division by zero``)."""
    if getattr(err, "ename", None):
        return f"{err.ename}: {err.evalue}".strip().splitlines()[-1]
    lines = str(err).strip().splitlines()
    return lines[-1] if lines else type(err).__name__
