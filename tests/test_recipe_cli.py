"""Recipes and networks from the command line: ``--recipe``/``--set``, ``--arch``/``--option``,
typed from the Recipe dataclass and the builders' signatures (digitlab.cli.RunOptions,
digitlab.settings), as scripts/train_cnn.py uses them."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import logging

import pytest

from digitlab.data.transforms import RandomAffine
from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.recipe import AFFINE_KEYS
from digitlab.errors import UserError
from digitlab.mnist.recipes import (
    BEST,
    BEST_NETWORK,
    FULL,
    FULL_NETWORK,
    REFERENCE,
    REFERENCE_NETWORK,
)
from digitlab.paths import PROJECT_ROOT
from digitlab.settings import convert, parse_options


@pytest.fixture(scope="module")
def train_cnn():
    spec = importlib.util.spec_from_file_location("train_cnn",
                                                  PROJECT_ROOT / "scripts" / "train_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chosen(train_cnn, argv, n_train=4_000):
    """The network and recipe a run on ``n_train`` training digits (the embedded 4,000 by
    default) would train."""
    return train_cnn.network_and_recipe(train_cnn.parse_args(argv), n_train)


def test_the_default_run_is_the_best_network_with_the_best_recipe(train_cnn):
    network, recipe = chosen(train_cnn, [])
    assert network == BEST_NETWORK and recipe == BEST
    # Written out, so that a change to BEST itself is not silently "the default".
    assert network == NetworkSpec("best", {"width": 16, "members": 1, "tta_shift": 1})
    assert (recipe.optimizer, recipe.lr, recipe.epochs, recipe.batch_size) == ("adamw", 0.01, 30,
                                                                               32)


def test_the_full_mnist_gets_the_full_recipe_unless_another_is_named(train_cnn, monkeypatch):
    network, recipe = chosen(train_cnn, [], n_train=60_000)
    assert (network, recipe) == (FULL_NETWORK, FULL)
    # FULL is BEST today (the validation chose it): a full recipe unlike BEST shows that auto
    # reads the full one at full scale, and only there.
    unlike_best = FULL.replace(epochs=FULL.epochs + 1)
    monkeypatch.setitem(train_cnn.RUN_OPTIONS.recipes, "full", (FULL_NETWORK, unlike_best))
    assert chosen(train_cnn, [], n_train=60_000)[1] == unlike_best
    assert chosen(train_cnn, [], n_train=4_000)[1] == BEST
    monkeypatch.undo()
    assert chosen(train_cnn, ["--recipe", "best"], n_train=60_000) == (BEST_NETWORK, BEST)
    assert chosen(train_cnn, ["--recipe", "full"], n_train=4_000) == (FULL_NETWORK, FULL)
    # A flag changes the size-chosen recipe, not BEST.
    assert chosen(train_cnn, ["--epochs", "3"], n_train=60_000)[1] == FULL.replace(epochs=3)


def test_the_learning_rate_of_the_best_recipe_belongs_to_its_network_and_optimiser(train_cnn):
    assert chosen(train_cnn, ["--arch", "cnn2"])[1].lr is None
    assert chosen(train_cnn, ["--optimizer", "sgd"])[1].lr is None
    assert chosen(train_cnn, ["--set", "optimizer=sgd"])[1].learning_rate == 0.1
    assert chosen(train_cnn, ["--arch", "cnn2", "--lr", "0.05"])[1].lr == 0.05
    assert chosen(train_cnn, ["--epochs", "3"])[1].lr == 0.01


def test_the_flags_documented_before_keep_their_meaning(train_cnn):
    network, recipe = chosen(train_cnn, [
        "--arch", "cnn2", "--optimizer", "adadelta", "--lr", "1.0", "--weight-decay", "0.001",
        "--schedule", "step", "--epochs", "14", "--batch-size", "64", "--no-augment",
        "--label-smoothing", "0.1", "--no-bf16", "--no-channels-last", "--no-train-on-val",
        "--dropout", "0.25", "--batchnorm", "--noise", "awgn"])
    assert network == NetworkSpec("cnn2", {"dropout": 0.25, "batchnorm": True})
    assert recipe == Recipe(optimizer="adadelta", lr=1.0, weight_decay=0.001, schedule="step",
                            epochs=14, batch_size=64, augment=False, label_smoothing=0.1,
                            precision="fp32", channels_last=False, train_on_val=False,
                            fresh_noise="awgn")
    assert chosen(train_cnn, ["--noise", "awgn", "--no-fresh-noise"])[1].fresh_noise is None
    assert chosen(train_cnn, ["--recipe", "reference"]) == (REFERENCE_NETWORK, REFERENCE)


# Every field of Recipe, a value for it that BEST (where the parser starts) does not have,
# and the text that asks for it.
NON_DEFAULT = {
    "optimizer": ("rmsprop", "rmsprop"),
    "lr": ("0.25", 0.25),
    "weight_decay": ("1e-3", 0.001),
    "momentum": ("0.95", 0.95),
    "nesterov": ("false", False),
    "betas": ("0.7,0.9", (0.7, 0.9)),
    "schedule": ("step", "step"),
    "step_gamma": ("0.5", 0.5),
    "epochs": ("7", 7),
    "batch_size": ("128", 128),
    "augment": ("false", False),
    "augment_params": ('{"degrees": 20, "scale": [0.8, 1.2]}',
                       {"degrees": 20, "translate": 0.1, "scale": (0.8, 1.2), "shear": 0.0}),
    "fresh_noise": ("motion-blur", "motion-blur"),
    "label_smoothing": ("0.2", 0.2),
    "ema_decay": ("0.999", 0.999),
    "precision": ("fp32", "fp32"),
    "channels_last": ("false", False),
    "patience": ("5", 5),
    "train_on_val": ("false", False),
}


def test_every_recipe_field_can_be_set_with_its_type(train_cnn):
    assert list(NON_DEFAULT) == [f.name for f in dataclasses.fields(Recipe)]
    for name, (text, expected) in NON_DEFAULT.items():
        assert getattr(BEST, name) != expected, name
        recipe = chosen(train_cnn, ["--set", f"{name}={text}"])[1]
        assert getattr(recipe, name) == expected, name
        assert type(getattr(recipe, name)) is type(expected), name


def test_optional_fields_take_none_and_later_settings_win(train_cnn):
    recipe = chosen(train_cnn, ["--set", "ema_decay=0.99", "--set", "ema_decay=none",
                                "--set", "lr=None", "--set", "patience=3"])[1]
    assert (recipe.ema_decay, recipe.lr, recipe.patience) == (None, None, 3)
    assert chosen(train_cnn, ["--epochs", "5", "--set", "epochs=6"])[1].epochs == 6
    assert chosen(train_cnn, ["--momentum", "0.5", "--nesterov"])[1].momentum == 0.5


def test_network_options_are_typed_from_the_builder(train_cnn):
    network = chosen(train_cnn, ["--option", "width=8", "--option", "members=2"])[0]
    assert network == NetworkSpec("best", {"width": 8, "members": 2, "tta_shift": 1})
    network = chosen(train_cnn, ["--arch", "cnn3", "--option", "channels=8,16,32",
                                 "--option", "batchnorm=true", "--option", "dropout=0.5"])[0]
    assert network == NetworkSpec("cnn3", {"channels": (8, 16, 32), "batchnorm": True,
                                       "dropout": 0.5})


@pytest.mark.parametrize("argv, sentence", [
    (["--set", "momentun=0.9"], "error: unknown recipe field 'momentun'; choose one of "
     "optimizer, lr, weight_decay, momentum, nesterov, betas, schedule, step_gamma, epochs, "
     "batch_size, augment, augment_params, fresh_noise, label_smoothing, ema_decay, "
     "precision, channels_last, patience, train_on_val."),
    (["--set", "epochs=ten"], "error: epochs='ten' is not valid: epochs takes a whole number."),
    (["--set", "augment=yes"], "error: augment='yes' is not valid: augment takes true or false."),
    (["--set", "optimizer=lion"], "error: optimizer='lion' is not valid: optimizer takes one "
     "of sgd, adam, adamw, rmsprop, adadelta."),
    (["--set", "epochs"], "error: recipe setting 'epochs' is not NAME=VALUE, e.g. epochs=5."),
    (["--set", "epochs=0"], "error: epochs and batch size must be at least 1, got 0 and 32."),
    (["--option", "depth=3"], "error: unknown best option 'depth'; the allowed ones are width, "
     "dropout, members, tta_shift."),
    (["--set", 'augment_params={"rotate": 5}'], "error: unknown augment_params key 'rotate'; "
     "choose from degrees, translate, scale, shear, elastic_alpha, elastic_sigma."),
])
def test_a_bad_field_option_or_value_is_one_sentence_and_exit_status_2(train_cnn, capsys, argv,
                                                                        sentence):
    with pytest.raises(SystemExit) as exit_info:
        train_cnn.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == sentence


def test_help_lists_every_field_with_the_chosen_recipes_value(train_cnn, capsys):
    with pytest.raises(SystemExit):
        train_cnn.main(["--help"])
    text = capsys.readouterr().out
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert "0.9" in rows["momentum"] and "SGD only" in rows["momentum"]
    assert rows["optimizer"].split()[:3] == ["optimizer", "text", "adamw"]
    assert rows["epochs"].split()[:3] == ["epochs", "integer", "30"]
    assert rows["width"].split() == ["width", "integer", "16"]
    with pytest.raises(SystemExit):
        train_cnn.main(["--recipe", "reference", "--help"])
    text = capsys.readouterr().out
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert rows["optimizer"].split()[:3] == ["optimizer", "text", "adadelta"]
    assert "network 'reference' takes no options." in text


def test_momentum_with_another_optimiser_warns_in_one_line(train_cnn, caplog):
    with caplog.at_level(logging.WARNING, logger="digitlab"):
        chosen(train_cnn, ["--set", "momentum=0.95"])
    assert [r.getMessage() for r in caplog.records] == [
        "momentum applies to SGD only; the adamw optimiser ignores it."]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="digitlab"):
        chosen(train_cnn, ["--set", "optimizer=sgd", "--set", "momentum=0.95"])
    assert caplog.records == []


def test_set_values_reach_the_training_and_metrics_json(train_cnn, project_root, tmp_path):
    train_cnn.main(["--set", "momentum=0.95", "--set", "ema_decay=0.999", "--set", "epochs=1",
                    "--set", "batch_size=500", "--option", "width=4", "--source", "embedded",
                    "--results-dir", str(tmp_path / "results"), "--output-dir",
                    str(tmp_path / "models"), "--no-progress", "--threads", "1"])
    config = json.loads((tmp_path / "results" / "metrics.json").read_text())["run"]["config"]
    assert (config["momentum"], config["ema_decay"], config["epochs"]) == (0.95, 0.999, 1)
    assert (config["optimizer"], config["lr"]) == ("adamw", 0.01)
    assert config["network"] == {"arch": "best",
                                 "options": {"width": 4, "members": 1, "tta_shift": 1}}
    assert (tmp_path / "models" / "mnist_cnn.pt").is_file()


def test_values_convert_by_their_type_hint():
    assert convert("16,32", tuple[int, int], "channels") == (16, 32)
    assert convert("[8, 16]", tuple[int, ...], "channels") == (8, 16)
    assert convert("none", int | None, "patience") is None
    assert convert("3", float, "x") == 3.0 and type(convert("3", float, "x")) is float
    with pytest.raises(UserError, match="^x='nan' is not valid: x takes a finite number[.]$"):
        convert("nan", float, "x")
    with pytest.raises(UserError, match="^p='none' is not valid: p takes a whole number[.]$"):
        convert("none", int, "p")

    def builder(width: int = 16, hidden=(256, 128), name: str = "a"):
        return None

    assert parse_options(builder, ["width=4", "hidden=8", "name=b"]) == {
        "width": 4, "hidden": (8,), "name": "b"}


def test_augment_params_keys_are_the_arguments_of_the_affine_transform():
    assert tuple(inspect.signature(RandomAffine).parameters) == AFFINE_KEYS
