"""Named networks and recipes of the MNIST CNNs.

:data:`BEST` is how the project's best CNN (:data:`BEST_NETWORK`) is trained on the
embedded digits, :data:`FULL` (with :data:`FULL_NETWORK`) on the full MNIST;
:data:`REFERENCE` is the recipe of the classic PyTorch MNIST example
(pytorch/examples ``mnist/main.py``: Adadelta lr 1.0, StepLR gamma 0.7, batch 64,
14 epochs) for its network, :data:`REFERENCE_NETWORK`.
"""

from __future__ import annotations

import digitlab.mnist.networks  # noqa: F401  (registers the CNN architectures named here)
from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.recipe import DEFAULT_AFFINE
from digitlab.pipeline.scale import is_full_scale

BEST_NETWORK = NetworkSpec("best", {"width": 16, "members": 1, "tta_shift": 1})
# Chosen by benchmarks/mnist_cnn_recipe.py (make mnist-recipe): 4-fold cross-validation on
# the 4,000 embedded train + validation digits, test split untouched; among the candidates
# within the training budget, the most accurate out of fold (near ties broken by the
# out-of-fold log-loss) was one width-16 network trained 30 epochs in batches of 32 (more
# optimiser steps per epoch), predicting from the average over its input shifted by up to
# one pixel (results/mnist/recipe_selection.json). The final model trains on
# train + validation. bf16 autocast and the channels-last layout speed up training on CPUs
# (benchmarks/mnist_cnn.py measures each). With --noise the same recipe draws fresh noise
# for every batch (make noisy-recipe compares it with training on the fixed noisy digits).
BEST = Recipe(optimizer="adamw", lr=0.01, weight_decay=5e-4, schedule="onecycle", epochs=30,
              batch_size=32, augment=True, precision="bf16", channels_last=True,
              train_on_val=True)

REFERENCE_NETWORK = NetworkSpec("reference")
# The example trains on every digit it has; here it gets the same train + validation digits.
REFERENCE = Recipe(optimizer="adadelta", lr=1.0, schedule="step", step_gamma=0.7, epochs=14,
                   batch_size=64, train_on_val=True)

# The candidates for the full MNIST, each sized for at most 10 minutes of training on 60,000
# digits on 2 CPU cores. On the machine of these rounds batch size barely changed the
# images per second for this network and torch.compile made its step slower, so the budget is
# about 30 epochs of one width-16 network, and the later rounds vary only what costs no time.
# Both depend on the CPU: the selection measures each candidate's seconds where it runs.
# In the third round, less regularisation (no dropout, a tenth of the weight decay), a milder
# affine draw (6 degrees, 7 % shift, 6 % zoom) and label smoothing 0.1 each had 6-7 validation
# errors more than BEST's 14; so this fourth round goes the other way: BEST as it is; BEST with
# dropout 0.2; BEST with a stronger affine draw (15 degrees, 12 % shift, 15 % zoom). Earlier
# rounds (wider networks and batches of 128; committees of two and Simard et al.'s elastic
# distortion, ELASTIC_AUGMENT) lost to BEST on validation too; git history of this file has the
# lists of rounds one, two and four (round three's is the one described above).
ELASTIC_AUGMENT = {**DEFAULT_AFFINE, "elastic_alpha": 34.0, "elastic_sigma": 4.0}
STRONG_AFFINE = {"degrees": 15.0, "translate": 0.12, "scale": (0.85, 1.15), "shear": 0.0}
CANDIDATES_FULL = {
    "best as it is (width 16, 30 epochs, batch 32)": (BEST_NETWORK, BEST),
    "best, dropout 0.2": (BEST_NETWORK.replace(dropout=0.2), BEST),
    "best, stronger affine draw": (BEST_NETWORK, BEST.replace(augment_params=STRONG_AFFINE)),
}

# The full-MNIST recipe: the candidate with the highest accuracy on the 5,000 validation digits
# after training on the other 55,000 (benchmarks/mnist_full_recipe.py, make mnist-full-recipe,
# results/mnist/recipe_selection_full.json); the test digits played no part. BEST unchanged
# had the fewest validation errors in all four rounds (14 of 5,000 in each of the last
# three; every other candidate of rounds three and four had 20-26), though a lead of a few
# digits is within what one split's noise allows (the file has each candidate's errors and
# seconds). So the full-MNIST recipe is BEST; the final model trains on all 60,000.
FULL_CHOICE = "best as it is (width 16, 30 epochs, batch 32)"
FULL_NETWORK, FULL = CANDIDATES_FULL[FULL_CHOICE][0], CANDIDATES_FULL[FULL_CHOICE][1].replace(
    train_on_val=True)

# The speedrun's tiers (benchmarks/speedrun.py, make speedrun; docs/speedrun.md): the fastest
# recipe whose mean test accuracy over seeds reaches 99.0 %, 99.5 % or 99.7 % on the full
# MNIST. Each tier's candidates are scored by benchmarks/speedrun.py --select (make speedrun
# SELECT=1): trained on 55,000 digits, scored on the 5,000 validation digits, the test digits
# never read (results/speedrun/selection_<name>.json). SPEED_NETWORK
# is the anchor's network (digitlab.mnist.speedrun.ANCHOR); the 99.0 % candidates also try a
# cheaper one and the precision, layout and batch size; the 99.5 % ones several epochs of the
# anchor's network with a light affine draw on each batch; the 99.7 % ones the best CNN at a
# budget within 300 s.
SPEED_NETWORK = NetworkSpec("speed", {"channels": (24, 32), "hidden": 256})
SMALL_SPEED_NETWORK = NetworkSpec("speed", {"channels": (16, 32), "hidden": 256})
LIGHT_AFFINE = {"degrees": 5.0, "translate": 0.05, "scale": (0.95, 1.05), "shear": 0.0}
ONE_EPOCH = Recipe(optimizer="adam", lr=0.01, schedule="onecycle", epochs=1, batch_size=256,
                   precision="bf16", channels_last=True, train_on_val=True)
_LIGHT = ONE_EPOCH.replace(augment=True, augment_params=LIGHT_AFFINE)
SPEED_CANDIDATES = {
    "fast99": {
        "anchor network, batch 256, bf16, channels-last": (SPEED_NETWORK, ONE_EPOCH),
        "16/32 channels, batch 256, bf16, channels-last": (SMALL_SPEED_NETWORK, ONE_EPOCH),
        "16/32 channels, batch 512, bf16, channels-last":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(batch_size=512)),
        "16/32 channels, batch 128, bf16, channels-last":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(batch_size=128)),
        "16/32 channels, batch 256, float32":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(precision="fp32", channels_last=False)),
        # Round two, added after the first fast99 missed 99.0 % on the test digits by 5
        # errors per 10,000 (so a test score prompted it; the choice is still made on
        # validation): Adam's betas held at the anchor's (0.7, 0.9) instead of cycled.
        "16/32 channels, batch 128, bf16, channels-last, betas 0.7/0.9":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(batch_size=128, betas=(0.7, 0.9))),
        "16/32 channels, batch 256, bf16, channels-last, betas 0.7/0.9":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(betas=(0.7, 0.9))),
        "16/32 channels, batch 256, lr 0.02, bf16, channels-last, betas 0.7/0.9":
            (SMALL_SPEED_NETWORK, ONE_EPOCH.replace(lr=0.02, betas=(0.7, 0.9))),
    },
    "fast995": {
        "anchor network, 3 epochs, light affine": (SPEED_NETWORK, _LIGHT.replace(epochs=3)),
        "anchor network, 4 epochs, light affine": (SPEED_NETWORK, _LIGHT.replace(epochs=4)),
        "anchor network, 6 epochs, light affine": (SPEED_NETWORK, _LIGHT.replace(epochs=6)),
        "anchor network, 4 epochs, no augmentation": (SPEED_NETWORK, ONE_EPOCH.replace(epochs=4)),
    },
    "fast997": {
        "best, 8 epochs, batch 32": (BEST_NETWORK, BEST.replace(epochs=8)),
        "best, 10 epochs, batch 32": (BEST_NETWORK, BEST.replace(epochs=10)),
        "best width 12, 14 epochs, batch 32":
            (BEST_NETWORK.replace(width=12), BEST.replace(epochs=14)),
    },
}
# Each tier's recipe, fixed before its test digits were scored: the choice of make speedrun
# SELECT=1 on the full MNIST (runs/full-mnist/results/speedrun/selection_<name>.json). In every
# tier no candidate cleared the tier plus the margin on the validation digits, so each took its
# most accurate candidate; benchmarks/speedrun.py says when a selection file names another.
SPEED_CHOICES = {"fast99": "16/32 channels, batch 256, lr 0.02, bf16, channels-last, betas 0.7/0.9",
                 "fast995": "anchor network, 6 epochs, light affine",
                 "fast997": "best, 8 epochs, batch 32"}
SPEED_RECIPES = {name: SPEED_CANDIDATES[name][choice] for name, choice in SPEED_CHOICES.items()}

# Every named recipe of the track with the network it was chosen for (train_cnn.py --recipe).
RECIPES = {"best": (BEST_NETWORK, BEST), "full": (FULL_NETWORK, FULL),
           "reference": (REFERENCE_NETWORK, REFERENCE), **SPEED_RECIPES}


def recipe_for_size(n_train: int) -> str:
    """The named recipe a training set of ``n_train`` digits (train + validation) gets by
    default: ``full`` at full scale (digitlab.pipeline.scale), else ``best``."""
    return "full" if is_full_scale(n_train) else "best"
