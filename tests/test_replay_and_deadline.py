"""A grade can be replayed from its seed, honours an overall deadline, and a killed grade keeps its results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from grader.rubric.plugin import DEADLINE_RESERVE
from helpers import ROOT, grade, run_grader

pytestmark = pytest.mark.mnist


def test_a_grade_replays_exactly_from_its_seed(tmp_path):
    _, first = grade(ROOT / "reference", tmp_path / "first", "--only", "softmax,MLP,train", "--epochs", "1")
    assert f"--seed {first.seed}" in first.replay and f"inputs seed {first.seed}" in first.summary
    assert first.replay in (tmp_path / "first" / "report.html").read_text().replace("&#39;", "'")
    _, again = grade(ROOT / "reference", tmp_path / "again", "--only", "softmax,MLP,train", "--epochs", "1",
                     "--seed", str(first.seed))
    assert again.seed == first.seed
    assert [(r.name, r.score, r.status, r.output) for r in again.results] == \
        [(r.name, r.score, r.status, r.output) for r in first.results]
    assert again.training.accuracies == first.training.accuracies
    _, other = grade(ROOT / "reference", tmp_path / "other", "--only", "softmax", "--seed", str(first.seed + 1))
    assert other.seed == first.seed + 1


@pytest.mark.parametrize("seed", ["-1", "4294967296", "x"])
def test_a_seed_out_of_range_is_a_usage_error(seed):
    done = run_grader("grade", str(ROOT / "reference"), "--seed", seed)
    assert done.returncode == 2 and "seed" in done.stderr


@pytest.mark.slow
def test_the_timed_training_gets_what_the_deadline_leaves(tmp_path):
    deadline = 35.0
    started = time.monotonic()
    _, record = grade(ROOT / "reference", tmp_path / "out", "--only", "train", "--deadline", str(deadline))
    seconds = time.monotonic() - started
    training = record.training
    assert training.deadline_limited and training.stopped and 0 < len(training.accuracies) < 20
    time_check = next(r for r in record.results if r.name.startswith("train finishes"))
    assert "grading deadline" in time_check.output
    # Written before the deadline: the training stopped with the reserve for the reports still left.
    assert seconds < deadline + DEADLINE_RESERVE, seconds


def test_the_deadline_comes_from_the_environment_too(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(ROOT / "reference"), "--out", str(tmp_path),
                           "--only", "softmax"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MLP_GRADER_DEADLINE": "soon"})
    assert done.returncode == 2 and "MLP_GRADER_DEADLINE" in done.stderr


def test_a_grade_killed_midway_keeps_what_it_graded(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(ROOT / "reference"), "--out", str(out)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    tests: list = []
    while time.monotonic() < deadline and len(tests) < 20:  # well into the checks, before the timed training ends
        time.sleep(0.2)
        try:
            tests = json.loads((out / "results.json").read_text())["tests"]
        except (OSError, ValueError, KeyError):
            continue
    os.killpg(process.pid, signal.SIGKILL)  # as a platform does at its time limit: no chance to clean up
    process.wait()
    results = json.loads((out / "results.json").read_text())
    assert results["extra_data"]["incomplete"] and len(results["tests"]) >= 20
    assert results["score"] == sum(t["score"] for t in results["tests"]) > 0
    assert "incomplete" in results["output"]
