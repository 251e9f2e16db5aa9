"""The reference answers to the PyTorch oracle: gradients, losses and whole training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.contract import BATCH_SIZE, LR
from reference import mlp, oracle

pytestmark = pytest.mark.oracle
# The suite runs on both cores already: a second torch thread per worker would only contend with the other.
torch.set_num_threads(1)


def random_model(sizes, seed):
    rng = np.random.default_rng(seed)
    model = mlp.MLP(sizes=sizes, seed=seed)
    for key, array in model.params.items():
        if key.startswith("b"):
            array[...] = rng.normal(scale=0.3, size=array.shape)
    X = rng.normal(size=(9, sizes[0]))
    y = rng.integers(0, sizes[-1], size=9)
    return model, X, y


@pytest.mark.parametrize("sizes", [(5, 3), (6, 8, 4), (7, 6, 6, 3), (4, 9, 7, 5, 2), (784, 128, 64, 10)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_loss_and_gradients_equal_autograd(sizes, seed):
    model, X, y = random_model(sizes, seed)
    loss, grads = model.loss_and_grads(X, y)
    oracle_loss, oracle_grads = oracle.OracleMLP(model.params).loss_and_grads(X, y)
    assert loss == pytest.approx(oracle_loss, rel=1e-12)
    for key in model.params:
        scale = np.abs(oracle_grads[key]).max()
        assert np.abs(grads[key] - oracle_grads[key]).max() <= 1e-10 * scale


def test_layer_functions_equal_autograd():
    rng = np.random.default_rng(0)
    x, W, b, dout = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 3))
    expected = oracle.layer_gradients(lambda x, W, b: x @ W + b, dout, x, W, b)
    for got, want in zip(mlp.linear_backward(dout, x, W), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    z = rng.normal(size=(5, 3))
    np.testing.assert_allclose(mlp.relu_backward(dout, z), oracle.layer_gradients(torch.relu, dout, z)[0])
    logits = np.vstack([rng.normal(size=(3, 4)), [[1000, 0, 0, 0], [1, 325, 749, 750], [-1e4, 1e4, 0, 1e4]]])
    y = np.array([0, 1, 2, 3, 0, 2])
    np.testing.assert_allclose(mlp.softmax(logits), oracle.softmax(logits), rtol=1e-12, atol=1e-300)
    loss, dlogits = mlp.cross_entropy(logits, y)
    oracle_loss, oracle_dlogits = oracle.cross_entropy(logits, y)
    assert loss == pytest.approx(oracle_loss, rel=1e-12)
    np.testing.assert_allclose(dlogits, oracle_dlogits, rtol=1e-10, atol=1e-17)


def test_batch_order_is_the_contracts_shuffle():
    epochs = list(oracle.batch_order(10, 2, 4, seed=3))
    rng = np.random.default_rng(3)
    for batches in epochs:
        np.testing.assert_array_equal(np.concatenate(batches), rng.permutation(10))
        assert [len(b) for b in batches] == [4, 4, 2]


@pytest.mark.mnist
@pytest.mark.slow
def test_reference_and_oracle_train_alike_on_real_mnist(mnist):
    """Same initial weights, same batches: per-epoch losses agree over 3 epochs."""
    model = mlp.MLP(seed=0)
    twin = oracle.OracleMLP(model.params)
    reference_losses = mlp.train(model, mnist.x_train, mnist.y_train, epochs=3, seed=0)
    oracle_losses = twin.train(mnist.x_train, mnist.y_train, oracle.batch_order(60000, 3, BATCH_SIZE, seed=0), lr=LR)
    np.testing.assert_allclose(reference_losses, oracle_losses, rtol=1e-6)
    final = twin.params()
    for key in final:
        np.testing.assert_allclose(model.params[key], final[key], rtol=1e-4, atol=1e-6)
