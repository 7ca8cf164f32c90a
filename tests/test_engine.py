"""The engine: one Recipe, one fit, one early-stopping rule, cross-validation, devices,
checkpoints that load anywhere, and the structure the engine contract promises."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cnn import digits as square_digits  # class k: a bright square in cell k
from torch import nn

from digitlab import devices, engine
from digitlab.architectures import architectures
from digitlab.data.transforms import as_tensors
from digitlab.engine import NetworkSpec, Recipe, cross_validate, fit, runner
from digitlab.engine import networks as registry
from digitlab.engine.checkpoint import load_checkpoint, save_checkpoint
from digitlab.errors import UserError
from digitlab.paths import PROJECT_ROOT

SGD = Recipe(optimizer="sgd", lr=0.5, momentum=0.0, epochs=15, batch_size=32)


def separable(n: int = 400, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=gen)
    return x, (x[:, 0] + x[:, 1] > 0).long()


# --- fit and its one early-stopping rule ---------------------------------------------

def test_fit_keeps_the_weights_of_the_lowest_validation_loss():
    x, y = separable()
    model = nn.Linear(2, 2)
    history = fit(model, SGD, (x[:300], y[:300]), (x[300:], y[300:]), progress=False)
    loss = F.cross_entropy(model(x[300:]), y[300:]).item()
    assert loss == pytest.approx(min(history.val_loss), rel=1e-5)
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1
    accuracy = (model(x[300:]).argmax(1) == y[300:]).float().mean().item()
    assert history.val_accuracy == pytest.approx(accuracy)  # the kept weights' accuracy
    assert accuracy > 0.95 and len(history.train_loss) == 15


def test_without_validation_the_last_epoch_is_kept_even_when_it_is_worse():
    # Random labels and a step size this large make the loss grow: the first epoch has the
    # lowest training loss, but a run without validation keeps its last weights.
    torch.manual_seed(0)
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    model = nn.Linear(2, 2)
    recipe = Recipe(optimizer="sgd", lr=20.0, momentum=0.9, nesterov=False, epochs=4,
                    batch_size=8)
    history = fit(model, recipe, (x, y), progress=False)
    assert history.best_epoch == 4 and history.val_accuracy is None
    assert int(np.argmin(history.train_loss)) == 0
    final_loss = F.cross_entropy(model(x), y).item()
    assert final_loss > 2 * history.train_loss[0]


def test_fit_stops_early_when_validation_stops_improving():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 2, generator=gen), torch.randint(0, 2, (64,), generator=gen)  # noise
    val = torch.randn(64, 2, generator=gen), torch.randint(0, 2, (64,), generator=gen)
    history = fit(nn.Linear(2, 2), SGD.replace(lr=1.0, epochs=200, patience=3), (x, y), val,
                  progress=False)
    assert history.stopped_early and len(history.val_loss) < 200
    # It stopped exactly `patience` epochs after the best one.
    assert len(history.val_loss) == history.best_epoch + 3


def test_history_records_the_learning_rate_each_epoch_trained_with():
    x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    recipe = Recipe(optimizer="sgd", lr=1.0, schedule="step", step_gamma=0.5, epochs=3)
    history = fit(nn.Linear(2, 2), recipe, (x, y), progress=False)
    assert history.lr == [1.0, 0.5, 0.25]


def test_label_smoothing_trains_on_the_smoothed_cross_entropy():
    # One batch, a learning rate too small to move: the recorded loss is the loss of the
    # initial weights, which the smoothed cross-entropy formula gives by hand.
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    log_p = torch.log_softmax(model(x), 1).detach()
    eps = 0.2
    expected = ((1 - eps) * -log_p[torch.arange(16), y] - eps * log_p.mean(1)).mean().item()
    recipe = Recipe(optimizer="sgd", lr=1e-12, epochs=1, batch_size=16, label_smoothing=eps)
    history = fit(model, recipe, (x, y), progress=False)
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-5)


def test_the_same_seed_trains_the_same_weights_and_another_seed_does_not():
    x, y = as_tensors(*square_digits(100, 2))
    recipe = Recipe(optimizer="adam", lr=0.003, epochs=2, batch_size=20, augment=True)
    network = NetworkSpec("cnn2", {"channels": (4, 8)})
    first, _ = engine.train(network, recipe, (x, y), seed=4, progress=False)
    again, _ = engine.train(network, recipe, (x, y), seed=4, progress=False)
    other, _ = engine.train(network, recipe, (x, y), seed=5, progress=False)
    assert torch.equal(first(x[:8]), again(x[:8]))
    assert not torch.equal(first(x[:8]), other(x[:8]))


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    ({"schedule": "cosine"}, "unknown schedule 'cosine'"),
    ({"precision": "fp16"}, "unknown precision 'fp16'"),
    ({"epochs": 0}, "at least 1"),
    ({"label_smoothing": 1.0}, "label smoothing must be in"),
    ({"fresh_noise": "snow"}, "unknown noise type 'snow'"),
])
def test_an_impossible_recipe_is_one_sentence(changes, message):
    with pytest.raises(UserError, match=message):
        Recipe(**changes)


# --- networks and runs -----------------------------------------------------------------

def test_every_architecture_of_every_track_builds_by_name():
    table = architectures()
    assert {"mini-mlp", "mini-cnn", "cnn2", "cnn3", "reference", "best", "dnn",
            "dnn-bn"} <= set(table)
    inputs = {"mini-mlp": torch.randn(2, 72), "mini-cnn": torch.randn(2, 72)}
    for arch in table:
        logits = NetworkSpec(arch).build(seed=0).eval()(inputs.get(arch, torch.randn(2, 1, 28, 28)))
        assert logits.shape == (2, 10), arch
    with pytest.raises(UserError, match="^unknown architecture 'resnet'; choose one of ") as err:
        NetworkSpec("resnet").build()
    # Every name, in order (a name added the README's way included), then the full stop.
    listed = str(err.value).partition("choose one of ")[2].removesuffix(".").split(", ")
    assert listed == sorted(listed) and set(listed) == set(table)
    with pytest.raises(UserError, match="unknown dense architecture 'cnn2'; choose one of "
                                        "dnn, dnn-bn[.]$"):
        registry.build("cnn2", "dense")


def test_a_track_registers_its_architectures_and_a_taken_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})

    @registry.register("tiny", family="toy")
    def tiny(width: int = 3):
        return nn.Linear(2, width)

    registry.register("tiny", tiny, family="toy")  # a module imported again: harmless
    assert registry.architectures("toy") == {"tiny": tiny} and registry.families() == ["toy"]
    assert NetworkSpec("tiny", {"width": 5}).build().out_features == 5
    with pytest.raises(ValueError, match="'tiny' is already registered by family 'toy'"):
        registry.register("tiny", lambda: nn.Linear(2, 2), family="other")


def test_fit_refuses_the_old_argument_order():
    x, y = separable(8)
    with pytest.raises(TypeError, match=r"fit\(model, recipe, train_data, val_data\)"):
        fit(nn.Linear(2, 2), (x, y), None, SGD)


def test_a_run_reports_the_kept_validation_accuracy_or_none_when_validation_was_trained_on():
    train, val, test = (as_tensors(*square_digits(n, s)) for n, s in ((120, 1), (40, 2),
                                                                      (40, 3)))
    recipe = Recipe(optimizer="adam", lr=0.003, epochs=2, batch_size=20)
    network = NetworkSpec("cnn2", {"channels": (4, 8)})
    result = engine.run(network, recipe, train, val, test, progress=False)
    assert result.val_accuracy == pytest.approx(result.history.val_accuracy)
    assert result.n_train == 120 and result.test["n"] == 40
    assert result.device["device"] == "cpu" and result.device["device_name"]
    recorded = result.to_dict()
    assert recorded["test_accuracy"] == result.test["accuracy"] and "model" not in recorded
    folded = engine.run(network, recipe.replace(train_on_val=True), train, val, test,
                        progress=False)
    assert folded.val_accuracy is None and folded.n_train == 160


def test_an_ensemble_with_early_stopping_reports_the_averaged_prediction(monkeypatch):
    # Members that stop at different epochs: the merged history keeps every epoch any
    # member trained and all their seconds, and names no single kept epoch.
    train_data, val = as_tensors(*square_digits(100, 5)), as_tensors(*square_digits(40, 6))
    lengths = iter([3, 5])
    real_fit = runner.fit

    def stopping_fit(model, recipe, train_data, val_data, **kwargs):
        return real_fit(model, recipe.replace(epochs=next(lengths)), train_data, val_data,
                        **kwargs)

    monkeypatch.setattr(runner, "fit", stopping_fit)
    network = NetworkSpec("best", {"width": 4, "members": 2})
    result = engine.run(network, Recipe(epochs=5, batch_size=20), train_data, val, val,
                        progress=False)
    history = result.history
    assert len(history.train_loss) == 5 and history.val_accuracy is None
    assert len(history.epoch_seconds) == 5
    assert result.images_per_second == pytest.approx(
        5 * 100 / history.train_seconds)  # epochs run by the longest member
    accuracy = (result.model(val[0]).argmax(1) == val[1]).float().mean().item()
    assert result.val_accuracy == pytest.approx(accuracy)


def test_an_ensemble_trains_each_member_from_its_own_seed_and_averages_probabilities(tmp_path):
    x, y = as_tensors(*square_digits(60, 7))
    network = NetworkSpec("best", {"width": 4, "members": 2})
    recipe = Recipe(optimizer="adamw", epochs=1, batch_size=30, precision="bf16",
                    channels_last=True)
    model, history = engine.train(network, recipe, (x, y), progress=False)
    first, second = model.members
    assert not torch.equal(first[0][0].weight, second[0][0].weight)
    mean = torch.stack([m(x[:5]).softmax(1) for m in model.members]).mean(0)
    assert torch.allclose(model(x[:5]).softmax(1), mean, atol=1e-5)
    assert len(history.epoch_seconds) == 1
    path = save_checkpoint(tmp_path / "e.pt", model, network, data={}, metrics={})
    assert torch.allclose(load_checkpoint(path)[0](x[:5]), model(x[:5]))


# --- cross-validation ------------------------------------------------------------------

def test_cross_validation_predicts_each_row_with_a_network_that_never_saw_it():
    # cnn2 memorises 60 digits in 15 epochs; with shuffled labels only a leak would score.
    recipe = Recipe(optimizer="adam", lr=0.003, epochs=15, batch_size=10, train_on_val=True)
    network = NetworkSpec("cnn2")
    x, y = as_tensors(*square_digits(120, 8))
    learnable = cross_validate(network, recipe, x, y, folds=2)
    assert learnable.accuracy > 0.9 and learnable.n_images == 120
    assert learnable.oof_logits.shape == (120, 10)
    assert (learnable.oof_logits != 0).any(1).all()  # every row predicted
    assert [f.n_test for f in learnable.folds] == [60, 60]
    shuffled = torch.as_tensor(np.random.default_rng(0).permutation(y.numpy()))
    assert cross_validate(network, recipe, x, shuffled, folds=2).accuracy < 0.35
    for folds in (1, 13):  # 120 digits hold 12 of each: at most 12 stratified folds
        with pytest.raises(UserError, match="needs 2 to 12 folds"):
            cross_validate(network, recipe, x, y, folds=folds)


def test_cross_validation_trains_on_x_fit_and_scores_on_x():
    # Training rows without information (all blank) must give chance on the held-out rows,
    # however learnable the rows they are scored on.
    x, y = as_tensors(*square_digits(100, 9))
    recipe = Recipe(optimizer="adam", lr=0.003, epochs=8, batch_size=10)
    blank = torch.zeros_like(x)
    result = cross_validate(NetworkSpec("cnn2"), recipe, x, y, folds=2, x_fit=blank)
    assert result.accuracy <= 0.2
    with pytest.raises(UserError, match="index-aligned"):
        cross_validate(NetworkSpec("cnn2"), recipe, x, y, folds=2, x_fit=blank[:50])


def test_an_inner_validation_split_is_held_out_of_each_fold_and_stratified():
    x, y = as_tensors(*square_digits(200, 4))
    recipe = Recipe(optimizer="adam", lr=0.003, epochs=2, batch_size=20)
    result = cross_validate(NetworkSpec("cnn2", {"channels": (4, 8)}), recipe, x, y, folds=4,
                            inner_val=0.2)
    for fold in result.folds:
        assert (fold.n_train, fold.n_val, fold.n_test) == (120, 30, 50)
        assert len(fold.history["val_acc"]) == 2
    accuracies = [f.accuracy for f in result.folds]
    assert result.mean == pytest.approx(sum(accuracies) / 4)
    assert result.std == pytest.approx((sum((a - result.mean) ** 2 for a in accuracies) / 4) ** 0.5)


# --- devices -------------------------------------------------------------------------

def test_asking_for_a_device_that_is_not_there_is_one_sentence_naming_what_is():
    with mock.patch.object(torch.cuda, "is_available", return_value=False), \
            mock.patch.object(devices, "_mps_available", return_value=False):
        assert devices.resolve("auto") == torch.device("cpu")
        with pytest.raises(UserError, match=r"^no CUDA device on this machine for device 'cuda'; "
                                            r"available: cpu, or auto[.]$"):
            devices.resolve("cuda")
        with pytest.raises(UserError, match="no MPS device"):
            devices.resolve("mps")
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        devices.resolve("tpu")


def test_train_script_with_an_absent_device_exits_with_status_2(capsys):
    spec = importlib.util.spec_from_file_location("train_cnn",
                                                  PROJECT_ROOT / "scripts" / "train_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with mock.patch.object(torch.cuda, "is_available", return_value=False), \
            pytest.raises(SystemExit) as exit_info:
        module.main(["--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device: no CUDA device on this machine for device 'cuda'")
    assert "\n" not in err


def test_bfloat16_is_used_only_where_the_device_runs_it():
    cpu = torch.device("cpu")
    with mock.patch.object(devices, "cpu_has_bf16", return_value=True):
        assert devices.autocast_dtype(cpu, "bf16") == torch.bfloat16
        assert devices.autocast_dtype(cpu, "fp32") is None
    with mock.patch.object(devices, "cpu_has_bf16", return_value=False):
        assert devices.autocast_dtype(cpu, "bf16") is None
    # Native bfloat16 from compute capability 8.0 (Ampere); a T4 (7.5) only emulates it.
    with mock.patch.object(torch.cuda, "get_device_capability", return_value=(7, 5)):
        assert devices.autocast_dtype(torch.device("cuda"), "bf16") is None
    with mock.patch.object(torch.cuda, "get_device_capability", return_value=(8, 0)):
        assert devices.autocast_dtype(torch.device("cuda:1"), "bf16") == torch.bfloat16


def test_a_checkpoint_saved_on_a_gpu_loads_on_a_cpu_only_machine(tmp_path):
    # Save as a CUDA run writes it: every tensor tagged with the cuda:0 location.
    model = NetworkSpec("dnn", {"hidden": (8,)}).build(seed=0).eval()
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        path = save_checkpoint(tmp_path / "gpu.pt", model, NetworkSpec("dnn", {"hidden": (8,)}),
                               data={"source": "embedded"}, metrics={})
    with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does here
        torch.load(path, weights_only=True)
    with mock.patch.object(torch.cuda, "is_available", return_value=False):
        loaded, info = load_checkpoint(path, "cpu")
    x = torch.randn(3, 784)
    assert next(loaded.parameters()).device.type == "cpu"
    assert torch.equal(loaded(x), model(x))
    assert info["network"] == NetworkSpec("dnn", {"hidden": [8]})


@pytest.mark.gpu
def test_training_on_cuda_in_bfloat16_gives_a_checkpoint_that_loads_on_the_cpu(tmp_path):
    x, y = as_tensors(*square_digits(200, 1))
    recipe = Recipe(optimizer="adamw", lr=0.01, schedule="onecycle", epochs=5, batch_size=50,
                    augment=True, fresh_noise="awgn", precision="bf16", channels_last=True)
    network = NetworkSpec("best", {"width": 8})
    model, history = engine.train(network, recipe, (x, y), device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert history.train_acc[-1] > 0.5
    path = save_checkpoint(tmp_path / "cuda.pt", model, network, data={}, metrics={})
    loaded, _ = load_checkpoint(path, "cpu")
    assert torch.allclose(loaded(x[:10]), model(x[:10].cuda()).cpu(), atol=1e-4)


# --- the contract, structurally --------------------------------------------------------

def tracked(pattern: str) -> list[str]:
    """Files git tracks, or would track (new files not ignored), matching ``pattern``."""
    return subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                           pattern], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          check=True).stdout.split()


def test_no_script_benchmark_or_notebook_imports_a_script():
    names = "|".join(re.escape(p.split("/")[-1][:-3])
                     for p in tracked("scripts/*.py") + tracked("benchmarks/*.py"))
    pattern = re.compile(rf"sys\.path\.(insert|append)|spec_from_file_location|"
                         rf"^\s*(import|from) ({names})\b", re.MULTILINE)
    for path in tracked("scripts/*.py") + tracked("benchmarks/*.py") + tracked("notebooks/*.py"):
        assert not pattern.search((PROJECT_ROOT / path).read_text()), path


def test_only_the_shared_core_lives_at_the_top_of_the_package():
    top = {path.name for path in (PROJECT_ROOT / "digitlab").glob("*.py")}
    assert top == {"__init__.py", "paths.py", "repro.py", "cli.py", "devices.py", "metrics.py",
                   "plots.py", "errors.py", "architectures.py", "settings.py"}


def test_checkpoint_files_are_read_without_running_code(tmp_path):
    class Payload:  # any pickled object: the safe loader must refuse it, not run it
        def __reduce__(self):
            return (math.factorial, (3,))

    torch.save({"model": Payload()}, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="not a digitlab checkpoint .*pickled") as err:
        load_checkpoint(tmp_path / "pickled.pt")
    assert "weights_only" not in str(err.value)
