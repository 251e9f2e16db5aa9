"""train: 20 epochs on real MNIST with the contract's hyperparameters, timed and evaluated by the grader."""

import numpy as np
import pytest

from grader.rubric.feedback import CheckFailure
from grader.training import TrainingRun, timed_training

pytestmark = pytest.mark.component("train")


@pytest.fixture(scope="module")
def run(box, mnist, context) -> TrainingRun:
    """One timed training run, shared by the checks below (recorded for the report)."""
    training = context.training
    result = timed_training(box, mnist, epochs=context.epochs, time_budget=training.budget_seconds)
    training.seconds, training.accuracies, training.losses = round(result.seconds, 3), result.accuracies, result.losses
    training.epoch_seconds = [round(s, 3) for s in result.epoch_seconds]
    training.stopped = result.failure.message if result.failure else None
    return result


def _failure_diagnosis(run: TrainingRun) -> str:
    if run.losses and not np.all(np.isfinite(run.losses)):
        return "the loss became NaN/inf: check the softmax's max-shift and the learning rate"
    if run.accuracies and run.final_accuracy < 0.2:
        if run.losses and run.losses[-1] > 2.0:
            return ("the model does not learn: near chance accuracy and a loss that stays near ln(10) = 2.30. "
                    "If the loss does not fall at all, the labels may be shuffled apart from the images (index X "
                    "and y with the same permutation), or the update may not reach model.params")
        return "near chance accuracy: the weights the model ends with do not classify"
    return ""


@pytest.mark.points(12)
def check_accuracy(run, calibration, award, context):
    """train reaches the calibrated test accuracy (measured by the grader after every epoch)"""
    if not run.accuracies:
        reason = run.failure.message if run.failure else "train finished no epoch (on_epoch was never called)"
        raise CheckFailure("train must finish epochs and call on_epoch after each one", f"{context.epochs} epochs",
                           reason)
    accuracy = run.final_accuracy
    credit = calibration.accuracy_credit(accuracy)
    curve = ", ".join(f"{a:.4f}" for a in run.accuracies)
    finished = f"{len(run.accuracies)} of {context.epochs} epochs"
    if credit == 0.0:
        raise CheckFailure(f"test accuracy after {finished}", f">= {calibration.full_credit:.4f} for full credit, "
                           f"> {calibration.zero_credit:.4f} for any", f"{accuracy:.4f} (per epoch: {curve})",
                           _failure_diagnosis(run))
    award(credit, f"test accuracy {accuracy:.4f} after {finished} (full credit from {calibration.full_credit:.4f}, "
                  f"none below {calibration.zero_credit:.4f}); per epoch: {curve}")


@pytest.mark.points(3)
def check_time(run, context):
    """train finishes within the time budget (scaled to this machine's speed)"""
    budget, reference = context.training.budget_seconds, context.training.scaled_reference_seconds
    ratio = run.seconds / reference if reference else float("inf")
    if run.failure is not None and run.failure.kind == "timeout":
        raise CheckFailure(f"train was stopped at the time budget after {len(run.accuracies)} of "
                           f"{context.epochs} epochs", f"<= {budget:.1f} s",
                           f"> {budget:.1f} s ({ratio:.1f}x the reference's {reference:.1f} s on this machine)",
                           "per-sample Python loops are far slower than batched matrix products: vectorise "
                           "over the batch")
    if run.failure is not None:
        raise CheckFailure("train must run to the end", f"{context.epochs} epochs", run.failure.message)
    if len(run.accuracies) != context.epochs:
        raise CheckFailure("train must call on_epoch once per epoch", str(context.epochs), str(len(run.accuracies)))


@pytest.mark.points(0)
def check_history(run, context):
    """train returns one mean training loss per epoch (informational)"""
    returned = run.returned
    if run.failure is not None:
        raise CheckFailure("train must return the list of each epoch's mean training loss",
                           f"a list of {context.epochs} floats", run.failure.message)
    if not (isinstance(returned, list) and len(returned) == context.epochs):
        raise CheckFailure("train must return the list of each epoch's mean training loss",
                           f"a list of {context.epochs} floats", repr(returned)[:200])
