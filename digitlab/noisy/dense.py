"""Dense (fully connected) networks on flattened 28x28 digits (784 inputs).

Every network returns logits; the softmax output layer is applied by the
loss (``cross_entropy``) during training and by
:func:`digitlab.engine.predict.predict_proba` at prediction time, which is
numerically safer than a softmax layer followed by a log.

``build_dense(name, **kwargs)`` builds one by name (see :data:`ARCHITECTURES`):

- ``dnn``: hidden layers of linear -> ReLU -> dropout;
- ``dnn-bn``: the improved variant, linear -> batch-norm -> ReLU -> dropout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from digitlab.engine.networks import build, register_family

N_INPUTS = 28 * 28
N_CLASSES = 10


def dense_network(hidden: Sequence[int] = (256, 128), dropout: float = 0.2,
                  batchnorm: bool = False, n_inputs: int = N_INPUTS,
                  n_classes: int = N_CLASSES) -> nn.Sequential:
    """784 -> hidden layers (ReLU, dropout, optional batch-norm) -> 10 logits.

    Accepts ``(N, 784)`` or ``(N, 1, 28, 28)`` inputs (flattened first).
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = n_inputs
    for units in hidden:
        layers.append(nn.Linear(width, units, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def dnn(hidden: Sequence[int] = (256, 128), dropout: float = 0.2) -> nn.Sequential:
    """The baseline DNN: ReLU hidden layers with dropout."""
    return dense_network(tuple(hidden), dropout, batchnorm=False)


def dnn_bn(hidden: Sequence[int] = (512, 256), dropout: float = 0.3) -> nn.Sequential:
    """The improved DNN: batch-norm before each ReLU, wider, more dropout."""
    return dense_network(tuple(hidden), dropout, batchnorm=True)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"dnn": dnn, "dnn-bn": dnn_bn}
FAMILY = "dense"
register_family(FAMILY, ARCHITECTURES)


def build_dense(arch: str, **kwargs) -> nn.Module:
    """Build the dense network called ``arch`` (a key of :data:`ARCHITECTURES`)."""
    return build(arch, FAMILY, **kwargs)
