"""cross_entropy: the batch-mean loss and its gradient with respect to the logits."""

import numpy as np
import pytest

from grader.rubric import gradcheck
from grader.rubric.feedback import CheckFailure, as_array, expect_close, expect_float64, expect_unmodified, show

pytestmark = pytest.mark.component("cross_entropy")
ORDINARY, EXTREME = slice(0, 4), slice(4, None)


def loss_and_gradient(value: object, call: str) -> tuple[float, np.ndarray]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailure(f"{call} must return (loss, dlogits)", "a tuple of 2", type(value).__name__)
    loss = as_array(value[0], f"{call}'s loss")
    if loss.size != 1:
        raise CheckFailure(f"{call}'s loss must be one number (the batch mean)", "a float", show(loss),
                           "the loss is per sample: take the mean over the batch")
    return float(loss.reshape(())), as_array(value[1], f"{call}'s dlogits")


def wrong_gradients(probs: np.ndarray, y: np.ndarray) -> tuple[tuple[np.ndarray, str], ...]:
    n, classes = probs.shape
    onehot = np.eye(classes)[y]
    return (((probs - onehot) * probs * (1 - probs) / n,
             "an extra p(1 - p) factor: softmax's derivative is already folded into p - onehot(y)"),
            ((probs - onehot), f"the 1/N of the batch mean is missing (exactly N = {n} times too large)"),
            (probs / n, "onehot(y) is not subtracted"))


def expect_loss_value(got: float, expected: float, n: int, what: str) -> None:
    if not np.isclose(got, expected, rtol=1e-6, atol=1e-9):
        diagnosis = ""
        if not np.isfinite(got):
            diagnosis = "the loss is not finite: compute log-probabilities with log-sum-exp (shift by the row max)"
        elif np.isclose(got, expected * n, rtol=1e-6):
            diagnosis = f"the loss is the sum over the batch, not the mean ({n} times too large)"
        elif np.isclose(got, -expected, rtol=1e-6):
            diagnosis = "the sign is flipped: the loss is minus the log-probability"
        raise CheckFailure(what, f"{expected:.10g}", f"{got:.10g}", diagnosis)


@pytest.mark.points(3)
def check_golden_loss(box, golden):
    """cross_entropy's loss matches the oracle on ordinary logits

    The loss value itself is checked: a missing 1/N in both loss and gradient passes finite differences.
    """
    logits, y = golden["softmax.logits"][ORDINARY], golden["ce.y"][ORDINARY]
    expected = float(np.mean(-np.log(golden["softmax.probs"][ORDINARY][np.arange(len(y)), y])))
    loss, _ = loss_and_gradient(box.call("cross_entropy", logits, y), "cross_entropy(logits, y)")
    expect_loss_value(loss, expected, len(y), "the mean cross-entropy of 4 samples")


@pytest.mark.points(3)
def check_golden_gradient(box, golden):
    """cross_entropy's dlogits matches the oracle on ordinary logits"""
    logits, y = golden["softmax.logits"][ORDINARY], golden["ce.y"][ORDINARY]
    probs = golden["softmax.probs"][ORDINARY]
    expected = (probs - np.eye(4)[y]) / len(y)
    _, dlogits = loss_and_gradient(box.call("cross_entropy", logits, y), "cross_entropy(logits, y)")
    expect_close(dlogits, expected, "dlogits", batch=len(y), kind="gradient", alternatives=wrong_gradients(probs, y))
    expect_float64(dlogits, "dlogits")


@pytest.mark.points(2)
def check_extreme_logits(box, golden):
    """cross_entropy's loss and gradient stay finite and exact at extreme logits (the oracle's values)"""
    logits, y = golden["softmax.logits"], golden["ce.y"]
    loss, dlogits = loss_and_gradient(box.call("cross_entropy", logits, y), "cross_entropy(logits, y)")
    expect_loss_value(loss, float(golden["ce.loss"]), len(y),
                     "the mean cross-entropy of a batch holding rows such as [1000, 0, 0, 0] and [1, 325, 749, 750]")
    expect_close(dlogits, golden["ce.dlogits"], "dlogits at extreme logits", atol=1e-12, batch=len(y),
                 kind="gradient")


@pytest.mark.points(2)
def check_finite_differences(box, rng):
    """cross_entropy's dlogits agrees with finite differences of its own loss (fresh random batch of 6)"""
    logits, y = rng.normal(size=(6, 5)) * 2, rng.integers(0, 5, size=6)
    _, dlogits = loss_and_gradient(box.call("cross_entropy", logits, y), "cross_entropy(logits, y)")

    def own_loss(point: np.ndarray) -> float:
        return loss_and_gradient(box.call("cross_entropy", point, y), "cross_entropy")[0]

    gradcheck.expect_gradient(dlogits, gradcheck.full_gradient(own_loss, logits),
                              "dlogits against its own loss", batch=len(y))


@pytest.mark.points(1)
def check_types(box, rng):
    """cross_entropy returns a float loss and an (N, C) float64 gradient"""
    logits, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    loss, dlogits = loss_and_gradient(box.call("cross_entropy", logits, y), "cross_entropy(logits, y)")
    if dlogits.shape != (5, 3):
        raise CheckFailure("dlogits must have the logits' shape", "(5, 3)", str(dlogits.shape))
    expect_float64(dlogits, "dlogits")


@pytest.mark.points(1)
def check_inputs_unchanged(box, rng):
    """cross_entropy does not modify its inputs"""
    args = [rng.normal(size=(6, 4)) * 3, rng.integers(0, 4, size=6)]
    _, after = box.call("cross_entropy", *args, return_args=True)
    expect_unmodified(args, after, ["logits", "y"], "cross_entropy")
