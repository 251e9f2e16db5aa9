"""Feedback text: small arrays in full, big ones summarised, and where two arrays differ most."""

from __future__ import annotations

import numpy as np
import pytest

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
