"""Studies: the same numbers whatever runs them, nothing lost on interruption.

The references are the same study run one cell after another in this process:
a study spread over workers or a Dask cluster must give exactly those numbers.
The cluster is a real ``dask.distributed.LocalCluster`` of two worker processes
on 127.0.0.1, closed at the end of the module.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import torch

import digitlab.architectures  # noqa: F401  (the networks the studies name)
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine import cv as cv_module
from digitlab.engine.cv import cross_validate
from digitlab.engine.parallel import (
    Cell,
    Execution,
    StudyError,
    StudyStore,
    resolve_workers,
    run_study,
    threads_per_run,
)
from digitlab.errors import UserError

NETWORK = NetworkSpec("cnn2", {"channels": (4, 8)})
RECIPE = Recipe(optimizer="adam", lr=3e-3, epochs=1, batch_size=64, augment=True)


@pytest.fixture(scope="module")
def digits():
    x, y = as_tensors(*load_mnist("embedded", seed=0).pooled())
    return x[:480], y[:480]


@pytest.fixture(scope="module")
def reference(digits):
    """The study run in this process, one fold after another, one thread per run."""
    return cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3,
                          execution=Execution(threads=1))


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as local:
        yield local


def same_scores(a: dict, b: dict) -> None:
    assert torch.equal(a.oof_logits, b.oof_logits)
    assert a.fold_accuracy == b.fold_accuracy
    assert a.accuracy == b.accuracy and a.log_loss == b.log_loss


def test_local_worker_processes_give_the_numbers_of_one_process(digits, reference):
    spread = cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3,
                            execution=Execution(workers=2, threads=1))
    same_scores(spread, reference)


def test_a_dask_cluster_gives_the_numbers_of_one_process(digits, reference, cluster):
    on_cluster = cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3,
                                execution=Execution(scheduler=cluster.scheduler_address))
    same_scores(on_cluster, reference)


def test_a_killed_worker_is_replaced_and_the_study_completes_unchanged(digits, reference,
                                                                       cluster, tmp_path):
    """Kill one worker process once the first fold is stored: Dask reschedules the
    fold it was running, and every number equals the uninterrupted study's."""
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = []

    def kill_after_first_result():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(tmp_path.glob("*.pt")):
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(len(list(tmp_path.glob("*.pt"))))

    killer = threading.Thread(target=kill_after_first_result, daemon=True)
    killer.start()
    result = cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3, folder=tmp_path,
                            execution=Execution(scheduler=cluster.scheduler_address))
    killer.join(timeout=5)
    assert killed and killed[0] < 6, "the worker was not killed in the middle of the study"
    same_scores(result, reference)


def test_an_interrupted_study_reruns_only_what_is_missing(digits, reference, tmp_path,
                                                          monkeypatch, capsys):
    real_train, calls, first_pass = cv_module.train, [], [True]

    def train_failing_on_fold_4(*args, desc, **kwargs):
        calls.append(desc)
        if desc == "fold 4" and first_pass[0]:
            raise RuntimeError("the machine went away")
        return real_train(*args, desc=desc, **kwargs)

    monkeypatch.setattr(cv_module, "train", train_failing_on_fold_4)
    execution = Execution(threads=1)
    with pytest.raises(StudyError, match=r"1 of 6 runs failed \(fold 4: RuntimeError: the "
                                         r"machine went away\).*stored in"):
        cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3, folder=tmp_path,
                       execution=execution)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        "fold-1.pt", "fold-2.pt", "fold-3.pt", "fold-5.pt", "fold-6.pt"]

    calls.clear()
    first_pass[0] = False
    resumed = cross_validate(NETWORK, RECIPE, *digits, folds=6, seed=3, folder=tmp_path,
                             execution=execution)
    assert calls == ["fold 4"]
    assert "reused 5 of 6 stored runs" in capsys.readouterr().out
    same_scores(resumed, reference)


def test_a_stored_run_is_reused_only_for_the_same_inputs(digits, tmp_path, monkeypatch):
    small = (digits[0][:240], digits[1][:240])
    cross_validate(NETWORK, RECIPE, *small, folds=2, seed=0, folder=tmp_path,
                   execution=Execution(threads=1))
    real_train, calls = cv_module.train, []

    def counting(*args, desc, **kwargs):
        calls.append(desc)
        return real_train(*args, desc=desc, **kwargs)

    monkeypatch.setattr(cv_module, "train", counting)
    for changed in ({"recipe": RECIPE.replace(lr=1e-3)}, {"seed": 1},
                    {"data": (small[0] * 0.5, small[1])}):
        calls.clear()
        cross_validate(NETWORK, changed.get("recipe", RECIPE), *changed.get("data", small),
                       folds=2, seed=changed.get("seed", 0), folder=tmp_path,
                       execution=Execution(threads=1))
        assert calls == ["fold 1", "fold 2"], f"a stored run was reused after {changed}"
    calls.clear()
    cross_validate(NETWORK, RECIPE, *small, folds=2, seed=0, folder=tmp_path,
                   execution=Execution(threads=1, fresh=True))
    assert calls == ["fold 1", "fold 2"], "--fresh reused stored runs"
    calls.clear()  # another thread count changes a CPU run's last bits: not the same run
    cross_validate(NETWORK, RECIPE, *small, folds=2, seed=0, folder=tmp_path,
                   execution=Execution(threads=2))
    assert calls == ["fold 1", "fold 2"], "a run stored with 1 thread was reused for 2"


def double(shared, *, value):
    return {"twice": torch.tensor([2 * value + shared])}


def test_results_come_back_in_the_study_order_and_unreadable_files_are_redone(tmp_path):
    cells = [Cell(f"cell {v}", double, {"value": v}) for v in (5, 1, 4)]
    first = run_study(cells, shared=10, folder=tmp_path, progress=False)
    assert [r["twice"].item() for r in first] == [20, 12, 18]
    StudyStore(tmp_path).path(cells[1]).write_bytes(b"half a file")
    again = run_study(cells, shared=10, folder=tmp_path, progress=False)
    assert [r["twice"].item() for r in again] == [20, 12, 18]


def stringly(shared, *, value):
    return {"where": __import__("pathlib").Path("/tmp")}


def test_what_cannot_be_stored_or_fingerprinted_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="cell 'a': pass arrays in the shared data"):
        Cell("a", double, {"value": torch.zeros(3)})
    with pytest.raises(TypeError, match="the result of 'b' cannot be stored"):
        run_study([Cell("b", stringly, {"value": 1})], shared=0, folder=tmp_path,
                  progress=False)
    assert not list(tmp_path.glob("*.pt"))


def test_study_options_are_checked():
    assert threads_per_run(2, None) >= 1 and threads_per_run(3, 4) == 4
    assert resolve_workers("3") == 3
    for bad in ("0", "-2", "many"):
        with pytest.raises(UserError, match="workers must be a positive number or 'auto'"):
            resolve_workers(bad)
    for twins in (("a", "a"), ("A b", "a-b")):  # the second pair would share one file
        with pytest.raises(UserError, match="distinct names"):
            run_study([Cell(twins[0], double, {"value": 1}), Cell(twins[1], double,
                                                                  {"value": 2})],
                      shared=0, progress=False)


def test_only_runs_in_this_process_show_their_own_progress(monkeypatch):
    # A run's epoch bar belongs on the user's terminal only when no worker runs it.
    monkeypatch.setattr("digitlab.engine.parallel.usable_cores", lambda: 2)
    cpu = torch.device("cpu")
    assert Execution().in_this_process(cpu)
    assert Execution(workers="1", threads=2).in_this_process(cpu)
    assert not Execution(workers=2).in_this_process(cpu)
    assert Execution(workers=2).in_this_process(cpu, runs=1)  # no worker for a single run
    assert not Execution(workers="auto").in_this_process(cpu)  # one worker per core
    assert not Execution(scheduler="tcp://127.0.0.1:8786").in_this_process(cpu)
    monkeypatch.setattr("digitlab.engine.parallel.usable_cores", lambda: 1)
    assert Execution(workers="auto").in_this_process(cpu)  # one core: one worker, here


def test_no_scheduler_at_the_address_is_one_sentence(monkeypatch):
    monkeypatch.setattr("digitlab.engine.parallel.CONNECT_TIMEOUT", "2s")
    with pytest.raises(UserError, match="no Dask scheduler answered at tcp://127.0.0.1:9"):
        run_study([Cell("a", double, {"value": 1})], shared=0, progress=False,
                  execution=Execution(scheduler="tcp://127.0.0.1:9"))


def test_a_tls_scheduler_without_a_certificate_is_one_sentence():
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    unset = {"distributed.comm.tls.ca-file": None, "distributed.comm.tls.client.cert": None,
             "distributed.comm.tls.client.key": None}
    with dask.config.set(unset), pytest.raises(UserError, match="tls://127.0.0.1:9 needs "
                                                              "this machine's TLS certificate"):
        run_study([Cell("a", double, {"value": 1})], shared=0, progress=False,
                  execution=Execution(scheduler="tls://127.0.0.1:9"))


def add_offset(shared, *, value):
    return {"sum": torch.tensor([value + shared["offset"]])}


def test_a_study_and_another_client_on_one_cluster_keep_their_own_shared_data(cluster):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster.scheduler_address) as other:
        # Another study in flight holds data under the same names as this one's.
        held = other.scatter({"offset": 100}, broadcast=True)
        results = run_study([Cell(f"value {v}", add_offset, {"value": v}) for v in (1, 2)],
                            shared={"offset": 10}, progress=False,
                            execution=Execution(scheduler=cluster.scheduler_address))
        assert [r["sum"].item() for r in results] == [11, 12]
        assert other.gather(held["offset"]) == 100


def test_the_recipe_comparison_on_a_cluster_matches_one_worker(cluster, tmp_path):
    """The script's --scheduler and --workers 1 (one thread per run) write the same
    table; the second run of the same command reuses every stored fold."""
    from test_benchmarks import benchmark

    recipe_benchmark = benchmark("mnist_cnn_recipe")
    base = ["--quick", "--only", "15 epochs", "40 epochs, batch 64", "--device", "cpu"]
    recipe_benchmark.main([*base, "--workers", "1", "--threads", "1",
                           "--output", str(tmp_path / "one.json")])
    recipe_benchmark.main([*base, "--scheduler", cluster.scheduler_address,
                           "--output", str(tmp_path / "cluster.json")])
    one, spread = (json.loads((tmp_path / f"{n}.json").read_text())["metrics"]["candidates"]
                   for n in ("one", "cluster"))
    for name in one:
        for key in ("accuracy", "log_loss", "fold_accuracy", "oof_predictions"):
            assert one[name][key] == spread[name][key], (name, key)
    assert sorted(p.name for p in (tmp_path / "cluster_runs").glob("*.pt")) == [
        "15-epochs-fold-1.pt", "15-epochs-fold-2.pt",
        "40-epochs-batch-64-fold-1.pt", "40-epochs-batch-64-fold-2.pt"]


def test_the_workers_benchmark_compares_two_identical_tables(project_root):
    from test_benchmarks import benchmark

    module = benchmark("study_workers")
    module.main(["--quick"])
    report = json.loads((project_root / "results/mnist/study_workers_quick.json").read_text())
    metrics = report["metrics"]
    assert metrics["identical"] is True and metrics["workers"] == [1, 2]
    one, two = metrics["wall_seconds"]["1"], metrics["wall_seconds"]["2"]
    assert metrics["speedup"] == pytest.approx(one / two)
    for workers in (1, 2):
        table = json.loads((project_root / f"results/mnist/study_workers_quick_{workers}.json")
                           .read_text())
        assert table["run"]["config"]["threads_per_run"] == 1
        assert table["run"]["config"]["workers"] == workers


def test_tables_that_differ_in_one_prediction_are_not_identical():
    from test_benchmarks import benchmark

    identical = benchmark("study_workers").identical
    row = {"accuracy": 0.5, "log_loss": 0.7, "fold_accuracy": [0.5, 0.5],
           "oof_predictions": [1, 2, 3, 4]}
    assert identical({"a": row}, {"a": dict(row)})
    assert not identical({"a": row}, {"a": {**row, "oof_predictions": [1, 2, 3, 5]}})
    assert not identical({"a": row}, {"b": row})
