"""The from-scratch NumPy models: hand gradients vs PyTorch autograd, stability, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.sources import load_mnist
from digitlab.mnist import numpy_models as nm


def _batch(n=16, d=12, k=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def _autograd(loss_of_params, params):
    """Gradients of ``loss_of_params`` at ``params`` (float64) by torch autograd."""
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for k, v in params.items()}
    loss = loss_of_params(tensors)
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in tensors.items()}


def test_softmax_regression_gradients_match_autograd():
    x, y = _batch()
    model = nm.SoftmaxRegression(n_features=x.shape[1], seed=1, scale=0.5)
    loss, grads = model.loss_and_gradients(x, y)
    xt, yt = torch.tensor(x), torch.tensor(y)
    ref_loss, ref = _autograd(
        lambda p: torch.nn.functional.cross_entropy(xt @ p["W"].T + p["b"], yt), model.params)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in ("W", "b"):
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-10, atol=1e-12)


def test_dw_matches_central_finite_differences():
    # An independent loss, written here with SciPy's logsumexp: mean over samples of
    # logsumexp(z_i) - z_i[y_i], with z = x W^T + b.
    from scipy.special import logsumexp

    x, y = _batch(n=5, d=4, k=3)
    model = nm.SoftmaxRegression(n_features=4, n_classes=3, scale=0.3)
    _, grads = model.loss_and_gradients(x, y)

    def loss(w):
        z = x @ w.T + model.params["b"]
        return np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y])

    w, eps = model.params["W"], 1e-6
    numeric = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = eps
        numeric[index] = (loss(w + step) - loss(w - step)) / (2 * eps)
    assert grads["W"].shape == (3, 4)
    np.testing.assert_allclose(grads["W"], numeric, rtol=1e-6, atol=1e-9)


def test_mlp_gradients_match_autograd():
    x, y = _batch(n=20, d=12)
    model = nm.NumpyMLP(n_features=12, n_hidden=7, seed=2)
    loss, grads = model.loss_and_gradients(x, y)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def torch_loss(p):
        h = torch.relu(xt @ p["W1"].T + p["b1"])
        return torch.nn.functional.cross_entropy(h @ p["W2"].T + p["b2"], yt)

    ref_loss, ref = _autograd(torch_loss, model.params)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-10, atol=1e-12)


def test_softmax_and_cross_entropy_are_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [-800.0, -800.0, -800.0], [1e5, 1e5 - 1.0, 0.0]])
    p = nm.softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(z), dim=1).numpy(), atol=1e-15)
    y = np.array([2, 0, 1])  # the first row's true class has probability e^-2000
    loss = nm.cross_entropy(z, y)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y)).item()
    assert np.isfinite(loss) and loss == pytest.approx(ref, rel=1e-12)


@pytest.fixture(scope="module")
def small_mnist():
    splits = load_mnist("embedded")
    x = nm.pixels_to_features(splits.train_images[:600])
    xv = nm.pixels_to_features(splits.val_images[:300])
    return (x, splits.train_labels[:600]), (xv, splits.val_labels[:300])


@pytest.mark.parametrize("make_model, kwargs", [
    (nm.SoftmaxRegression, {"lr": 1.0, "epochs": 40}),
    (lambda: nm.NumpyMLP(n_hidden=32), {"lr": 0.1, "epochs": 8, "batch_size": 32}),
], ids=["softmax", "mlp"])
def test_fit_lowers_the_loss_and_beats_chance(small_mnist, make_model, kwargs):
    train, val = small_mnist
    model = make_model()
    history = nm.fit(model, train, val, progress=False, **kwargs)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert max(history.val_acc) > 0.75  # chance is 0.10
    assert (model.predict(val[0]) == val[1]).mean() == pytest.approx(
        history.val_acc[history.best_epoch - 1])


def test_early_stopping_stops_and_restores_the_best_parameters(small_mnist):
    (x, y), _ = small_mnist
    # 40 training rows and a large learning rate: the model overfits quickly, so
    # the validation loss turns upwards and patience runs out.
    val = (x[300:], y[300:])
    model = nm.SoftmaxRegression()
    history = nm.fit(model, (x[:40], y[:40]), val, lr=5.0, epochs=500, patience=5,
                     progress=False)
    assert history.stopped_early
    assert len(history.val_loss) == history.best_epoch + 5 < 500
    restored_loss, _ = nm.loss_and_accuracy(model, *val)
    assert restored_loss == pytest.approx(min(history.val_loss), rel=1e-12)
