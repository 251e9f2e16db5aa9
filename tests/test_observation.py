"""The observed epoch's rows read against the parent's fingerprints of real MNIST (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.observation_seeds import record_of
from grader.contract import BATCH_SIZE
from grader.observation import RowIndex, rows_findings
from grader.training import start_weights


# Seed 7 draws fingerprint pixels in which a few MNIST rows are alike: data order then maps to row
# numbers that are not exactly sorted (the bug a monotonic test had: a grade-seed-dependent verdict).
@pytest.mark.parametrize("seed", [0, 7])
def test_data_order_is_told_whatever_the_grade_seed_draws(mnist, seed):
    shapes = {key: value.shape for key, value in start_weights(seed).items()}
    index = RowIndex.of(mnist.x_train, np.random.default_rng([seed, 23]), shapes)
    n = len(mnist.x_train)
    for rows in (np.arange(n), np.arange(n)[::-1]):
        findings, _ = rows_findings(1, record_of(mnist.x_train, index, rows), index, BATCH_SIZE, None)
        assert [f.text for f in findings if "in the data order" in f.text], findings

    shuffled = np.random.default_rng(seed).permutation(n)
    findings, groups = rows_findings(1, record_of(mnist.x_train, index, shuffled), index, BATCH_SIZE, None)
    assert findings == []
    again, _ = rows_findings(2, record_of(mnist.x_train, index, shuffled), index, BATCH_SIZE, groups)
    assert [f.text for f in again] == ["epoch 2 used the same order as epoch 1: create one generator before the "
                                       "loop and draw a fresh permutation each epoch"]
