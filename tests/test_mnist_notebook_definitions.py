"""Models and gradients that a notebook defines, read from its py:percent twin: each must
compute what an independent reference computes, and the package's copy, where scripts need
one, must compute the same.

The notebooks do not check this themselves, so that a student who edits a layer or a
gradient gets the edited result; these tests read only the definitions (``def`` and
``class`` statements) of the unedited cells, and check each against a reference written
out here (torch's functional ops, PyTorch autograd), so that both copies being wrong the
same way still fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from notebook_cells import notebook_definitions
from torch import nn

from digitlab.mnist.networks import build_cnn

# mnist_02_first_cnn: CNN2 and CNN3, which the package builds as cnn2 and cnn3.

def by_hand(x: torch.Tensor, convs: list[nn.Conv2d], fc: nn.Linear) -> torch.Tensor:
    """The journal's block, conv 3x3 (padding 1) -> ReLU -> 2x2 max-pool, then flatten and
    one linear layer, written with torch's functional ops."""
    for conv in convs:
        x = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), 2)
    return F.linear(x.flatten(1), fc.weight, fc.bias)


@pytest.mark.parametrize(("arch", "cls", "channels"),
                         [("cnn2", "CNN2", (4, 8)), ("cnn3", "CNN3", (4, 8, 16))])
def test_the_first_cnn_notebook_and_the_package_build_the_same_networks(arch, cls, channels):
    ours = notebook_definitions("mnist_02_first_cnn")[cls](channels).eval()
    package = build_cnn(arch, channels=list(channels)).eval()
    assert [m.out_channels for m in ours.modules() if isinstance(m, nn.Conv2d)] == list(channels)
    assert [tuple(t.shape) for t in ours.state_dict().values()] == \
        [tuple(t.shape) for t in package.state_dict().values()]
    # Same weights, in order: the same logits only if the ReLUs and pools sit in the same
    # places and the flatten orders the features alike.
    package.load_state_dict(dict(zip(package.state_dict(), ours.state_dict().values(),
                                     strict=True)))
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    convs = [m for m in ours.modules() if isinstance(m, nn.Conv2d)]
    [fc] = [m for m in ours.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        expected = by_hand(x, convs, fc)
        torch.testing.assert_close(ours(x), expected)
        torch.testing.assert_close(package(x), expected)


# mnist_03_numpy_softmax: the hand-written gradients, defined only in the notebook.

def batch(n_hidden: int | None = None):
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 784)), rng.integers(0, 10, 8)
    if n_hidden is None:
        return {"W": rng.normal(0, 0.1, (10, 784)), "b": rng.normal(0, 0.1, 10)}, x, y
    return {"W1": rng.normal(0, 0.1, (n_hidden, 784)), "b1": rng.normal(0, 0.1, n_hidden),
            "W2": rng.normal(0, 0.1, (10, n_hidden)), "b2": rng.normal(0, 0.1, 10)}, x, y


def autograd(forward, params, x, y):
    """The mean cross-entropy and its gradients by PyTorch autograd."""
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    loss = F.cross_entropy(forward(leaves, torch.tensor(x)), torch.tensor(y))
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in leaves.items()}


def linear_torch(p, x):
    return x @ p["W"].T + p["b"]


def mlp_torch(p, x):
    return torch.relu(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]


@pytest.mark.parametrize(("ours", "forward", "n_hidden"), [
    ("softmax_regression_gradients", linear_torch, None), ("mlp_gradients", mlp_torch, 16)])
def test_the_numpy_notebook_gradients_match_autograd(ours, forward, n_hidden):
    params, x, y = batch(n_hidden)
    expected_loss, expected = autograd(forward, params, x, y)
    gradients = notebook_definitions("mnist_03_numpy_softmax")[ours]
    loss, grads = gradients({k: v.copy() for k, v in params.items()}, x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert set(grads) == set(expected)
    for k in expected:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-8, atol=1e-12)


def test_the_numpy_notebook_softmax_is_stable_where_a_naive_one_overflows():
    softmax = notebook_definitions("mnist_03_numpy_softmax")["softmax"]
    with np.errstate(over="raise"):
        p = softmax(np.array([[1000.0, 1000.0 + np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])
