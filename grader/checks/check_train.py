"""train: verified step by step on real MNIST rows, then 20 timed epochs scored by the grader.

The first two checks run ``train`` on a few real MNIST rows from weights the grader wrote, with a
batch size, learning rate and seed drawn for this run (never the defaults), and compare what it
did with the submission's own ``loss_and_grads``: order independent, so any shuffle generator
and any last-batch policy is right. The timed run's accuracy is then graded on the final weights,
and withheld for an instructor's review when the run is physically implausible.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks.check_mlp import loss_and_grads, params_of
from grader.contract import BATCH_SIZE, LR, SIZES
from grader.observation import first_batch_findings, judge
from grader.plausibility import review_reason
from grader.rubric.feedback import CheckFailure, as_array, show
from grader.rubric.plugin import DEADLINE_RESERVE
from grader.sandbox import Callback
from grader.training import WALL_FACTOR, TrainingRun, as_history, as_number, layer_correlations, timed_training

pytestmark = pytest.mark.component("train")

# A step matches when it is within this share of the expected step (float32 training included),
# plus the float32 rounding of the starting weights themselves.
STEP_RTOL, WEIGHT_RTOL = 2e-3, 1e-6
LOSS_RTOL = 1e-3  # a reported mean loss against the one loss_and_grads gives (float32 included)
# Batch losses scatter about their mean; one batch of the submission's own shuffle lies within this many
# standard deviations of the grader's 8 (a normal draw beyond 4 happens about once in 16,000).
BATCH_SPREAD = 4.0
SHIPPING_SECONDS = 5.0  # sending MNIST to the child before train starts (about a second measured)


# ---- the grader's inputs ----------------------------------------------------------------------
def grader_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights of the contract's network from the grader's own RNG: He-scaled, non-zero biases."""
    weights = {}
    for k in range(1, len(SIZES)):
        weights[f"W{k}"] = rng.normal(size=(SIZES[k - 1], SIZES[k])) * np.sqrt(2 / SIZES[k - 1])
        weights[f"b{k}"] = rng.normal(scale=0.1, size=SIZES[k])
    return weights


def mnist_rows(mnist, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct real training rows: X float32 (count, 784), y int64 (count,)."""
    index = np.sort(rng.choice(len(mnist.y_train), size=count, replace=False))
    return mnist.x_train[index], mnist.y_train[index]


def model_with(box, weights: dict[str, np.ndarray]):
    model = box.call("MLP", sizes=SIZES, seed=0)
    box.write_params(model, weights)
    return model


def own_step(box, weights: dict, X: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, dict[str, np.ndarray]]:
    """The submission's own loss at ``weights`` and the weights one full-batch step of ``lr`` later."""
    loss, grads = loss_and_grads(box, model_with(box, weights), X, y)
    missing = sorted(set(weights) - set(grads))
    if missing:
        raise CheckFailure("train is checked against your own loss_and_grads, whose grads lack keys",
                           str(sorted(weights)), str(sorted(grads)))
    return loss, {key: value - lr * as_array(grads[key], f"grads['{key}']") for key, value in weights.items()}


def params_after(box, model, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """model.params as float64 arrays with the reference's keys and shapes, or a CheckFailure."""
    params = params_of(box, model)
    got = {key: np.shape(value) for key, value in params.items()}
    expected = {key: value.shape for key, value in reference.items()}
    if got != expected:
        raise CheckFailure("model.params after train must keep its keys and shapes", str(expected), str(got))
    return {key: as_array(params[key], f"model.params['{key}']").astype(np.float64) for key in reference}


def run_train(box, model, X, y, **kwargs) -> tuple[object, list[tuple[object, object, object]]]:
    """``train(model, X, y, **kwargs)`` recording each on_epoch call: (returned, [(epoch, loss, params after)])."""
    calls: list[tuple[object, object, object]] = []
    def on_epoch(epoch: object, mean_loss: object, params: object) -> None:
        calls.append((epoch, mean_loss, params))

    record = Callback(on_epoch, attach=(model, "params"))
    return box.call("train", model, X, y, on_epoch=record, **kwargs), calls


# ---- one exact step ---------------------------------------------------------------------------
def diagnose_step(start: dict, after: dict, expected: dict, lr: float) -> str:
    """What ``train`` did instead of one step ``start - lr * grads``, in one sentence."""
    keys = sorted(start)
    moved = np.concatenate([(after[k] - start[k]).ravel() for k in keys])
    step = np.concatenate([(expected[k] - start[k]).ravel() for k in keys])
    weights = np.concatenate([start[k].ravel() for k in keys])
    if not np.all(np.isfinite(moved)):
        return "the weights became NaN or inf after one step"
    if np.linalg.norm(moved) <= 1e-3 * np.linalg.norm(step):
        return ("no change: the update does not reach model.params (does sgd_step rebind a local, or does "
                "train update a copy of the weights?)")
    if np.linalg.norm(moved) > 0.5 * np.linalg.norm(weights):
        return ("the weights after train are unrelated to the ones it was given: train did not start from "
                "model.params (it re-initialised the model or loaded weights from elsewhere)")
    scale = float(moved @ step / (step @ step))
    if np.linalg.norm(moved - scale * step) <= 0.05 * np.linalg.norm(moved):
        if abs(scale * lr - 0.1) < 0.01 * 0.1:
            return f"{scale:.2g}x the expected step, which is lr=0.1 (the default): is the lr argument used?"
        if scale < 0:
            return f"{scale:.2g}x the expected step: the update goes up the gradient (params + lr * grads)"
        return f"{scale:.2g}x the expected step: is lr used as given (params - lr * grads)?"
    return ("several steps instead of one (or another update rule): with batch_size equal to the number of rows "
            "and epochs=1, train must take exactly one step; is batch_size (or epochs) used?")


@pytest.mark.points(4)
def check_exact_step(box, mnist, rng, context):
    """train from given weights takes exactly one step of lr x your own gradient (one batch, one epoch)"""
    rows, lr, seed = int(rng.integers(96, 200)), float(rng.uniform(0.02, 0.07)), int(rng.integers(1 << 30))
    X, y = mnist_rows(mnist, rng, rows)
    start = grader_weights(rng)
    _, expected = own_step(box, start, X, y, lr)
    model = model_with(box, start)
    box.call("train", model, X, y, epochs=1, batch_size=rows, lr=lr, seed=seed)
    after = params_after(box, model, start)
    for key in sorted(start):
        error = np.linalg.norm(after[key] - expected[key])
        allowed = STEP_RTOL * np.linalg.norm(expected[key] - start[key]) + WEIGHT_RTOL * np.linalg.norm(start[key])
        if not error <= allowed:
            diagnosis = diagnose_step(start, after, expected, lr)
            if diagnosis.startswith("the weights after train are unrelated"):
                context.training.ignores_given_weights = True
            step = np.linalg.norm(expected[key] - start[key])
            raise CheckFailure(f"train(model, X, y, epochs=1, batch_size={rows}, lr={lr:.4f}) on {rows} MNIST rows "
                               f"must leave model.params = W0 - lr * grads (grads from your own loss_and_grads at W0)",
                               f"{key} - W0 of norm {step:.4g} (one step)",
                               f"{key} - W0 of norm {np.linalg.norm(after[key] - start[key]):.4g}, "
                               f"{error:.3g} away from the step", diagnosis)


# ---- bookkeeping: on_epoch and the returned history --------------------------------------------
def expect_history(calls: list, returned: object, epochs: int, what: str) -> None:
    """on_epoch once per epoch with consecutive epoch numbers; a list of one loss per epoch returned."""
    if len(calls) != epochs:
        raise CheckFailure(what, f"{epochs} calls", f"{len(calls)} calls",
                           "on_epoch is never called" if not calls else
                           "is epochs used, and is on_epoch called once after each epoch (not per batch)?")
    numbers = [epoch for epoch, *_ in calls]
    if numbers not in (list(range(epochs)), list(range(1, epochs + 1))):
        raise CheckFailure(what, f"epoch numbers {list(range(epochs))} or {list(range(1, epochs + 1))}",
                           f"{show(numbers)}", "number the epochs consecutively, from 0 or from 1")
    history = as_history(returned)
    if history is None or len(history) != epochs:
        raise CheckFailure(what, f"a list of {epochs} floats", show(returned)[:200],
                           "return the list (or tuple, or 1-D array) of each epoch's mean loss" if history is None
                           else f"the history must hold one loss per epoch ({epochs}), not {len(history)}")


def _within_batch_spread(loss: float, single_batches: list[float]) -> bool:
    """Whether ``loss`` could be one batch's: the submission's batches come from its own shuffle, not the
    grader's, so its last batch can lie outside the few the grader computed; within BATCH_SPREAD
    standard deviations of theirs it is one of their kind."""
    middle, spread = float(np.mean(single_batches)), BATCH_SPREAD * float(np.std(single_batches))
    return min(min(single_batches), middle - spread) <= loss <= max(max(single_batches), middle + spread)


def expect_losses(what: str, losses: list, expected: list[float], rows: int, batches: int, where: str,
                  single_batches: list[float] = ()) -> None:
    """Each reported loss against the loss your own loss_and_grads gives as train sees it.

    ``single_batches``: your loss on single batches of the epoch's size, for the one diagnosis that
    needs them (a reported loss that is one batch's, not the epoch's mean).
    """
    shown = ", ".join("?" if loss is None else f"{loss:.6g}" for loss in losses)
    wanted = ", ".join(f"{loss:.6g}" for loss in expected)
    if all(loss is not None and np.isclose(loss, e, rtol=LOSS_RTOL) for loss, e in zip(losses, expected)):
        return
    if any(loss is None for loss in losses):
        diagnosis = "each epoch's mean loss must be one number"
    elif all(np.isclose(loss, rows * e, rtol=LOSS_RTOL) for loss, e in zip(losses, expected)):
        diagnosis = "a sum over the examples, not the mean loss: divide by the number of examples"
    elif batches > 1 and all(np.isclose(loss, batches * e, rtol=LOSS_RTOL) for loss, e in zip(losses, expected)):
        diagnosis = "a sum of the batches' losses, not their mean: divide by the number of batches"
    elif single_batches and all(_within_batch_spread(loss, single_batches) for loss in losses):
        diagnosis = ("one batch's loss (the last batch's?), not the epoch's mean: average the losses of all the "
                     "epoch's batches")
    elif batches > 1:
        diagnosis = "not the epoch's mean of your loss_and_grads's batch losses: average over the whole epoch"
    else:
        diagnosis = "each epoch's loss is loss_and_grads's loss at the weights the epoch starts from"
    raise CheckFailure(what, f"mean losses {wanted} ({where})", shown, diagnosis)


@pytest.mark.points(2)
def check_bookkeeping(box, mnist, rng):
    """train calls on_epoch once per epoch with its mean loss and returns those losses"""
    rows, lr, seed = int(rng.integers(96, 200)), float(rng.uniform(0.02, 0.07)), int(rng.integers(1 << 30))
    X, y = mnist_rows(mnist, rng, rows)
    start = grader_weights(rng)
    returned, calls = run_train(box, model_with(box, start), X, y, epochs=3, batch_size=rows, lr=lr, seed=seed)
    what = (f"train(epochs=3, batch_size={rows}, lr={lr:.4f}) on {rows} rows: on_epoch(epoch, mean_loss) once per "
            "epoch and the list of those losses returned")
    expect_history(calls, returned, 3, what)
    # One batch per epoch: each epoch's loss is your loss_and_grads's at the weights the epoch starts
    # from (the given ones, then those the previous epoch handed over), whatever the update did.
    starts = [start] + [_handed_over(params, start) for _, _, params in calls[:-1]]
    expected = [own_step(box, weights, X, y, 0.0)[0] for weights in starts]
    expect_losses(what, [as_number(loss) for _, loss, _ in calls], expected, rows, 1, "passed to on_epoch")
    expect_losses(what, [as_number(loss) for loss in as_history(returned)], expected, rows, 1, "returned")
    # Four equal batches and a learning rate too small to move the weights: each epoch's mean loss
    # is the mean of your own loss over a partition of the rows into 4 batches. For a loss that adds
    # up over examples (a mean, or the sum a wrong cross_entropy gives) every partition, so every
    # shuffle, gives the same: that is the loss as train sees it, whatever cross_entropy's own bugs
    # (they are its checks' to report). Judged only if two partitions agree and the weights stayed
    # put (an update that ignores lr is the exact-step check's to report).
    batch = int(rng.integers(24, 50))
    X, y = mnist_rows(mnist, rng, 4 * batch)
    partitions = [rng.permutation(4 * batch).reshape(4, batch) for _ in range(2)]
    batch_losses = [[as_number(own_step(box, start, X[part], y[part], 0.0)[0]) for part in partition]
                    for partition in partitions]
    means = [float(np.mean(losses)) if None not in losses else None for losses in batch_losses]
    additive = None not in means and np.isclose(means[0], means[1], rtol=LOSS_RTOL / 10)
    singles = [loss for losses in batch_losses for loss in losses]
    returned, calls = run_train(box, model_with(box, start), X, y, epochs=2, batch_size=batch, lr=1e-9, seed=seed)
    what = (f"train(epochs=2, batch_size={batch}, lr=1e-9) on {4 * batch} rows (4 batches): on_epoch(epoch, "
            "mean_loss) once per epoch and the list of those losses returned")
    expect_history(calls, returned, 2, what)
    history = as_history(returned)
    final = _handed_over(calls[-1][2], start)
    if additive and all(np.allclose(final[key], start[key], rtol=1e-6, atol=1e-8) for key in start):
        for where, losses in (("passed to on_epoch", [loss for _, loss, _ in calls]), ("returned", history)):
            expect_losses(what, [as_number(loss) for loss in losses], [means[0]] * 2, 4 * batch, 4, where, singles)


def _handed_over(params: object, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights on_epoch saw (model.params), as float64 arrays with ``like``'s keys and shapes."""
    if not isinstance(params, dict) or {k: np.shape(v) for k, v in params.items()} != \
            {k: v.shape for k, v in like.items()}:
        raise CheckFailure("model.params at on_epoch must keep its keys and shapes",
                           str({k: v.shape for k, v in like.items()}), show(params)[:200])
    return {key: as_array(params[key], f"model.params['{key}']").astype(np.float64) for key in like}


# ---- the timed run ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(box, mnist, context, calibration) -> TrainingRun:
    """One timed training run, shared by the checks below (recorded for the report)."""
    training = context.training
    budget = training.budget_seconds  # CPU seconds
    wall = WALL_FACTOR * budget
    left = context.seconds_left(DEADLINE_RESERVE + SHIPPING_SECONDS)
    if left < wall:  # the platform's deadline comes first: train gets what is left of it
        wall, training.deadline_limited = max(left, 1.0), True
    result = timed_training(box, mnist, epochs=context.epochs, time_budget=budget, seed=context.record.seed,
                            progress=context.progress, wall_limit=wall)
    training.seconds, training.accuracies, training.losses = round(result.seconds, 3), result.accuracies, result.losses
    training.epoch_seconds = [round(s, 3) for s in result.epoch_seconds]
    training.stopped = result.failure.message if result.failure else None
    training.final_accuracy = result.final_accuracy
    weights = [*result.handed, *([result.final_params] if result.final_params is not None else [])]
    training.start_correlations = [layer_correlations(w, result.start) for w in weights]
    training.review = review_reason(calibration, result.accuracies, result.seconds, result.failure is None,
                                    context.epochs, training.scaled_reference_seconds,
                                    ignores_given_weights=training.ignores_given_weights,
                                    correlations=training.start_correlations)
    training.review_overridden = training.review is not None and context.override_review
    if result.failure is not None and result.failure.kind == "import_failed":
        raise result.failure.again()  # told once, at the top of the report, like every other check's
    return result


@pytest.mark.points(4)
def check_observed(run, box, mnist, context):
    """train runs the contract's loop on the full data: every row once per epoch in a fresh shuffle, batches of
    batch_size, one step of the given lr with each batch's own gradients (observed as it ran)"""
    if not run.accuracies and run.failure is not None and run.observation.after_last is None:
        raise CheckFailure("the timed run must run to be observed", f"{context.epochs} observed epochs",
                           run.failure.message)
    verdict = judge(run.observation, run.index, run.handed, run.start, context.epochs, BATCH_SIZE, LR,
                    finished=run.failure is None)

    def own_gradients(weights: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        _, grads = loss_and_grads(box, model_with(box, weights), mnist.x_train[rows], mnist.y_train[rows])
        return {key: as_array(grads.get(key), f"grads['{key}']").astype(np.float64) for key in weights}

    findings = verdict.findings or first_batch_findings(verdict.first_batches, own_gradients)
    if findings:
        more = f" (and {len(findings) - 1} more finding(s))" if len(findings) > 1 else ""
        raise CheckFailure(f"train(model, X, y) on the {len(mnist.y_train)} training rows, observed as it ran",
                           "the contract's loop: CONTRACT §1", findings[0].text + more, _OBSERVED_HINT)


# In words, never as code: the check's texts ship in the student kit, which must not hold the solution.
_OBSERVED_HINT = ("a loop other than the contract's, in which each epoch draws a fresh permutation of the rows from "
                  "one generator made before the loop, runs every batch of batch_size rows through "
                  "model.loss_and_grads, and takes one sgd_step with the given lr per batch")


NOT_LEARNING_LOSS = 2.0  # mean training loss of the last epoch; ln(10) = 2.30 is a net that learns nothing
NOT_LEARNING_ACCURACY = 0.5


def _failure_diagnosis(run: TrainingRun) -> str:
    if run.losses and not np.all(np.isfinite(run.losses)):
        return "the loss became NaN/inf: check the softmax's max-shift and the learning rate"
    accuracy = run.final_accuracy
    # Told by the loss, not by an accuracy cut: a net that learns nothing wanders around chance (0.10 to about
    # 0.25 from one grade seed to the next), while any net that learns ends far below ln(10).
    if accuracy is not None and accuracy < NOT_LEARNING_ACCURACY and run.losses and \
            run.losses[-1] > NOT_LEARNING_LOSS:
        return (f"the model does not learn: accuracy {accuracy:.2f} and a training loss that stays near "
                "ln(10) = 2.30. If the loss does not fall at all, the labels may be shuffled apart from the images "
                "(index X and y with the same permutation), or the update may not reach model.params")
    if accuracy is not None and accuracy < 0.2:
        return "near chance accuracy: the weights the model ends with do not classify"
    return ""


@pytest.mark.timed
@pytest.mark.points(8)
def check_accuracy(run, calibration, award, context):
    """train reaches the calibrated test accuracy (the grader scores the final weights and every epoch's)"""
    accuracy = run.final_accuracy
    if accuracy is None:
        raise CheckFailure("train must finish and leave trained weights in model.params", f"{context.epochs} epochs",
                           run.failure.message if run.failure else "nothing to score")
    training = context.training
    if training.review is not None and not training.review_overridden:
        raise CheckFailure("test accuracy withheld for instructor review", "a physically plausible training run",
                           f"{accuracy:.4f}", training.review)
    credit = calibration.accuracy_credit(accuracy)
    curve = ", ".join(f"{a:.4f}" for a in run.accuracies) or "on_epoch never handed weights over"
    source = "the final weights" if run.final is not None else f"epoch {len(run.accuracies)} (train did not return)"
    if credit == 0.0:
        raise CheckFailure(f"test accuracy of {source}", f">= {calibration.full_credit:.4f} for full credit, "
                           f"> {calibration.zero_credit:.4f} for any", f"{accuracy:.4f} (per epoch: {curve})",
                           _failure_diagnosis(run))
    override = " (an instructor reviewed and accepted this run)" if training.review_overridden else ""
    award(credit, f"test accuracy {accuracy:.4f} of {source} (full credit from {calibration.full_credit:.4f}, "
                  f"none below {calibration.zero_credit:.4f}); per epoch: {curve}{override}")


@pytest.mark.timed
@pytest.mark.points(2)
def check_time(run, context):
    """train finishes within the time budget (CPU seconds, scaled to this machine's speed)"""
    budget, reference = context.training.budget_seconds, context.training.scaled_reference_seconds
    ratio = run.seconds / reference if reference else float("inf")
    if run.failure is not None and run.failure.kind == "timeout" and context.training.deadline_limited:
        raise CheckFailure(f"train was stopped at the grading deadline (--deadline) after {len(run.accuracies)} of "
                           f"{context.epochs} epochs", f"{context.epochs} epochs before the deadline",
                           f"{run.seconds:.1f} s were left for training", "the grade's overall time limit was "
                           "reached: ask your instructor, or make train faster")
    if run.failure is not None and run.failure.kind == "cpu_budget":
        raise CheckFailure(f"train was stopped at the time budget after {len(run.accuracies)} of "
                           f"{context.epochs} epochs", f"<= {budget:.1f} CPU s",
                           f"> {budget:.1f} CPU s ({ratio:.1f}x the reference's {reference:.1f} s on this machine)",
                           "per-sample Python loops are far slower than batched matrix products: vectorise "
                           "over the batch")
    if run.failure is not None and run.failure.kind == "timeout":
        raise CheckFailure(f"train was stopped after {len(run.accuracies)} of {context.epochs} epochs: it took "
                           f"{WALL_FACTOR:g}x its CPU budget in wall-clock time", f"<= {budget:.1f} CPU s",
                           f"{run.seconds:.1f} CPU s used", "train waits or sleeps (time.sleep, input, a lock): "
                           "it must compute and return")
    if run.failure is not None:
        raise CheckFailure("train must run to the end", f"{context.epochs} epochs", run.failure.message)

