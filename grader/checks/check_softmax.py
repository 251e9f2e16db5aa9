"""softmax: row-wise probabilities, exact and finite for any finite logits."""

import numpy as np
import pytest

from grader.rubric.feedback import CheckFailure, as_array, expect_close, expect_float64, expect_unmodified

pytestmark = pytest.mark.component("softmax")
ORDINARY = slice(0, 4)  # rows of golden["softmax.logits"]; the rest are extreme
EXTREME = slice(4, None)


@pytest.mark.points(3)
def check_golden(box, golden):
    """softmax matches the oracle on ordinary logits"""
    logits = golden["softmax.logits"][ORDINARY]
    out = expect_close(box.call("softmax", logits), golden["softmax.probs"][ORDINARY], "softmax(logits)",
                       kind="probabilities",
                       alternatives=((np.exp(logits) / np.exp(logits).sum(), "normalised over the whole batch; "
                                      "each row must sum to 1 on its own"),))
    expect_float64(out, "softmax(logits)")


@pytest.mark.points(2)
def check_extreme_logits(box, golden):
    """softmax stays finite and exact at extreme logits ([1000, 0, 0, 0], [-1000, ...], ±1e4 mixed)"""
    logits = golden["softmax.logits"][EXTREME]
    expect_close(box.call("softmax", logits), golden["softmax.probs"][EXTREME],
                 f"softmax of the rows {logits.tolist()}", atol=1e-12, kind="probabilities")


@pytest.mark.points(1)
def check_rows_and_shift(box, rng):
    """softmax rows sum to 1 and adding a constant to a row changes nothing (fresh random logits)"""
    logits = rng.normal(size=(6, 5)) * 4
    probs = as_array(box.call("softmax", logits), "softmax(logits)")
    if probs.shape != (6, 5):
        raise CheckFailure("softmax must keep the shape (N, C)", "(6, 5)", str(probs.shape))
    expect_close(probs.sum(axis=1), np.ones(6), "each row's sum", kind="value")
    shifted = logits + rng.uniform(-300, 300, size=(6, 1))
    expect_close(box.call("softmax", shifted), probs, "softmax(logits + c) with a different c per row",
                 atol=1e-12)


@pytest.mark.points(1)
def check_dtype(box, rng):
    """softmax of float64 logits is float64"""
    expect_float64(as_array(box.call("softmax", rng.normal(size=(3, 4))), "softmax(logits)"), "softmax(logits)")


@pytest.mark.points(1)
def check_input_unchanged(box, rng):
    """softmax does not modify its input"""
    logits = rng.normal(size=(5, 4)) * 3
    _, after = box.call("softmax", logits, return_args=True)
    expect_unmodified([logits], after, ["logits"], "softmax")
