"""The reference's functions against independent NumPy formulas (einsum, log-space reductions)."""

from __future__ import annotations

import numpy as np
import pytest

from grader.calibrate import EXTREME_LOGITS
from reference import mlp


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def log_softmax_by_logaddexp(logits: np.ndarray) -> np.ndarray:
    """Independent log-softmax: each row minus its log-sum-exp computed by np.logaddexp.reduce."""
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


EXTREME_ROWS = EXTREME_LOGITS


def test_he_init_shape_dtype_and_statistics(rng):
    fan_in, fan_out = 400, 300
    W = mlp.he_init(fan_in, fan_out, rng)
    assert W.shape == (fan_in, fan_out) and W.dtype == np.float64
    n = W.size
    # Mean of n draws with variance 2/fan_in has std sqrt(2/fan_in/n); allow 5 of them.
    assert abs(W.mean()) < 5 * np.sqrt(2 / fan_in / n)
    # Sample variance has relative std sqrt(2/(n-1)) for a normal; allow 5 of them.
    assert abs(W.var() / (2 / fan_in) - 1) < 5 * np.sqrt(2 / (n - 1))


def test_he_init_draws_only_from_the_given_generator():
    a = mlp.he_init(7, 3, np.random.default_rng(5))
    np.random.seed(0)  # the legacy global state must not matter
    b = mlp.he_init(7, 3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, mlp.he_init(7, 3, np.random.default_rng(6)))


def test_linear_forward_and_backward_match_einsum(rng):
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    dout = rng.normal(size=(5, 3))
    np.testing.assert_allclose(mlp.linear_forward(x, W, b), np.einsum("nd,dm->nm", x, W) + b, rtol=1e-13)
    dx, dW, db = mlp.linear_backward(dout, x, W)
    np.testing.assert_allclose(dx, np.einsum("nm,dm->nd", dout, W), rtol=1e-13)
    np.testing.assert_allclose(dW, np.einsum("nd,nm->dm", x, dout), rtol=1e-13)
    np.testing.assert_allclose(db, np.einsum("nm->m", dout), rtol=1e-13)
    assert (dx.shape, dW.shape, db.shape) == ((5, 4), (4, 3), (3,))


def test_relu_forward_and_backward(rng):
    z = rng.normal(size=(6, 5))
    dout = rng.normal(size=(6, 5))
    before = z.copy()
    np.testing.assert_array_equal(mlp.relu_forward(z), (z + np.abs(z)) / 2)
    np.testing.assert_array_equal(mlp.relu_backward(dout, z), dout * np.heaviside(z, 0.0))
    np.testing.assert_array_equal(z, before)
    assert mlp.relu_backward(dout.astype(np.float32), z).dtype == np.float32


def test_softmax_matches_log_space_formula_even_at_extreme_logits(rng):
    logits = np.vstack([rng.normal(size=(3, 4)) * 3, EXTREME_ROWS])
    before = logits.copy()
    probs = mlp.softmax(logits)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs, np.exp(log_softmax_by_logaddexp(logits)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(logits, before)


def test_cross_entropy_loss_and_gradient_match_formulas_even_at_extreme_logits(rng):
    logits = np.vstack([rng.normal(size=(3, 4)) * 3, EXTREME_ROWS])
    y = np.array([0, 1, 2, 3, 1, 2, 0, 3, 2])
    before = logits.copy()
    loss, dlogits = mlp.cross_entropy(logits, y)
    log_p = log_softmax_by_logaddexp(logits)
    n = len(y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(-log_p[np.arange(n), y].mean(), rel=1e-13)
    np.testing.assert_allclose(dlogits, (np.exp(log_p) - np.eye(4)[y]) / n, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(logits, before)


def test_sgd_step_updates_the_callers_arrays_in_place(rng):
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2)}
    grads = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2)}
    arrays = dict(params)
    expected = {k: params[k] - 0.5 * grads[k] for k in params}
    assert mlp.sgd_step(params, grads, 0.5) is None
    for k in params:
        assert params[k] is arrays[k]
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-15)


@pytest.mark.parametrize("sizes", [(784, 128, 64, 10), (6, 2), (5, 8, 8, 3)])
def test_mlp_parameters_follow_the_contract(sizes):
    model = mlp.MLP(sizes=sizes, seed=3)
    rng = np.random.default_rng(3)
    assert list(model.params) == [f"{p}{k}" for k in range(1, len(sizes)) for p in "Wb"]
    for k in range(1, len(sizes)):
        np.testing.assert_array_equal(model.params[f"W{k}"], mlp.he_init(sizes[k - 1], sizes[k], rng))
        np.testing.assert_array_equal(model.params[f"b{k}"], np.zeros(sizes[k]))
    other = mlp.MLP(sizes=sizes, seed=3)
    assert all(not np.shares_memory(model.params[k], other.params[k]) for k in model.params)


def test_mlp_forward_and_predict_match_a_hand_written_pass(rng):
    model = mlp.MLP(sizes=(6, 5, 4, 3), seed=0)
    for k in model.params:
        model.params[k][...] = rng.normal(size=model.params[k].shape)
    X = rng.normal(size=(7, 6))
    h1 = np.maximum(np.einsum("nd,dm->nm", X, model.params["W1"]) + model.params["b1"], 0)
    h2 = np.maximum(np.einsum("nd,dm->nm", h1, model.params["W2"]) + model.params["b2"], 0)
    logits = np.einsum("nd,dm->nm", h2, model.params["W3"]) + model.params["b3"]
    np.testing.assert_allclose(model.forward(X), logits, rtol=1e-12)
    predicted = model.predict(X)
    assert predicted.shape == (7,) and np.issubdtype(predicted.dtype, np.integer)
    np.testing.assert_array_equal(predicted, logits.argmax(axis=1))


def test_train_returns_one_mean_loss_per_epoch_and_reports_each_epoch(rng):
    # A tiny separable problem (a unit test; real MNIST training is in test_reference_training).
    X = rng.random((200, 8)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.int64)
    model = mlp.MLP(sizes=(8, 16, 2), seed=0)
    seen = []
    losses = mlp.train(model, X, y, epochs=5, batch_size=32, lr=0.5, seed=0,
                       on_epoch=lambda epoch, loss: seen.append((epoch, loss)))
    assert len(losses) == 5 and seen == list(zip(range(1, 6), losses))
    assert losses[-1] < losses[0]
    again = mlp.MLP(sizes=(8, 16, 2), seed=0)
    assert mlp.train(again, X, y, epochs=5, batch_size=32, lr=0.5, seed=0) == losses
