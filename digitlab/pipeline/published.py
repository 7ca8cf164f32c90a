"""What the original projects published, quoted beside what digitlab measures.

The notebooks print these and the results table names them in its labels; none
of them is measured here. The learning journal's numbers are test accuracies on
the full MNIST: its best variants run (and the epochs it took), the SGD row of
each of its four variants (about 98.8, 99.1, 99.3 and 99.36 %, converged after
about 15, 10, 5 and 4 epochs) and its first 2- and 3-conv CNNs. The generator's
README said that 50 PCA components keep about 95 % of the variance (a rounded
figure, kept as text).
"""

from __future__ import annotations

PUBLISHED = {
    "variants_best": {"run": "dropout + batch-norm / SGD", "accuracy": 0.9936, "epochs": 4},
    # The journal's SGD row of each variant, keyed by this project's variant names.
    "variants_sgd": {
        "plain": {"accuracy": 0.988, "epochs": 15},
        "dropout": {"accuracy": 0.991, "epochs": 10},
        "batch-norm": {"accuracy": 0.993, "epochs": 5},
        "dropout + batch-norm": {"accuracy": 0.9936, "epochs": 4},
    },
    "cnn2": 0.9914,
    "cnn3": 0.9931,
    "generator_variance_50": "~95 %",
}
