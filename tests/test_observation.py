"""The observed epoch's rows read against the parent's fingerprints of real MNIST (no training); the child's
recorder."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bench.observation_seeds import record_of
from grader.contract import BATCH_SIZE
from grader.observation import Observation, fingerprints, judge, rows_findings
from grader.sandbox.observe import FOLDED_BATCHES, ROUTE, Recorder, recording
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


@pytest.mark.parametrize(("sizes", "told"), [
    ("spread", "(np.array_split?): take batch_size rows per batch"),  # 60000 rows in 937 batches: 64 and 65
    ("doubled", "is batch_size used?")])
def test_batch_sizes_other_than_batch_size_name_their_likely_cause(mnist, sizes, told):
    index = row_index(mnist.x_train, 0, start_weights(0))
    n = len(mnist.x_train)
    record = record_of(mnist.x_train, index, np.random.default_rng(0).permutation(n))
    spread = np.diff(np.linspace(0, n, n // BATCH_SIZE + 1).astype(int))
    record.sizes = spread if sizes == "spread" else np.append(np.full(n // 128, 128), n % 128)
    findings, _ = rows_findings(1, record, index, BATCH_SIZE, None)
    assert [f.text for f in findings if "ran batches of" in f.text][0].endswith(told), findings


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
    recorder = Recorder(columns, projection, np.ones(10), summed_rows, shapes)
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


def alike_rows(X: np.ndarray, index) -> list[np.ndarray]:
    """The groups of rows of ``X`` that share a fingerprint without being the same row."""
    found = []
    for group in np.nonzero(index.group_sizes > 1)[0]:
        rows = index.order[index.group_of_sorted == group]
        if not all(np.array_equal(X[rows[0]], X[other]) for other in rows[1:]):
            found.append(rows)
    return found


# Seed 70 draws fingerprint pixels in which rows 37614 and 15396 are alike, and the reference's first
# batch of epoch 1 holds one of them: the check recomputed that batch on the other and took the reference's
# own gradients for forged ones (4 points lost in about 1 grade in 100).
@pytest.mark.parametrize("seed", [0, 70])
def test_the_first_batch_is_recomputed_on_its_own_rows_not_on_rows_alike_in_the_fingerprint(mnist, seed):
    X = mnist.x_train
    index = row_index(X, seed, start_weights(seed))
    groups = alike_rows(X, index)
    assert groups, "this seed's fingerprint tells every MNIST row apart: the test needs one that does not"
    others = np.setdiff1d(np.arange(len(X)), np.concatenate(groups))[:BATCH_SIZE - 1]
    for rows in groups:
        for row in rows:  # whichever of the look-alikes the batch holds
            batch = np.concatenate([[row], others])
            record = record_of(X, index, np.concatenate([batch, np.setdiff1d(np.arange(len(X)), batch)]))
            assert np.array_equal(index.first_rows(record.first_prints, record.first_whole), batch)


def test_a_first_batch_recorded_with_rows_that_were_not_sent_is_told(mnist):
    """The whole-row print is checked too: a record whose first batch matches the fingerprint's pixels of
    rows the parent sent but not the rest of them is not recomputed on those rows, and the student is told."""
    X = mnist.x_train[:640]
    start = {"W1": np.zeros((4, 3))}
    index = row_index(X, 5, start)
    rows = np.random.default_rng(5).permutation(len(X))
    record = record_of(X, index, rows)
    record.first_grads, record.lrs[:] = {"W1": np.zeros((4, 3))}, 0.1  # the steps of a loop with lr=0.1
    assert np.array_equal(judge(Observation(epochs=[record]), index, [], start, 1, BATCH_SIZE, 0.1,
                                finished=True).first_batches[0][2], rows[:BATCH_SIZE])
    outside = np.setdiff1d(np.arange(X.shape[1]), index.columns)[0]  # a pixel the fingerprint leaves out
    record.first_whole = record.first_whole + index.whole_projection[outside] * 0.5
    verdict = judge(Observation(epochs=[record]), index, [], start, 1, BATCH_SIZE, 0.1, finished=True)
    assert verdict.first_batches == []
    assert [f.text for f in verdict.findings] == [
        "the first batch of epoch 1 was recorded with rows that are not rows of the X given to train: take each "
        "batch from X as it is (X[batch], y[batch])"]


STUDENT_MODULE = """
import functools

import numpy as np


def logged(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)
    return wrapper


{step}


update = sgd_step


def apply(params, grads, lr, step=sgd_step):
    step(params, grads, lr)


class Model:
    def __init__(self):
        self.params = {{"W1": np.zeros((6, 2))}}

    def loss_and_grads(self, inputs, labels):
        return 0.0, {{"W1": np.ones((6, 2)) * inputs.sum()}}
"""
PLAIN_STEP = """def sgd_step(params, grads, learning_rate):
    for key in params:
        params[key] -= learning_rate * grads[key]"""
# A plain function, one with a closure, and one whose name is no identifier.
STEP_FORMS = {"plain": PLAIN_STEP, "decorated": "@logged\n" + PLAIN_STEP,
              "lambda": "sgd_step = lambda params, grads, learning_rate: "
                        "[params.__setitem__(key, params[key] - learning_rate * grads[key]) for key in params]"}
STEPS = {"position": lambda m, params, grads: m.sgd_step(params, grads, 0.5),
         "keyword": lambda m, params, grads: m.sgd_step(params=params, grads=grads, learning_rate=0.5),
         "alias": lambda m, params, grads: m.update(params, grads, 0.5),  # bound to the function at import
         "default_argument": lambda m, params, grads: m.apply(params, grads, 0.5)}


COLUMNS, PROJECTION = np.array([1, 4]), np.array([1.0, 2.0])  # what the recorder of these tests prints


@contextmanager
def student_module(tmp_path: Path, step: str = "plain", extra: str = "") -> Iterator[types.ModuleType]:
    """``STUDENT_MODULE`` (and ``extra``) imported from ``tmp_path`` as the child imports a submission."""
    (tmp_path / "student.py").write_text(STUDENT_MODULE.format(step=STEP_FORMS[step]) + extra)
    spec = importlib.util.spec_from_file_location("student_for_the_recorder", tmp_path / "student.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def recorded(module: types.ModuleType, model: object, tmp_path: Path):
    return recording(module, model, str(tmp_path), COLUMNS, PROJECTION, np.ones(6), {"W1": np.array([0, 3])})


@pytest.mark.parametrize("form", list(STEP_FORMS))
@pytest.mark.parametrize("reached_by", list(STEPS))
def test_the_recorder_sees_every_call_of_sgd_step_by_whatever_name_and_parameter_names(tmp_path, reached_by, form):
    """The grader calls loss_and_grads and sgd_step positionally, so their parameters may have any names;
    train may pass the batch and the lr by those names (the wrappers once took only X, y and lr), and reach
    sgd_step through a name bound at import (a default argument kept it from the recorder: 86 points for
    correct code). A decorated sgd_step is a function with a closure; a lambda's name is no identifier."""
    with student_module(tmp_path, form) as module:
        model, X, code = module.Model(), np.arange(24.0).reshape(4, 6), module.sgd_step.__code__
        with recorded(module, model, tmp_path) as recorder:
            loss, grads = model.loss_and_grads(inputs=X, labels=np.zeros(4)) if reached_by == "keyword" else \
                model.loss_and_grads(X, np.zeros(4))
            STEPS[reached_by](module, model.params, grads)
            record = recorder.take()
    assert record["sizes"].tolist() == [4] and record["lrs"].tolist() == [0.5] and record["foreign"] == 0
    assert np.allclose(record["fingerprints"], fingerprints(X, COLUMNS, PROJECTION))
    assert np.allclose(record["first_whole"], X.sum(axis=1))
    assert np.allclose(record["grad_sum"]["W1"], X.sum())
    assert np.allclose(model.params["W1"], -0.5 * X.sum())  # the step itself went through
    # and the functions are as they were
    assert module.sgd_step.__code__ is code and not [name for name in vars(module) if name.startswith(ROUTE[:12])]


def test_the_recorder_sees_loss_and_grads_called_through_the_class_and_not_another_models_calls(tmp_path):
    """``Model.loss_and_grads(model, X, y)`` is the model's batch too (an instance patch missed it: 86 points for
    correct code); a second model's calls (a copy kept for validation) are not the timed run's."""
    with student_module(tmp_path) as module:
        model, other, X = module.Model(), module.Model(), np.arange(24.0).reshape(4, 6)
        method = module.Model.loss_and_grads
        with recorded(module, model, tmp_path) as recorder:
            _, grads = module.Model.loss_and_grads(model, X, np.zeros(4))
            other.loss_and_grads(X[:2], np.zeros(2))  # recorded, it would be the batch the step takes
            module.sgd_step(model.params, grads, 0.5)
            record = recorder.take()
    assert record["sizes"].tolist() == [4] and record["foreign"] == 0
    assert np.allclose(record["fingerprints"], fingerprints(X, COLUMNS, PROJECTION))
    assert module.Model.loss_and_grads is method and "loss_and_grads" not in vars(model)


@pytest.mark.parametrize("form", ["held_method", "callable_step"])
def test_what_is_no_plain_function_is_wrapped_where_it_is_named_and_put_back(tmp_path, form):
    """No function code to route: a method the model holds as an attribute (set in ``__init__``) is wrapped on
    the model, an sgd_step that is a callable object in the submission's modules."""
    extra = ("\n\nclass Held(Model):\n    def __init__(self):\n        super().__init__()\n"
             "        self.loss_and_grads = self.compute\n\n    def compute(self, inputs, labels):\n"
             "        return Model.loss_and_grads(self, inputs, labels)\n") if form == "held_method" else (
        "\n\nclass Step:\n    def __call__(self, params, grads, learning_rate):\n"
        "        _plain_step(params, grads, learning_rate)\n\n\n_plain_step, sgd_step = sgd_step, Step()\n")
    with student_module(tmp_path, extra=extra) as module:
        model = module.Held() if form == "held_method" else module.Model()
        X, held, step = np.arange(24.0).reshape(4, 6), model.loss_and_grads, module.sgd_step
        with recorded(module, model, tmp_path) as recorder:
            module.sgd_step(model.params, model.loss_and_grads(X, np.zeros(4))[1], 0.5)
            record = recorder.take()
    assert record["sizes"].tolist() == [4] and record["lrs"].tolist() == [0.5] and record["foreign"] == 0
    assert model.loss_and_grads == held and module.sgd_step is step
    assert np.allclose(model.params["W1"], -0.5 * X.sum())


def test_a_loss_and_grads_call_that_no_step_takes_is_an_evaluation_not_a_batch():
    """The loss of all rows printed each epoch through loss_and_grads, before the first batch or after the
    last: not a batch (its rows are not counted as used again, nor taken as the first batch)."""
    rng = np.random.default_rng(4)
    columns, projection, whole_projection = np.array([0, 3]), np.array([1.0, 2.0]), rng.uniform(size=5)
    recorder = Recorder(columns, projection, whole_projection, {"W1": np.arange(2)}, {"W1": (2, 3)})
    everything = rng.random((10, 5))
    batches = [everything[:4], everything[4:8], everything[8:]]
    grads = {"W1": np.ones((2, 3))}
    for position, X in enumerate([everything, *batches, everything]):
        recorder.saw_batch(X)
        recorder.saw_grads(grads)
        if 1 <= position <= 3:
            recorder.saw_step(grads, 0.1)
    record = recorder.take()
    assert record["sizes"].tolist() == [4, 4, 2] and record["foreign"] == 0
    assert np.allclose(record["fingerprints"], fingerprints(everything, columns, projection))
    assert np.allclose(record["first_whole"], batches[0] @ whole_projection)
