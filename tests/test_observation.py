"""The observed epoch's rows read against the parent's fingerprints of real MNIST (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.observation_seeds import record_of
from grader.contract import BATCH_SIZE
from grader.observation import Observation, judge, rows_findings
from grader.training import row_index, start_weights


# Seed 7 draws fingerprint pixels in which a few MNIST rows are alike: data order then maps to row
# numbers that are not exactly sorted (the bug a monotonic test had: a grade-seed-dependent verdict).
@pytest.mark.parametrize("seed", [0, 7])
def test_data_order_is_told_whatever_the_grade_seed_draws(mnist, seed):
    index = row_index(mnist.x_train, seed, start_weights(seed))
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


def test_epochs_without_usable_weights_are_judged_on_their_rows(mnist):
    """on_epoch stopped handing over weights of the network's form after epoch 1 (or a flood of calls
    went past the epochs the parent keeps): the later epochs are still read, and nothing raises."""
    start = start_weights(3)
    index = row_index(mnist.x_train, 3, start)
    rng = np.random.default_rng(3)
    records = [record_of(mnist.x_train, index, rng.permutation(len(mnist.x_train))) for _ in range(3)]
    verdict = judge(Observation(epochs=records), index, [start], start, 3, BATCH_SIZE, 0.1, finished=True)
    assert all("rows" not in finding.text for finding in verdict.findings), verdict.findings
