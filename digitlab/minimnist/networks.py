"""The Mini MNIST networks: the 72-20-10-10 MLP and a small CNN on 1 x 9 x 8 images.

Both return logits; :func:`digitlab.engine.predict_proba` turns them into the
softmax probabilities that are reported. Inputs are scaled with
:func:`digitlab.minimnist.dataset.scale`. Both train with :data:`RECIPE`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.networks import register_family
from digitlab.minimnist.dataset import COLS, N_PIXELS, ROWS

MLP_SIZES = (N_PIXELS, 20, 10, 10)


class MiniMLP(nn.Sequential):
    """72 -> 20 -> 10 -> 10: two ReLU hidden layers, logits out (softmax is applied when
    reporting probabilities, so training can use the stable cross-entropy on logits)."""

    def __init__(self, sizes: tuple[int, ...] = MLP_SIZES):
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        linear = [m for m in self if isinstance(m, nn.Linear)]
        return (linear[0].in_features, *(m.out_features for m in linear))


class MiniCNN(nn.Sequential):
    """Two 3x3 convolutions (padding keeps 9x8), one 2x2 max-pool, a small dense head."""

    def __init__(self, channels: int = 16, hidden: int = 64, dropout: float = 0.2):
        super().__init__(
            nn.Unflatten(1, (1, ROWS, COLS)),
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 9 x 8 -> 4 x 4
            nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(2 * channels * (ROWS // 2) * (COLS // 2), hidden), nn.ReLU(),
            nn.Linear(hidden, 10),
        )


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"mini-mlp": MiniMLP,
                                                      "mini-cnn": MiniCNN}
FAMILY = "Mini MNIST"
register_family(FAMILY, ARCHITECTURES)
MLP = NetworkSpec("mini-mlp")
CNN = NetworkSpec("mini-cnn")
# SGD with momentum and a little weight decay, early stopping on the validation loss: the
# notebook's settings, shared by the MLP and the CNN.
RECIPE = Recipe(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-3,
                epochs=300, batch_size=32, patience=40)
