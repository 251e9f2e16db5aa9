"""The timed training run: ``train`` of a submission on real MNIST, measured and evaluated by the parent.

The child trains; after every epoch its ``on_epoch`` hands the model's weights to the parent,
which computes test accuracy with its own forward pass, and once ``train`` returns the parent
reads the final weights from ``model.params`` and scores them too (a train that never calls
``on_epoch`` is still graded on what it learned). The time spent evaluating is not the
submission's: epochs are timed between callbacks. Over the time budget the call is stopped and
the run keeps the epochs it handed over.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from grader.contract import BATCH_SIZE, EPOCHS, LR, SEED, SIZES
from grader.data import MNIST
from grader.evaluation import accuracy
from grader.sandbox import Callback, CallFailed, Sandbox


@dataclass
class TrainingRun:
    """What one timed run produced. Seconds are wall-clock training time, evaluation excluded."""

    accuracies: list[float] = field(default_factory=list)  # test accuracy after each finished epoch
    losses: list[float] = field(default_factory=list)  # mean training loss each epoch reported
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failure: CallFailed | None = None  # why it did not finish (timeout: over budget)
    final: float | None = None  # test accuracy of model.params after train returned

    @property
    def final_accuracy(self) -> float | None:
        """The accuracy graded: the final weights', else the last epoch handed over; None: nothing to grade."""
        if self.final is not None:
            return self.final
        return self.accuracies[-1] if self.accuracies else None


def timed_training(box: Sandbox, data: MNIST, epochs: int = EPOCHS, time_budget: float | None = None,
                   seed: int = SEED) -> TrainingRun:
    """Train ``MLP(seed=seed)`` of the submission in ``box`` for ``epochs`` on ``data``'s training set.

    Each epoch's weights are evaluated on a parent thread while the child trains on (NumPy's matmul
    releases the GIL), so evaluation costs the submission no time and the grade little.
    """
    run = TrainingRun()
    try:
        model = box.call("MLP", sizes=SIZES, seed=seed)
    except CallFailed as failure:
        run.failure = failure
        return run
    mark = time.monotonic()
    evaluations: list[Future[float]] = []

    def on_epoch(epoch: object, loss: object, params: object) -> None:
        nonlocal mark
        run.epoch_seconds.append(time.monotonic() - mark)
        run.losses.append(float(loss) if isinstance(loss, (int, float, np.floating)) else float("nan"))
        evaluations.append(evaluator.submit(_test_accuracy, params, data))
        mark = time.monotonic()

    with ThreadPoolExecutor(max_workers=1) as evaluator:
        try:
            box.call("train", model, data.x_train, data.y_train, epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                     seed=seed, on_epoch=Callback(on_epoch, attach=(model, "params")), timeout=time_budget)
        except CallFailed as failure:
            run.failure = failure
        run.seconds = box.last_seconds
        if run.failure is None:
            try:
                run.final = _test_accuracy(box.getattr(model, "params"), data)
            except CallFailed as failure:
                run.failure = failure
    run.accuracies = [evaluation.result() for evaluation in evaluations]
    return run


def _test_accuracy(params: object, data: MNIST) -> float:
    """Test accuracy of the weights an epoch handed over; weights that do not form the network score 0."""
    if not isinstance(params, dict):
        return 0.0
    try:
        return accuracy(params, data.x_test, data.y_test)
    except (ValueError, TypeError):
        return 0.0
