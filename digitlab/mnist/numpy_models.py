"""From-scratch NumPy classifiers: softmax regression and a one-hidden-layer MLP.

Everything a framework would hide is written out so that each step of learning
can be read and checked:

* logits ``z = W x + b`` (rows are samples here, so ``Z = X @ W.T + b``);
* a numerically stable softmax (subtract the row maximum before ``exp``);
* the mean cross-entropy loss;
* the hand-derived gradient: for softmax followed by cross-entropy,
  ``dL/dz = p - onehot(y)``, and ``dL/dW`` is the sum over samples of the outer
  products ``dz_i x_i^T``;
* gradient descent with early stopping on the validation loss.

``tests/test_numpy_models.py`` checks these gradients against PyTorch autograd.
"""

from __future__ import annotations

import copy
import time

import numpy as np
from tqdm.auto import tqdm

from digitlab.engine import History

Params = dict[str, np.ndarray]


def pixels_to_features(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, 28, 28)`` -> float64 rows ``(N, 784)`` scaled to [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; shifting by the row maximum keeps ``exp`` from overflowing."""
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, computed without ever taking ``log(0)``."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(y), n_classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of integer labels ``y`` under logits ``z``."""
    return float(-log_softmax(z)[np.arange(len(y)), y].mean())


def softmax_regression_gradients(params: Params, x: np.ndarray,
                                 y: np.ndarray) -> tuple[float, Params]:
    """Loss and gradients of softmax regression, derived by hand."""
    w, b = params["W"], params["b"]
    z = x @ w.T + b
    # Softmax + cross-entropy: dL/dz_i = p_i - onehot(y_i); divide by N for the mean loss.
    dz = (softmax(z) - one_hot(y, len(b))) / len(y)
    # dz.T @ x is the sum over samples of the outer products dz_i x_i^T.
    return cross_entropy(z, y), {"W": dz.T @ x, "b": dz.sum(axis=0)}


def mlp_gradients(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Loss and gradients of the MLP x -> ReLU(W1 x + b1) -> W2 h + b2, by backprop."""
    pre = x @ params["W1"].T + params["b1"]
    h = np.maximum(pre, 0.0)
    z = h @ params["W2"].T + params["b2"]
    dz = (softmax(z) - one_hot(y, len(params["b2"]))) / len(y)
    dh = dz @ params["W2"]
    # ReLU passes the gradient only where its input was positive.
    dpre = dh * (pre > 0)
    grads = {"W2": dz.T @ h, "b2": dz.sum(axis=0), "W1": dpre.T @ x, "b1": dpre.sum(axis=0)}
    return cross_entropy(z, y), grads


class NumpyClassifier:
    """Shared behaviour: subclasses set ``params``, ``logits`` and ``gradients``."""

    params: Params
    gradients: staticmethod

    def logits(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        return self.gradients(self.params, x, y)


class SoftmaxRegression(NumpyClassifier):
    """Multinomial logistic regression: ``p(y | x) = softmax(W x + b)``."""

    gradients = staticmethod(softmax_regression_gradients)

    def __init__(self, n_features: int = 784, n_classes: int = 10, seed: int = 0,
                 scale: float = 0.01):
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.normal(0.0, scale, (n_classes, n_features)),
                       "b": np.zeros(n_classes)}

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.params["W"].T + self.params["b"]


class NumpyMLP(NumpyClassifier):
    """One hidden ReLU layer; He initialisation keeps the ReLU activations in range."""

    gradients = staticmethod(mlp_gradients)

    def __init__(self, n_features: int = 784, n_hidden: int = 64, n_classes: int = 10,
                 seed: int = 0):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": rng.normal(0.0, np.sqrt(2.0 / n_features), (n_hidden, n_features)),
            "b1": np.zeros(n_hidden),
            "W2": rng.normal(0.0, np.sqrt(1.0 / n_hidden), (n_classes, n_hidden)),
            "b2": np.zeros(n_classes),
        }

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = np.maximum(x @ self.params["W1"].T + self.params["b1"], 0.0)
        return h @ self.params["W2"].T + self.params["b2"]


def step(params: Params, grads: Params, lr: float) -> None:
    """One gradient-descent update, in place: ``theta <- theta - lr * grad``."""
    for name, grad in grads.items():
        params[name] -= lr * grad


def loss_and_accuracy(model: NumpyClassifier, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    z = model.logits(x)
    return cross_entropy(z, y), float((z.argmax(axis=1) == y).mean())


def fit(model: NumpyClassifier, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None, *, lr: float, epochs: int,
        batch_size: int | None = None, patience: int | None = None, seed: int = 0,
        progress: bool = True, desc: str = "numpy fit") -> History:
    """Gradient descent on ``model.params``; returns a :class:`~digitlab.engine.History`.

    ``batch_size=None`` is batch gradient descent (one step per epoch on the whole
    training set); otherwise seeded, shuffled mini-batches. With validation data the
    parameters of the epoch with the lowest validation loss are kept, and with
    ``patience`` training stops after that many epochs without a lower one; without
    validation data the last epoch's parameters are kept (the engine's rule).
    """
    x, y = train
    rng = np.random.default_rng(seed)
    history, best, waited = History(), (float("inf"), None), 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, unit="epoch", leave=False)
    for epoch in bar:
        start = time.perf_counter()
        order = rng.permutation(len(y)) if batch_size else np.arange(len(y))
        size = batch_size or len(y)
        for first in range(0, len(y), size):
            idx = order[first:first + size]
            _, grads = model.loss_and_gradients(x[idx], y[idx])
            step(model.params, grads, lr)
        history.epoch_seconds.append(time.perf_counter() - start)
        history.lr.append(lr)
        train_loss, train_acc = loss_and_accuracy(model, x, y)
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        if val is None:  # the engine's rule: without validation the last epoch is kept
            history.best_epoch = epoch
            continue
        val_loss, val_acc = loss_and_accuracy(model, *val)
        history.val_loss.append(val_loss)
        history.val_acc.append(val_acc)
        bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}")
        if val_loss < best[0]:
            best, waited, history.best_epoch = (val_loss, copy.deepcopy(model.params)), 0, epoch
        else:
            waited += 1
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    if best[1] is not None:
        model.params = best[1]
    return history
