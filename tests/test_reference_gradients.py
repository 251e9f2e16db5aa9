"""The reference's gradients against central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from reference import mlp

H = 1e-5


def numerical_gradient(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``array`` (perturbed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + H
        plus = f()
        array[index] = saved - H
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * H)
    return grad


def assert_gradients_close(numerical: np.ndarray, analytic: np.ndarray) -> None:
    # The grader's own acceptance rule (|num - ana| <= 1e-8 + 1e-5 * max(|num|, |ana|)).
    bound = 1e-8 + 1e-5 * np.maximum(np.abs(numerical), np.abs(analytic))
    assert analytic.shape == numerical.shape
    assert np.all(np.abs(numerical - analytic) <= bound), np.max(np.abs(numerical - analytic))


def test_layer_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x, W, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    weights = rng.normal(size=(4, 3))  # L = sum(weights * layer output)
    dx, dW, db = mlp.linear_backward(weights, x, W)
    def loss() -> float:
        return float(np.sum(weights * mlp.linear_forward(x, W, b)))

    for analytic, array in ((dx, x), (dW, W), (db, b)):
        assert_gradients_close(numerical_gradient(loss, array), analytic)

    z = rng.normal(size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep every entry away from the kink
    dout = rng.normal(size=(4, 5))

    def relu_loss() -> float:
        return float(np.sum(dout * mlp.relu_forward(z)))

    assert_gradients_close(numerical_gradient(relu_loss, z), mlp.relu_backward(dout, z))

    logits, y = rng.normal(size=(6, 4)) * 2, np.array([0, 3, 1, 1, 2, 0])
    _, dlogits = mlp.cross_entropy(logits, y)
    assert_gradients_close(numerical_gradient(lambda: mlp.cross_entropy(logits, y)[0], logits), dlogits)


@pytest.mark.parametrize("sizes", [(6, 3), (5, 7, 3), (4, 6, 6, 3), (3, 5, 4, 6, 2)],
                         ids=["no-hidden", "one-hidden", "square-layer", "three-hidden"])
def test_network_gradients_match_finite_differences(sizes):
    rng = np.random.default_rng(len(sizes))
    model = mlp.MLP(sizes=sizes, seed=1)
    for key, array in model.params.items():
        if key.startswith("b"):
            array[...] = rng.normal(scale=0.5, size=array.shape)  # biases must not hide behind zeros
    X = rng.normal(size=(5, sizes[0]))
    y = rng.integers(0, sizes[-1], size=5)
    loss, grads = model.loss_and_grads(X, y)
    assert loss == pytest.approx(mlp.cross_entropy(model.forward(X), y)[0])
    assert grads.keys() == model.params.keys()
    for key, array in model.params.items():
        numerical = numerical_gradient(lambda: model.loss_and_grads(X, y)[0], array)
        assert_gradients_close(numerical, grads[key])


def test_backward_uses_the_most_recent_forward():
    rng = np.random.default_rng(7)
    model = mlp.MLP(sizes=(4, 5, 3), seed=0)
    X1, X2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    dlogits = rng.normal(size=(4, 3))
    model.forward(X2)
    expected = model.backward(dlogits)
    model.forward(X1)
    model.forward(X2)
    got = model.backward(dlogits)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
