"""The Mini MNIST networks: the 72-20-10-10 MLP and a small CNN on 1 x 9 x 8 images.

Both return logits; :func:`digitlab.engine.fit.predict_proba` turns them into the
softmax probabilities that are reported. Inputs are scaled with
:func:`digitlab.minimnist.dataset.scale`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from digitlab.engine.fit import History, fit
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


@dataclass(frozen=True)
class TrainConfig:
    """SGD settings shared by the MLP and the CNN (the notebook's defaults)."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    epochs: int = 300
    batch_size: int = 32
    patience: int = 40


def train_model(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                val: tuple[torch.Tensor, torch.Tensor], config: TrainConfig | None = None,
                seed: int = 0, progress: bool = False, desc: str = "train") -> History:
    """Train with SGD (momentum) through the project's :func:`fit`; best weights kept."""
    config = config or TrainConfig()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    return fit(model, train, val, optimizer, epochs=config.epochs, batch_size=config.batch_size,
               patience=config.patience, seed=seed, progress=progress, desc=desc)


def build(name: str, seed: int = 0) -> nn.Module:
    """``"mlp"`` or ``"cnn"``, initialised from ``seed``."""
    torch.manual_seed(seed)
    if name == "mlp":
        return MiniMLP()
    if name == "cnn":
        return MiniCNN()
    raise ValueError(f"unknown Mini MNIST model {name!r}; choose mlp or cnn")


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
