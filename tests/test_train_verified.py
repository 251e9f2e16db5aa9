"""train is verified, not just scored: implausible runs go to review, final weights are always graded.

The exact-step and bookkeeping checks are exercised by the corpus (tests/submission_corpus.py:
train_ignores_lr, history_of_batch_sums, ...). Here: the plausibility rule against the calibration,
and whole grades of submissions that cheat or skip on_epoch, through every output that carries the flag.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from grader.calibration import load as load_calibration
from grader.checks.check_train import _failure_diagnosis
from grader.contract import POINTS
from grader.plausibility import TIME_FLOOR_FACTOR, accuracy_ceiling, review_reason
from grader.training import TrainingRun
from helpers import grade, reference_with, run_grader
from reference.mlp import MLP, train
from submission_corpus import train_variant

CALIBRATION = load_calibration()
BAND = CALIBRATION.raw["accuracy"]["reference"]["per_epoch"]


def test_no_calibrated_curve_is_implausible():
    """The band's mean and lowest runs, and the mean three spreads up, are never flagged (fast or slow)."""
    lifted = [m + 3 * s for m, s in zip(BAND["mean"], BAND["std"])]
    for curve in (BAND["mean"], BAND["min"], lifted):
        assert review_reason(CALIBRATION, curve, 18.7, True, 20, 18.7) is None
        assert review_reason(CALIBRATION, curve, 0.45 * 18.7, True, 20, 18.7) is None  # float32, lean backward


def test_pretrained_accuracy_or_impossible_speed_is_flagged():
    final = CALIBRATION.raw["accuracy"]["reference"]["final"]
    assert accuracy_ceiling(CALIBRATION, 0) < min(final)  # a fully trained model is above epoch 1's ceiling
    assert "after epoch 1" in review_reason(CALIBRATION, [min(final)] * 20, 18.7, True, 20, 18.7)
    too_fast = TIME_FLOOR_FACTOR * 18.7 * 0.9
    assert "faster than this machine" in review_reason(CALIBRATION, BAND["mean"], too_fast, True, 20, 18.7)
    assert review_reason(CALIBRATION, BAND["mean"][:3], too_fast, False, 20, 18.7) is None  # stopped: no speed claim
    assert "does not start" in review_reason(CALIBRATION, [], 18.7, True, 20, 18.7, ignores_given_weights=True)


@pytest.fixture(scope="module")
def pretrained(mnist, tmp_path_factory):
    """Weights of the reference after 5 epochs (above epoch 1's ceiling), saved as a student might ship them."""
    model = MLP(seed=0)
    train(model, mnist.x_train, mnist.y_train, epochs=5)
    path = tmp_path_factory.mktemp("weights") / "weights.npz"
    np.savez(path, **model.params)
    return path


# Loads the shipped weights only for the real training set, so the small-batch checks see an honest train;
# sleeps so that the time looks plausible: only the learning curve can give it away.
LOADS_WEIGHTS = '''
import os, time


def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    if len(X) < 10000:
        return _honest_train(model, X, y, epochs, batch_size, lr, seed, on_epoch)
    saved = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.npz"))
    for key in model.params:
        model.params[key][...] = saved[key]
    for epoch in range(epochs):
        time.sleep(0.2)
        if on_epoch is not None:
            on_epoch(epoch, 0.05)
    return [0.05] * epochs
'''


@pytest.mark.mnist
@pytest.mark.slow
def test_pretrained_weights_are_held_for_review_everywhere(pretrained, tmp_path):
    cheat = reference_with(tmp_path / "class" / "cheat", "\n_honest_train = train\n" + LOADS_WEIGHTS,
                  **{"weights.npz": pretrained.read_bytes()})
    done, record = grade(cheat, tmp_path / "graded" / "cheat", "--only", "train")
    accuracy = next(r for r in record.results if "accuracy" in r.name)
    assert record.review and "after epoch 1" in record.review
    assert accuracy.score == 0 and "withheld for instructor review" in accuracy.output
    assert "review: the training's accuracy points are withheld" in done.stdout
    assert json.loads((tmp_path / "graded" / "cheat" / "results.json").read_text())["extra_data"]["review"]
    assert "Held for instructor review" in (tmp_path / "graded" / "cheat" / "report.html").read_text()
    # The honest parts of its train keep their points: the verdict is on the run, not on the code. What it
    # did on the full data (no batches at all) is the observed loop's to report.
    observed = next(r for r in record.results if "the contract's loop" in r.name)
    assert observed.score == 0 and "nothing was observed" in observed.output
    assert record.score == POINTS["train"] - accuracy.max_score - observed.max_score

    batch = run_grader("batch", str(tmp_path / "class"), "--out", str(tmp_path / "graded"))
    assert batch.returncode == 0, batch.stderr
    with open(tmp_path / "graded" / "grades.csv", newline="") as stream:
        (row,) = csv.DictReader(stream)
    assert row["student"] == "cheat" and "after epoch 1" in row["review"]
    assert 'class="review"' in (tmp_path / "graded" / "index.html").read_text()

    _, overridden = grade(cheat, tmp_path / "graded" / "cheat", "--only", "train", "--override-review")
    assert overridden.review is None and overridden.training.review_overridden
    assert next(r for r in overridden.results if "accuracy" in r.name).score > 0


@pytest.mark.mnist
def test_a_train_faster_than_the_machine_can_compute_is_held_for_review(tmp_path):
    """Twenty 'epochs' of 600 rows each: honest on small inputs, but a 20-epoch run it never did."""
    code = train_variant().replace("    n = X.shape[0]\n", "    n = min(X.shape[0], 600)\n")
    skimmer = reference_with(tmp_path / "skimmer", code)
    _, record = grade(skimmer, tmp_path / "out", "--only", "train")
    assert record.review and "faster than this machine" in record.review
    assert next(r for r in record.results if "accuracy" in r.name).score == 0


@pytest.mark.mnist
@pytest.mark.slow
def test_a_train_that_never_calls_on_epoch_is_still_graded_on_its_final_weights(tmp_path):
    silent = reference_with(tmp_path / "silent", train_variant().replace("on_epoch(epoch, history[-1])", "pass"))
    _, record = grade(silent, tmp_path / "out", "--only", "train")
    scores = {r.name.split(" ")[1]: r for r in record.results}
    assert scores["reaches"].score == scores["reaches"].max_score, scores["reaches"].output
    assert scores["calls"].score == 0 and "on_epoch is never called" in scores["calls"].output
    assert record.training.accuracies == [] and record.training.final_accuracy > CALIBRATION.full_credit
    assert record.review is None


@pytest.mark.parametrize("accuracy", [0.11, 0.2195, 0.3])
def test_a_net_that_learns_nothing_is_told_so_whatever_chance_accuracy_it_wanders_to(accuracy):
    """Labels shuffled apart from the images leave the loss at ln(10); the accuracy it ends with depends on
    the grade's seed (0.22 in one CI run, where a cut at 0.2 dropped the diagnosis)."""
    stuck = TrainingRun(accuracies=[0.15] * 19 + [accuracy], losses=[2.31] * 20, final=accuracy)
    assert "shuffled apart" in _failure_diagnosis(stuck)
    learning = TrainingRun(accuracies=[0.3] * 20, losses=[1.2] * 20, final=0.3)
    assert "shuffled apart" not in _failure_diagnosis(learning)
