"""The observed epoch's rows read against the parent's fingerprints of real MNIST (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from grader.observation import EpochRecord, RowIndex, fingerprints, rows_findings
from grader.training import start_weights

BATCH = 64


def epoch_of(index: RowIndex, X: np.ndarray, rows: np.ndarray) -> EpochRecord:
    """The record a loop that takes ``rows`` in batches of BATCH leaves (only the rows matter here)."""
    sizes = np.array([len(rows[i:i + BATCH]) for i in range(0, len(rows), BATCH)])
    return EpochRecord(sizes, fingerprints(X[rows], index.columns, index.projection), np.zeros(len(sizes)), 0,
                       {}, {}, np.zeros(0))


# Seed 7 draws fingerprint pixels in which a few MNIST rows are alike: data order then maps to row
# numbers that are not exactly sorted (the bug a monotonic test had: a grade-seed-dependent verdict).
@pytest.mark.parametrize("seed", [0, 7])
def test_data_order_is_told_whatever_the_grade_seed_draws(mnist, seed):
    shapes = {key: value.shape for key, value in start_weights(seed).items()}
    index = RowIndex.of(mnist.x_train, np.random.default_rng([seed, 23]), shapes)
    n = len(mnist.x_train)
    for rows in (np.arange(n), np.arange(n)[::-1]):
        findings, _ = rows_findings(1, epoch_of(index, mnist.x_train, rows), index, BATCH, None)
        assert [f.text for f in findings if "in the data order" in f.text], findings

    shuffled = np.random.default_rng(seed).permutation(n)
    findings, groups = rows_findings(1, epoch_of(index, mnist.x_train, shuffled), index, BATCH, None)
    assert findings == []
    again, _ = rows_findings(2, epoch_of(index, mnist.x_train, shuffled), index, BATCH, groups)
    assert [f.text for f in again] == ["epoch 2 used the same order as epoch 1: create one generator before the "
                                       "loop and draw a fresh permutation each epoch"]
