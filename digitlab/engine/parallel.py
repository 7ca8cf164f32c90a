"""A study's independent runs, executed by one executor and stored as they finish.

A study is a list of named :class:`Cell` objects: a module-level function and
its keyword arguments, plus data that every cell shares. :func:`run_study`
hands them to one of three executors and returns the results in the study's
order, whatever order they finished in:

* ``workers=1``: one after the other in this process (the default);
* ``workers=N``: N local worker processes (joblib's loky backend, which
  restarts a worker that dies and pickles the shared data to each task);
* ``scheduler="tcp://host:8786"``: an existing Dask cluster, through the Dask
  client directly rather than joblib's dask backend, so that each result is
  stored the moment it arrives (``as_completed``), the shared data is sent to
  the workers once (``scatter``), and a run lost with its worker is rescheduled
  by Dask on another.

A cell's result depends only on its inputs: its seed, its device and its CPU
thread count, never on the worker or the order. On a CPU the thread count
changes the last bits of a training run, so it is an input like the seed: each
local worker gets its share of the cores by default (``threads``), and two
studies give identical numbers when they run with the same threads per run,
whatever number of workers spreads them.

With a ``folder``, each finished cell is written there atomically, with a
fingerprint of its inputs and its code (the source of the cell's function and of
the whole digitlab package); rerunning the study runs only the cells that are
missing (or whose inputs or code changed) and prints how many it reused. A cell that
raises is reported by name with its one-sentence error once every other cell
is done and stored; the study then raises :class:`StudyError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import os
import re
import traceback
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from digitlab.errors import UserError
from digitlab.repro import atomic_target

log = logging.getLogger(__name__)
# How long to wait for a Dask scheduler to answer before saying it is not there.
CONNECT_TIMEOUT = "20s"


class StudyError(UserError):
    """Some runs of a study failed; the others' results are stored."""


@dataclass(frozen=True)
class Cell:
    """One independent run of a study: ``fn(shared, **kwargs)``.

    ``fn`` must be importable by name (a module-level function) so that a worker
    process or a Dask worker can run it; its result must be made of tensors,
    numbers, strings, lists and dicts, so that it can be stored and read back
    without running code. ``kwargs`` must have a stable ``repr`` (numbers,
    strings, tuples, dataclasses such as ``NetworkSpec`` and ``Recipe``): it is part of
    the cell's fingerprint, with the code of ``fn`` and of digitlab. Arrays and tensors are
    refused there, since their ``repr`` is cut short: name the data by
    :func:`fingerprint_arrays` of it instead.
    """

    name: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Computed once: the files may be edited while the study runs, and a run must be stored
    # under the code it ran, not the code on disk when it finished.
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        arrays = [k for k, v in self.kwargs.items() if isinstance(v, (torch.Tensor, np.ndarray))]
        if arrays:
            raise TypeError(f"cell {self.name!r}: pass arrays in the shared data, not as "
                            f"arguments ({', '.join(arrays)}); name them by fingerprint_arrays.")

    def fingerprint(self) -> str:
        """A digest of the function's name and code, its arguments and digitlab's source:
        a stored run is reused only when all of them are the same."""
        if self._fingerprint is None:
            function = f"{self.fn.__module__}.{self.fn.__qualname__}"
            digest = hashlib.sha256(repr((function, sorted(self.kwargs.items()))).encode())
            digest.update(function_digest(self.fn).encode())
            digest.update(package_digest().encode())
            object.__setattr__(self, "_fingerprint", digest.hexdigest()[:16])
        return self._fingerprint


def function_digest(fn: Callable[..., Any]) -> str:
    """A digest of ``fn``'s source (a module's file, or a notebook cell, which IPython keeps
    in :mod:`linecache`) and of its compiled code. The code also covers a function whose
    source cannot be found, and one whose file was edited after it was imported."""
    fn = inspect.unwrap(fn)
    digest = hashlib.sha256()
    try:
        digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):  # built at run time (exec), or not a Python function
        digest.update(b"no source")
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        _update_with_code(digest, code)
    return digest.hexdigest()[:16]


def _update_with_code(digest, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())  # which globals and attributes it uses
    for const in code.co_consts:  # nested functions and comprehensions are code objects
        if isinstance(const, types.CodeType):
            _update_with_code(digest, const)
        else:
            digest.update(_stable_repr(const).encode())


def _stable_repr(value: Any) -> str:
    """``repr`` of a code constant, with sets sorted: their order follows string hashing,
    which differs from one process to the next."""
    if isinstance(value, frozenset):
        return "frozenset(" + repr(sorted(_stable_repr(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_stable_repr(v) for v in value) + ")"
    return repr(value)


def source_digest(folder: str | os.PathLike) -> str:
    """A digest of every ``.py`` file under ``folder`` (names and contents), skipping hidden
    files and folders (editor backups, caches); no git needed."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@functools.cache
def package_digest() -> str:
    """:func:`source_digest` of the digitlab package, once per process: a study reuses no run
    stored by other digitlab code (restart a notebook's kernel after editing the package)."""
    return source_digest(Path(__file__).resolve().parents[1])


def fingerprint_arrays(*arrays) -> str:
    """A short digest of some arrays' content (NumPy or torch): a cell that names its
    data by it is reused only for the same rows."""
    digest = hashlib.sha256()
    for array in arrays:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]



def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_workers(workers: int | str, device: torch.device | None = None) -> int:
    """``auto``: one worker per GPU on a CUDA device, else one per core."""
    if workers == "auto":
        if device is not None and device.type == "cuda" and device.index is None:
            return max(1, torch.cuda.device_count())
        if device is not None and device.type != "cpu":  # one MPS GPU, or one chosen GPU
            return 1
        return usable_cores()
    try:
        count = int(workers)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise UserError(f"workers must be a positive number or 'auto', got {workers!r}.")
    return count


def threads_per_run(workers: int, threads: int | None = None) -> int:
    """The CPU threads each run uses: ``threads`` if given, else an equal share of the
    cores among the workers."""
    if threads is not None:
        if threads < 1:
            raise UserError(f"threads per run must be at least 1, got {threads}.")
        return threads
    return max(1, usable_cores() // workers)


def slug(name: str) -> str:
    # Never a leading dot: hidden names are atomic_target's temporary files (see clear).
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", name).strip("-.").lower() or "run"


class StudyStore:
    """Finished runs of one study, one file per run: ``folder/<slug of name>.pt``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, cell: Cell) -> Path:
        return self.folder / f"{slug(cell.name)}.pt"

    def load(self, cell: Cell, threads: int | None = None) -> tuple[bool, Any]:
        """(True, result) when ``cell`` finished before with the same inputs (and, given
        ``threads``, the same CPU threads per run: they change a run's last bits)."""
        path = self.path(cell)
        if not path.is_file():
            return False, None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file we cannot read is a run to redo, not a crash
            log.warning("ignoring unreadable stored run %s (%s)", path, err)
            return False, None
        if stored.get("name") != cell.name or stored.get("fingerprint") != cell.fingerprint():
            return False, None
        if threads is not None and stored.get("threads") != threads:
            return False, None
        return True, stored["result"]

    def save(self, cell: Cell, result: Any, threads: int | None = None) -> None:
        with atomic_target(self.path(cell)) as tmp:
            torch.save({"name": cell.name, "fingerprint": cell.fingerprint(),
                        "threads": threads, "result": result}, tmp)
            try:  # a result that cannot be read back safely must fail now, by name
                torch.load(tmp, map_location="cpu", weights_only=True)
            except Exception as err:
                raise TypeError(f"the result of {cell.name!r} cannot be stored: use tensors, "
                                f"numbers, strings, lists and dicts ({err})") from None

    def finished(self) -> list[Path]:
        """The stored runs' files; not the hidden temporary files (``.<slug>.<random>.pt``)
        that :func:`~digitlab.repro.atomic_target` is writing for a run still finishing,
        maybe in another process."""
        return sorted(path for path in self.folder.glob("*.pt") if not path.name.startswith("."))

    def clear(self, cells: Sequence[Cell] | None = None) -> None:
        """Forget the stored runs of ``cells``, or every stored run (e.g. once a timed
        benchmark has written its file); a run another process is writing is left alone."""
        paths = self.finished() if cells is None else [self.path(cell) for cell in cells]
        for path in paths:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Execution:
    """Where a study's runs go: ``workers`` local processes (an int or ``auto``), or the
    Dask scheduler at ``scheduler``; ``threads`` CPU threads per run (default: each local
    worker's share of the cores); ``fresh`` reruns what a previous run stored."""

    workers: int | str = 1
    scheduler: str | None = None
    threads: int | None = None
    fresh: bool = False

    def run_threads(self, workers: int) -> int | None:
        """CPU threads per run with ``workers`` local workers; None: the caller's."""
        if self.scheduler:  # a Dask worker's cores are its own: one thread per run
            return 1 if self.threads is None else threads_per_run(1, self.threads)
        if workers > 1 or self.threads is not None:
            return threads_per_run(workers, self.threads)
        return None

    def in_this_process(self, device: torch.device | None = None, runs: int | None = None) -> bool:
        """Whether a study of ``runs`` runs goes one run after another in this process, where
        a run's own progress bar shows on the user's terminal (a worker's would garble it or
        be lost); as :func:`run_study` decides, which starts no more workers than runs."""
        return not self.scheduler and (resolve_workers(self.workers, device) == 1 or runs == 1)

    def describe(self, device: torch.device | None = None) -> dict[str, Any]:
        """What a results file records of where its runs went."""
        workers = 1 if self.scheduler else resolve_workers(self.workers, device)
        return {"workers": workers, "scheduler": self.scheduler,
                "threads_per_run": self.run_threads(workers) or torch.get_num_threads()}


@dataclass(frozen=True)
class _Failure:
    name: str
    message: str


def _execute(index: int, cell: Cell, shared: Any, threads: int | None,
             gpu: int | None = None) -> tuple[int, Any]:
    """Run one cell where it lands (this process, a loky worker or a Dask worker)."""
    if threads is not None:
        torch.set_num_threads(threads)
    if gpu is not None:  # a bare "cuda" device in the cell then means this worker's GPU
        torch.cuda.set_device(gpu)
    try:
        return index, cell.fn(shared, **cell.kwargs)
    except Exception as err:  # reported with the others' results kept; see run_study
        if isinstance(err, UserError):
            return index, _Failure(cell.name, str(err))
        log.debug("%s failed:\n%s", cell.name, traceback.format_exc())
        return index, _Failure(cell.name, f"{type(err).__name__}: {err}")


def _nothing() -> Iterator[tuple[int, Any]]:
    yield from ()


def _in_process(todo, shared, threads) -> Iterator[tuple[int, Any]]:
    before = torch.get_num_threads()
    try:
        for index, cell in todo:
            yield _execute(index, cell, shared, threads)
    finally:
        torch.set_num_threads(before)


def _gpus(device: torch.device | None, workers: int) -> int:
    """How many GPUs the local workers take turns on (0: none)."""
    if device is None or device.type != "cuda" or device.index is not None:
        return 0
    return min(workers, torch.cuda.device_count())


def _local_processes(todo, shared, threads, workers, gpus) -> Iterator[tuple[int, Any]]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    try:
        yield from parallel(delayed(_execute)(index, cell, shared, threads,
                                              position % gpus if gpus else None)
                            for position, (index, cell) in enumerate(todo))
    except Exception as err:  # a worker process died (loky's TerminatedWorkerError)
        raise StudyError(f"a worker process stopped ({type(err).__name__}: {err}); the "
                         "runs finished before it are stored, rerun to resume.") from None


def _dask(todo, shared, threads, scheduler) -> Iterator[tuple[int, Any]]:
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise UserError(f"no Dask scheduler answered at {scheduler} ({err}); start one "
                        "with `dask scheduler` or check the address.") from None
    except TypeError as err:  # Dask's word for a tls:// address without certificates
        if "TLS" not in str(err):
            raise
        raise UserError(f"{scheduler} needs this machine's TLS certificate: set "
                        "distributed.comm.tls.ca-file, .client.cert and .client.key in the "
                        "Dask configuration (docs/studies.md).") from None
    with client:
        threaded = {address: n for address, n in client.nthreads().items() if n > 1}
        if threaded:  # runs in threads of one process would share torch's global RNG
            raise UserError(f"Dask workers {sorted(threaded)} run {max(threaded.values())} "
                            "threads each; start them with --nthreads 1 (one run per "
                            "process keeps each run's random numbers its own).")
        # One object under a random key: a dict scattered as is would be stored under its own
        # keys ("train", "x"), which another client on the cluster may hold other data under.
        shared_future = (client.scatter([shared], broadcast=True, hash=False)[0]
                         if shared is not None else None)
        run_id = uuid.uuid4().hex[:8]
        submitted = {}
        for index, cell in todo:
            future = client.submit(_execute, index, cell, shared_future, threads, pure=False,
                                   key=f"{slug(cell.name)}-{cell.fingerprint()}-{run_id}")
            submitted[future.key] = (future, index, cell)
        for future in as_completed([f for f, _, _ in submitted.values()]):
            _, index, cell = submitted[future.key]
            try:
                yield future.result()
            except Exception as err:  # lost more often than Dask retries (KilledWorker)
                yield index, _Failure(cell.name, f"{type(err).__name__}: {err}")
            future.release()


def run_study(cells: Sequence[Cell], *, shared: Any = None,
              folder: str | os.PathLike | None = None, execution: Execution | None = None,
              device: torch.device | None = None, desc: str = "study",
              progress: bool = True) -> list[Any]:
    """Run every cell of a study; return their results in the order of ``cells``.

    ``shared`` is passed as the first argument of every cell (the data, sent to each
    worker once on a cluster). ``folder``: where finished runs are stored and
    reused from, for the same inputs and code; ``execution.fresh`` forgets the stored
    runs of ``cells`` and reruns them. One line on stdout says how many runs were
    reused, if any (a notebook shows it). ``execution``: local worker
    processes or a Dask scheduler (:class:`Execution`; default: this process).
    Threads per run: ``execution.threads``, else each local worker's share of the
    cores (one per run on a cluster; in this process, the caller's setting).
    ``device``: with ``workers="auto"`` on CUDA, one worker per GPU; with several local
    workers and a bare ``cuda`` device, the runs take turns on the GPUs.
    """
    execution = execution or Execution()
    scheduler = execution.scheduler
    names = [slug(cell.name) for cell in cells]
    if len(set(names)) != len(names):
        raise UserError(f"a study's runs need distinct names; repeated: "
                        f"{sorted({n for n in names if names.count(n) > 1})}.")
    workers = 1 if scheduler else resolve_workers(execution.workers, device)
    threads = execution.run_threads(workers)
    # Threads matter to a CPU run's numbers, not to a GPU run's.
    on_cpu = device is None or device.type == "cpu"
    recorded = (threads or torch.get_num_threads()) if on_cpu else None
    store = StudyStore(folder) if folder is not None else None
    if store is not None:
        for cell in cells:  # pin each run's code now, before the files can change
            cell.fingerprint()
        if execution.fresh:  # an interrupted fresh study then resumes without older runs
            store.clear(cells)
    results: list[Any] = [None] * len(cells)
    todo = []
    for index, cell in enumerate(cells):
        found, result = ((False, None) if store is None or execution.fresh
                         else store.load(cell, recorded))
        if found:
            results[index] = result
        else:
            todo.append((index, cell))
    count = min(workers, max(1, len(todo)))
    reused = len(cells) - len(todo)
    where = f"Dask scheduler {scheduler}" if scheduler else (
        f"{count} worker process{'es' if count > 1 else ''}" if count > 1 else "this process")
    if reused:  # printed, not logged: a notebook shows its stdout
        print(f"{desc}: reused {reused} of {len(cells)} stored runs from {store.folder} "
              "(fresh=True, --fresh or make FRESH=1 reruns them)", flush=True)
    if not todo:  # every run was stored: nothing to start, nothing to close
        finished = _nothing()
    elif scheduler:
        finished = _dask(todo, shared, threads, scheduler)
    elif count > 1:
        finished = _local_processes(todo, shared, threads, count, _gpus(device, count))
    else:
        finished = _in_process(todo, shared, threads)
    failures = []
    bar = tqdm(total=len(cells), initial=reused, desc=desc, unit="run", disable=not progress,
               postfix={"on": where, "threads": threads or torch.get_num_threads()})
    with bar, contextlib.closing(finished):
        for index, result in finished:
            if isinstance(result, _Failure):
                failures.append(result)
                log.error("%s failed: %s", result.name, result.message)
            else:
                results[index] = result
                if store is not None:
                    store.save(cells[index], result, recorded)
            bar.update()
    if failures:
        kept = (f"; the other results are stored in {store.folder}, and rerunning the study "
                "runs only what is missing") if store else ""
        details = "; ".join(f"{f.name}: {f.message}" for f in failures)
        raise StudyError(f"{len(failures)} of {len(cells)} runs failed ({details}){kept}.")
    return results
