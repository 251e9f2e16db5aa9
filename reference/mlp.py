"""A multilayer perceptron for MNIST in plain NumPy.

Fill in every function and method below. The interface is fixed by the assignment
contract: batches are rows (``x`` is ``(N, D)``), weights are ``(fan_in, fan_out)``,
no function modifies its inputs, and float64 inputs give float64 results.

Shapes used throughout:
    N  number of samples in a batch
    D  input features of a layer (fan_in)
    M  output features of a layer (fan_out)
    C  number of classes
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def he_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """He initialisation for a layer followed by ReLU.

    Returns a ``(fan_in, fan_out)`` array with zero mean and variance ``2 / fan_in``,
    drawn only from ``rng``.
    """
    # BEGIN SOLUTION: draw a (fan_in, fan_out) array from rng with mean 0 and variance 2 / fan_in
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    # END SOLUTION


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine layer: ``x (N, D) @ W (D, M) + b (M,)`` -> ``(N, M)``."""
    # BEGIN SOLUTION: return the affine map of x, shape (N, M)
    return x @ W + b
    # END SOLUTION


def linear_backward(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of an affine layer.

    ``dout`` is dL/d(output), ``(N, M)``; ``x`` is the layer input ``(N, D)``; ``W`` is ``(D, M)``.
    Returns ``(dx, dW, db)`` with shapes ``(N, D)``, ``(D, M)``, ``(M,)``.
    """
    # BEGIN SOLUTION: apply the chain rule to x @ W + b; return dx (N, D), dW (D, M), db (M,)
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db
    # END SOLUTION


def relu_forward(z: np.ndarray) -> np.ndarray:
    """Elementwise ``max(z, 0)``, same shape as ``z``."""
    # BEGIN SOLUTION: return max(z, 0) elementwise without modifying z
    return np.maximum(z, 0)
    # END SOLUTION


def relu_backward(dout: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gradient through ReLU: ``dout`` where the pre-activation ``z > 0``, else 0 (same shape)."""
    # BEGIN SOLUTION: pass dout through where z is positive, zero elsewhere
    return dout * (z > 0)
    # END SOLUTION


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits (N, C)`` -> probabilities ``(N, C)``.

    Must be accurate and finite for any finite logits, e.g. a row ``[1000, 0]``.
    """
    # BEGIN SOLUTION: subtract each row's maximum before exponentiating, then normalise each row
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)  # normalised in place: no second (N, C) array
    return probs
    # END SOLUTION


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``logits (N, C)`` against integer labels ``y (N,)``.

    Returns ``(loss, dlogits)``: ``loss`` is the batch mean of ``-log softmax(logits)[i, y_i]``;
    ``dlogits (N, C)`` is ``(softmax(logits) - onehot(y)) / N``. Finite for any finite logits.
    """
    # BEGIN SOLUTION: use log-sum-exp for log-probabilities; return the mean loss and its gradient
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1.0
    dlogits /= n
    return float(loss), dlogits
    # END SOLUTION


def sgd_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
    """One step of gradient descent: every ``params[k]`` becomes ``params[k] - lr * grads[k]``."""
    # BEGIN SOLUTION: update every parameter array so the model sees the new values
    for key, grad in grads.items():
        params[key] -= lr * grad
    # END SOLUTION


class MLP:
    """Fully connected network: hidden layers are linear + ReLU, the output layer is linear.

    ``params`` holds ``W1, b1, ..., WL, bL`` (L = len(sizes) - 1) with ``Wk`` of shape
    ``(sizes[k-1], sizes[k])`` and ``bk`` of shape ``(sizes[k],)``.
    """

    def __init__(self, sizes: Sequence[int] = (784, 128, 64, 10), seed: int = 0) -> None:
        """Draw every ``Wk`` with ``he_init`` from ``np.random.default_rng(seed)`` in layer order; zero biases."""
        self.sizes = tuple(sizes)
        self.params: dict[str, np.ndarray] = {}
        # BEGIN SOLUTION: create W1, b1, ..., WL, bL in layer order from one generator
        rng = np.random.default_rng(seed)
        for k in range(1, len(self.sizes)):
            self.params[f"W{k}"] = he_init(self.sizes[k - 1], self.sizes[k], rng)
            self.params[f"b{k}"] = np.zeros(self.sizes[k])
        self._cache: list[tuple[np.ndarray, np.ndarray]] = []
        # END SOLUTION

    @property
    def num_layers(self) -> int:
        """Number of linear layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Logits ``(N, sizes[-1])`` for inputs ``X (N, sizes[0])``; caches what ``backward`` needs."""
        # BEGIN SOLUTION: linear+ReLU per hidden layer, linear only at the output; cache inputs and pre-activations
        self._cache = []
        a = X
        for k in range(1, self.num_layers + 1):
            z = linear_forward(a, self.params[f"W{k}"], self.params[f"b{k}"])
            self._cache.append((a, z))
            a = relu_forward(z) if k < self.num_layers else z
        return a
        # END SOLUTION

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter (same keys and shapes as ``params``).

        ``dlogits`` is dL/d(logits), ``(N, sizes[-1])``, for the most recent ``forward``.
        """
        # BEGIN SOLUTION: walk the layers from last to first, applying relu_backward and linear_backward
        grads: dict[str, np.ndarray] = {}
        dout = dlogits
        for k in range(self.num_layers, 0, -1):
            a, z = self._cache[k - 1]
            if k < self.num_layers:
                dout = relu_backward(dout, z)
            if k > 1:
                dout, grads[f"W{k}"], grads[f"b{k}"] = linear_backward(dout, a, self.params[f"W{k}"])
            else:  # layer 1: linear_backward's dW and db, without its dx (the gradient for X, never used)
                grads["W1"], grads["b1"] = a.T @ dout, dout.sum(axis=0)
        return grads
        # END SOLUTION

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy loss on ``(X (N, D), y (N,))`` and the gradient dict, via ``cross_entropy``."""
        # BEGIN SOLUTION: forward, cross_entropy, backward
        loss, dlogits = cross_entropy(self.forward(X), y)
        return loss, self.backward(dlogits)
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Integer class labels ``(N,)`` for inputs ``X (N, D)``."""
        # BEGIN SOLUTION: the index of the largest logit of each row
        return self.forward(X).argmax(axis=1)
        # END SOLUTION


def train(
    model: MLP,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 0.1,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Mini-batch SGD on ``X (N, 784)`` float32 in [0, 1] and labels ``y (N,)`` int64.

    Each epoch draws a fresh shuffle from ``np.random.default_rng(seed)`` (one generator for
    the whole run), steps through mini-batches of ``batch_size`` with ``loss_and_grads`` and
    ``sgd_step``, then calls ``on_epoch(epoch, mean_loss)`` if given, ``epoch`` counting from 1.
    Returns the mean training loss (per sample) of each epoch.
    """
    # BEGIN SOLUTION: shuffle indices each epoch, step through the batches, record each epoch's mean loss
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    history: list[float] = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            loss, grads = model.loss_and_grads(X[batch], y[batch])
            sgd_step(model.params, grads, lr)
            total += loss * len(batch)
        history.append(total / n)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
    # END SOLUTION
