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
    raise NotImplementedError("draw a (fan_in, fan_out) array from rng with mean 0 and variance 2 / fan_in")


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine layer: ``x (N, D) @ W (D, M) + b (M,)`` -> ``(N, M)``."""
    raise NotImplementedError("return the affine map of x, shape (N, M)")


def linear_backward(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of an affine layer.

    ``dout`` is dL/d(output), ``(N, M)``; ``x`` is the layer input ``(N, D)``; ``W`` is ``(D, M)``.
    Returns ``(dx, dW, db)`` with shapes ``(N, D)``, ``(D, M)``, ``(M,)``.
    """
    raise NotImplementedError("apply the chain rule to x @ W + b; return dx (N, D), dW (D, M), db (M,)")


def relu_forward(z: np.ndarray) -> np.ndarray:
    """Elementwise ``max(z, 0)``, same shape as ``z``."""
    raise NotImplementedError("return max(z, 0) elementwise without modifying z")


def relu_backward(dout: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gradient through ReLU: ``dout`` where the pre-activation ``z > 0``, else 0 (same shape)."""
    raise NotImplementedError("pass dout through where z is positive, zero elsewhere")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits (N, C)`` -> probabilities ``(N, C)``.

    Must be accurate and finite for any finite logits, e.g. a row ``[1000, 0]``.
    """
    raise NotImplementedError("subtract each row's maximum before exponentiating, then normalise each row")


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``logits (N, C)`` against integer labels ``y (N,)``.

    Returns ``(loss, dlogits)``: ``loss`` is the batch mean of ``-log softmax(logits)[i, y_i]``;
    ``dlogits (N, C)`` is ``(softmax(logits) - onehot(y)) / N``. Finite for any finite logits.
    """
    raise NotImplementedError("use log-sum-exp for log-probabilities; return the mean loss and its gradient")


def sgd_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
    """One step of gradient descent: every ``params[k]`` becomes ``params[k] - lr * grads[k]``."""
    raise NotImplementedError("update every parameter array so the model sees the new values")


class MLP:
    """Fully connected network: hidden layers are linear + ReLU, the output layer is linear.

    ``params`` holds ``W1, b1, ..., WL, bL`` (L = len(sizes) - 1) with ``Wk`` of shape
    ``(sizes[k-1], sizes[k])`` and ``bk`` of shape ``(sizes[k],)``.
    """

    def __init__(self, sizes: Sequence[int] = (784, 128, 64, 10), seed: int = 0) -> None:
        """Draw every ``Wk`` with ``he_init`` from ``np.random.default_rng(seed)`` in layer order; zero biases."""
        self.sizes = tuple(sizes)
        self.params: dict[str, np.ndarray] = {}
        raise NotImplementedError("create W1, b1, ..., WL, bL in layer order from one generator")

    @property
    def num_layers(self) -> int:
        """Number of linear layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Logits ``(N, sizes[-1])`` for inputs ``X (N, sizes[0])``; caches what ``backward`` needs."""
        raise NotImplementedError("linear+ReLU per hidden layer, linear only at the output; cache inputs and pre-activations")

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter (same keys and shapes as ``params``).

        ``dlogits`` is dL/d(logits), ``(N, sizes[-1])``, for the most recent ``forward``.
        """
        raise NotImplementedError("walk the layers from last to first, applying relu_backward and linear_backward")

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy loss on ``(X (N, D), y (N,))`` and the gradient dict, via ``cross_entropy``."""
        raise NotImplementedError("forward, cross_entropy, backward")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Integer class labels ``(N,)`` for inputs ``X (N, D)``."""
        raise NotImplementedError("the index of the largest logit of each row")


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
    raise NotImplementedError("shuffle indices each epoch, step through the batches, record each epoch's mean loss")
