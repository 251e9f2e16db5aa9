"""The grader's own forward pass: test accuracy computed in the trusted parent from returned weights.

Only inference lives here (linear + ReLU, argmax): the forward pass is not what the assignment
grades, and no backward code of the solution may live in the grader. The test labels never
leave this process.
"""

from __future__ import annotations

import numpy as np


def _layers(params: dict[str, np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """Every layer's pre-activation ``(N, width)``, the last being the logits."""
    layers = 0
    while f"W{layers + 1}" in params:
        layers += 1
    if layers == 0:
        raise ValueError("params holds no W1")
    a = np.asarray(X).astype(np.float64, copy=False)
    outputs = []
    for k in range(1, layers + 1):
        W, b = np.asarray(params[f"W{k}"], dtype=np.float64), np.asarray(params.get(f"b{k}"), dtype=np.float64)
        if W.ndim != 2 or W.shape[0] != a.shape[1] or b.shape != (W.shape[1],):
            raise ValueError(f"W{k} {W.shape} and b{k} {b.shape} do not fit an input of width {a.shape[1]}")
        outputs.append(a @ W + b)
        a = np.maximum(outputs[-1], 0.0)
    return outputs


def logits(params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Logits ``(N, C)`` of the MLP whose ``params`` hold ``W1, b1, ..., WL, bL`` for inputs ``X (N, D)``.

    Raises ValueError when the weights do not chain (missing keys, wrong shapes).
    """
    return _layers(params, X)[-1]


def pre_activations(params: dict[str, np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """The hidden layers' pre-activations (inputs of each ReLU), for the gradient checks' kink guard."""
    return _layers(params, X)[:-1]


def accuracy(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, chunk: int = 2000) -> float:
    """Fraction of rows of ``X (N, D)`` whose arg-max logit is the label ``y (N,)``; NaN logits count as wrong."""
    correct = 0
    for start in range(0, len(X), chunk):
        out = logits(params, X[start:start + chunk])
        finite = np.isfinite(out).all(axis=1)
        correct += int(np.sum(finite & (out.argmax(axis=1) == y[start:start + chunk])))
    return correct / len(X)
