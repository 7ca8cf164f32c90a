"""Full scale: a step sizes itself by its number of training digits, and the best CNN's
named recipe follows the size of its training set."""

from __future__ import annotations

from digitlab.mnist.recipes import BEST, FULL, RECIPES, recipe_for_size
from digitlab.pipeline.scale import is_full_scale, sized


def test_a_full_size_set_starts_at_50000_training_digits():
    # The embedded subset has 4,000 train + validation digits, the full MNIST 60,000.
    assert not is_full_scale(4_000) and not is_full_scale(49_999)
    assert is_full_scale(50_000) and is_full_scale(60_000)


def test_an_explicit_value_wins_over_either_size():
    assert sized(None, 10, 4, 4_000) == 10
    assert sized(None, 10, 4, 60_000) == 4
    assert sized(7, 10, 4, 60_000) == 7 and sized(7, 10, 4, 4_000) == 7
    # 0 is a value (e.g. threads=0: one per core), not "not given".
    assert sized(0, 1, 2, 4_000) == 0


def test_the_full_mnist_trains_the_full_recipe_and_the_embedded_digits_the_best_one():
    assert recipe_for_size(4_000) == "best" and recipe_for_size(60_000) == "full"
    assert RECIPES["best"][1] == BEST and RECIPES["full"][1] == FULL
    # The final full-MNIST model trains on every training digit, nothing held out.
    assert FULL.train_on_val and BEST.train_on_val


def test_the_full_recipe_is_the_validated_candidate_written_out():
    from digitlab.mnist.recipes import FULL_NETWORK

    # Written out, so that a change to the chosen candidate is not silently "the full recipe":
    # the validation chose BEST unchanged (make mnist-full-recipe, recipe_selection_full.json).
    assert FULL_NETWORK.options == {"width": 16, "members": 1, "tta_shift": 1}
    assert (FULL.optimizer, FULL.lr, FULL.epochs, FULL.batch_size) == ("adamw", 0.01, 30, 32)
