"""The timed training run: ``train`` of a submission on real MNIST, measured and evaluated by the parent.

The run starts from weights the grader draws for this grade (``start_weights``), written into
``model.params`` before ``train`` is called. The child trains, observed (``sandbox/observe.py``);
after every epoch its ``on_epoch`` hands the model's weights and that epoch's record to the
parent, which computes test accuracy with its own forward pass and how much of the start each
layer still carries, and once ``train`` returns the parent reads the final weights from
``model.params`` and scores them too (a train that never calls ``on_epoch`` is still graded on
what it learned). The time spent evaluating is not the submission's: epochs are timed between
callbacks. Over the time budget the call is stopped and the run keeps the epochs it handed over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from grader.contract import BATCH_SIZE, EPOCHS, LR, SEED, SIZES
from grader.data import MNIST
from grader.evaluation import accuracy
from grader.observation import Observation, RowIndex, read_record
from grader.sandbox import Callback, CallFailed, Sandbox

# The wall-clock safety net of a CPU budget: half a CPU (Gradescope) or a machine loaded twice over
# still trains within it; a train that sleeps or blocks does not.
WALL_FACTOR = 3.0


@dataclass
class TrainingRun:
    """What one timed run produced. Seconds are CPU seconds of the submission's process tree in train."""

    accuracies: list[float] = field(default_factory=list)  # test accuracy after each finished epoch
    losses: list[float] = field(default_factory=list)  # mean training loss each epoch reported
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failure: CallFailed | None = None  # why it did not finish (timeout: over budget)
    final: float | None = None  # test accuracy of model.params after train returned
    start: dict[str, np.ndarray] = field(default_factory=dict)  # the weights train was given
    handed: list[dict[str, np.ndarray]] = field(default_factory=list)  # float64 weights of each on_epoch (if whole)
    final_params: dict[str, np.ndarray] | None = None  # float64 model.params after train returned
    observation: Observation = field(default_factory=Observation)
    index: RowIndex | None = None  # the fingerprints of the training rows the record is read against

    @property
    def final_accuracy(self) -> float | None:
        """The accuracy graded: the final weights', else the last epoch handed over; None: nothing to grade."""
        if self.final is not None:
            return self.final
        return self.accuracies[-1] if self.accuracies else None


@dataclass(frozen=True)
class EpochProgress:
    """One epoch of the timed run, scored: for a progress line. Seconds are training time so far."""

    epoch: int  # 1-based
    epochs: int
    accuracy: float
    mean_loss: float
    seconds: float
    budget: float | None


def start_weights(seed: int, sizes: tuple[int, ...] = SIZES) -> dict[str, np.ndarray]:
    """The timed run's starting weights for a grade's ``seed``: He-normal ``Wk (sizes[k-1], sizes[k])``,
    zero biases, float64; drawn apart from every other input of the grade, the same on a replay."""
    rng = np.random.default_rng([seed, 19])
    weights = {}
    for k in range(1, len(sizes)):
        weights[f"W{k}"] = rng.normal(size=(sizes[k - 1], sizes[k])) * np.sqrt(2 / sizes[k - 1])
        weights[f"b{k}"] = np.zeros(sizes[k])
    return weights


def row_index(X: np.ndarray, seed: int, start: dict[str, np.ndarray]) -> RowIndex:
    """What the timed run of a grade's ``seed`` is observed against: fingerprints of ``X (N, D)`` and the
    coordinates of ``start``'s parameters, drawn apart from every other input of the grade."""
    return RowIndex.of(X, np.random.default_rng([seed, 23]), {key: value.shape for key, value in start.items()})


def layer_correlations(weights: dict[str, np.ndarray], start: dict[str, np.ndarray]) -> dict[str, float]:
    """Pearson correlation of each weight matrix with the one train started from (biases start at zero)."""
    found = {}
    for key in sorted(k for k in start if k.startswith("W")):
        a, b = weights[key].ravel(), start[key].ravel()
        found[key] = float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 else 0.0
    return found


def timed_training(box: Sandbox, data: MNIST, epochs: int = EPOCHS, time_budget: float | None = None,
                   seed: int = SEED, progress: Callable[[EpochProgress], None] | None = None,
                   wall_limit: float | None = None) -> TrainingRun:
    """Train the submission's ``MLP`` in ``box`` from ``start_weights(seed)`` for ``epochs`` on ``data``'s
    training set, observed, within ``time_budget`` CPU seconds (None: no budget of its own).

    A loaded machine slows the wall clock, not the CPU time train needs, so the budget is the same
    on both; ``wall_limit`` (default WALL_FACTOR x the budget) still ends a train that sleeps or blocks.

    Each epoch's weights are evaluated on a parent thread while the child trains on (NumPy's matmul
    releases the GIL), so evaluation costs the submission no time and the grade little. ``progress``
    sees each epoch once it is scored (on that thread).
    """
    run = TrainingRun(start=start_weights(seed))
    shapes = {key: value.shape for key, value in run.start.items()}
    run.index = index = row_index(data.x_train, seed, run.start)
    box.renew()  # a fresh child: train gets the submission's whole memory, not what the checks left in the heap
    try:
        model = box.call("MLP", sizes=SIZES, seed=seed)
        box.write_params(model, run.start)
    except CallFailed as failure:
        run.failure = failure
        return run
    mark = box.cpu_seconds()
    evaluations: list[Future[float]] = []

    def on_epoch(epoch: object, mean_loss: object, params: object, observed: object) -> None:
        nonlocal mark
        now = box.cpu_seconds()
        run.epoch_seconds.append(now - mark)
        mark = now
        run.observation.epochs.append(read_record(observed, shapes, index))
        loss = as_number(mean_loss)
        run.losses.append(float("nan") if loss is None else loss)
        if len(evaluations) >= epochs:
            # More on_epoch calls than epochs (one per batch, say): observed and counted, for the observation
            # check to tell, but neither kept nor scored, which would cost the grade a test-set pass and
            # the parent a copy of the weights per call.
            return
        weights = as_weights(params, shapes)
        if weights is not None and len(run.handed) == len(run.epoch_seconds) - 1:
            run.handed.append(weights)
        evaluation = evaluator.submit(_test_accuracy, params, data)
        if progress is not None:
            shown = EpochProgress(len(evaluations) + 1, epochs, 0.0, run.losses[-1], sum(run.epoch_seconds),
                                  time_budget)
            evaluation.add_done_callback(lambda done: progress(replace(shown, accuracy=done.result())))
        evaluations.append(evaluation)

    with ThreadPoolExecutor(max_workers=1) as evaluator:
        try:
            box.call("train", model, data.x_train, data.y_train, epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                     seed=seed, on_epoch=Callback(on_epoch, attach=(model, "params"), observed=True),
                     cpu_timeout=math.inf if time_budget is None else time_budget,
                     timeout=wall_limit or (time_budget and WALL_FACTOR * time_budget),
                     observe={"handle": model, **index.observed()})
        except CallFailed as failure:
            run.failure = failure
        run.seconds = box.last_cpu_seconds
        run.observation.after_last = read_record(box.last_observed, shapes, index)
        if run.failure is None:
            try:
                params = box.getattr(model, "params")
                run.final, run.final_params = _test_accuracy(params, data), as_weights(params, shapes)
            except CallFailed as failure:
                run.failure = failure
    run.accuracies = [evaluation.result() for evaluation in evaluations]
    return run


def as_number(value: object) -> float | None:
    """A Python or NumPy number (a one-element array too) as a float; None for anything else."""
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
        return float(value.reshape(()))
    return None


def as_history(value: object) -> list[object] | None:
    """A returned history as a list: from a list, a tuple or a 1-D array (CONTRACT §1); None otherwise."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return list(value)
    return None


def as_weights(params: object, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
    """``model.params`` as float64 arrays when it has exactly the expected keys and shapes, else None."""
    if not isinstance(params, dict) or set(params) != set(shapes):
        return None
    if not all(isinstance(params[k], np.ndarray) and params[k].shape == shape for k, shape in shapes.items()):
        return None
    return {key: params[key].astype(np.float64) for key in shapes}


def _test_accuracy(params: object, data: MNIST) -> float:
    """Test accuracy of the weights an epoch handed over; weights that do not form the network score 0."""
    if not isinstance(params, dict):
        return 0.0
    try:
        return accuracy(params, data.x_test, data.y_test)
    except (ValueError, TypeError):
        return 0.0
