"""The grader's own forward pass agrees with the reference's predictions and refuses weights that do not chain."""

from __future__ import annotations

import numpy as np
import pytest

from grader.evaluation import accuracy, logits
from reference.mlp import MLP


@pytest.mark.parametrize("sizes", [(6, 3), (6, 5, 4, 3)])
def test_logits_and_accuracy_match_the_reference(sizes):
    rng = np.random.default_rng(0)
    model = MLP(sizes=sizes, seed=2)
    for array in model.params.values():
        array[...] = rng.normal(size=array.shape)
    X = rng.normal(size=(50, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], size=50)
    np.testing.assert_allclose(logits(model.params, X), model.forward(X), rtol=1e-6)
    assert accuracy(model.params, X, y, chunk=7) == np.mean(model.predict(X) == y)


def test_non_finite_logits_count_as_wrong():
    params = {"W1": np.full((2, 2), np.nan), "b1": np.zeros(2)}
    assert accuracy(params, np.ones((4, 2)), np.zeros(4, dtype=int)) == 0.0


@pytest.mark.parametrize("params", [{}, {"W1": np.ones((3, 2)), "b1": np.zeros(2)},
                                    {"W1": np.ones((2, 2)), "b1": np.zeros(3)}])
def test_weights_that_do_not_chain_are_refused(params):
    with pytest.raises(ValueError):
        logits(params, np.ones((1, 2)))
