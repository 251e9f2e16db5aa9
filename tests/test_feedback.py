"""Feedback text: small arrays in full, big ones summarised, and where two arrays differ most."""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks.check_train import expect_losses
from grader.record import GradeRecord, TrainingRecord
from grader.report.html import render_report
from grader.rubric.feedback import CheckFailure, as_array, expect_close, show


def test_small_arrays_are_shown_in_full_and_big_ones_summarised():
    assert show(np.array([1.5, 2.0])).startswith("[1.5, 2. ]")
    big = np.arange(100.0).reshape(10, 10)
    big[0, 0] = np.nan
    assert show(big) == "array of shape (10, 10), float64: min 1, max 99, mean 50, 1 NaN/inf"


def test_a_transposed_matrix_is_located_although_its_summary_matches():
    """Expected and got summaries of a transpose are identical; the difference line is what helps."""
    expected = np.arange(36.0).reshape(6, 6)
    with pytest.raises(CheckFailure) as failure:
        expect_close(expected.T, expected, "dW", kind="gradient")
    text = str(failure.value)
    assert "largest difference: 25 at index (0, 5)" in text and "transpose" in text


def test_a_non_array_is_named():
    with pytest.raises(CheckFailure, match="must be a NumPy array"):
        as_array([1, 2], "softmax(logits)")


def test_a_report_renders_without_a_calibration_band():
    """Rendering with training numbers but no band referenced charts never built (the bug this pins down)."""
    training = TrainingRecord(epochs=2, accuracies=[0.9, 0.95], losses=[0.4, 0.2], seconds=2.0, budget_seconds=40.0,
                              scaled_reference_seconds=1.9)
    grade = GradeRecord(training=training, seconds=3.0, calibration_id="test")
    page = render_report(grade, "no band")
    assert "2 of 2 epochs" in page and "<svg" not in page


# The grader's own 8 batch losses, and a last batch of the submission's own shuffle lower than all of
# them (seen in the suite: the old [min, max] test then guessed "not the epoch's mean").
SINGLE_BATCHES = [2.45, 2.47, 2.50, 2.52, 2.48, 2.46, 2.51, 2.53]


@pytest.mark.parametrize(("losses", "diagnosis"), [
    ([2.42378, 2.44291], "one batch's loss (the last batch's?)"),
    ([2.47, 2.52], "one batch's loss (the last batch's?)"),
    ([3.9, 4.1], "not the epoch's mean of your loss_and_grads's batch losses"),
])
def test_a_loss_is_called_one_batchs_only_when_it_could_be(losses, diagnosis):
    with pytest.raises(CheckFailure) as failure:
        expect_losses("train", losses, [2.489] * 2, 172, 4, "passed to on_epoch", SINGLE_BATCHES)
    assert diagnosis in str(failure.value)
