"""The observed epoch's rows read against the parent's fingerprints of real MNIST (no training); the child's
recorder."""

from __future__ import annotations

import numpy as np
import pytest

from bench.observation_seeds import record_of
from grader.contract import BATCH_SIZE
from grader.observation import Observation, fingerprints, judge, rows_findings
from grader.sandbox.observe import FOLDED_BATCHES, Recorder
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


def test_the_recorder_sums_what_sgd_step_gets_whatever_array_form_it_takes():
    """A (1, M) bias gradient (``keepdims=True``), a float32 one and a list are the same numbers: summed alike,
    over the rows the parent drew, and the fingerprints come out per row, also past a fold of batches."""
    rng = np.random.default_rng(3)
    shapes = {"W1": (40, 8), "b1": (8,)}
    summed_rows = {"W1": np.array([2, 5, 11]), "b1": np.arange(8)}
    columns, projection = np.array([0, 3, 7]), np.array([1.0, 0.5, 2.0])
    recorder = Recorder(columns, projection, summed_rows, shapes)
    steps, batches = [], []
    for _ in range(FOLDED_BATCHES + 3):
        X = rng.random((4, 10)).astype(np.float32)
        grads = {"W1": rng.standard_normal(shapes["W1"]), "b1": rng.standard_normal(8)}
        steps.append(grads)
        batches.append(X)
        form = len(steps) % 3
        handed = grads if form == 0 else \
            {"W1": grads["W1"].astype(np.float32), "b1": grads["b1"][None, :]} if form == 1 else \
            {"W1": grads["W1"].tolist(), "b1": list(grads["b1"])}
        recorder.saw_batch(X)
        recorder.saw_grads(handed)
        recorder.saw_step(handed, 0.1)
    record = recorder.take()
    expected_W1 = sum(g["W1"] for g in steps)[summed_rows["W1"]].ravel()
    assert np.allclose(record["grad_sum"]["W1"], expected_W1, rtol=1e-6)
    assert np.allclose(record["grad_sum"]["b1"], sum(g["b1"] for g in steps))
    assert record["foreign"] == 0 and record["sizes"].tolist() == [4] * len(steps)
    assert np.allclose(record["fingerprints"], np.concatenate([fingerprints(X, columns, projection) for X in batches]))
    recorder.saw_batch(batches[0])
    recorder.saw_grads(steps[0])
    recorder.saw_step({"W1": steps[0]["W1"] + 1, "b1": steps[0]["b1"]}, 0.1)  # not what loss_and_grads returned
    assert recorder.take()["foreign"] == 1
