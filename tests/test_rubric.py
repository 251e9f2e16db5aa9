"""The rubric end to end, through the real command line: fair in both directions.

Correct-but-different code gets full marks; each buggy submission loses points on exactly
the components its bug touches, with feedback naming the mistake; results.json follows
CONTRACT §3 whatever the submission does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.calibration import CALIBRATION_FILE
from grader.rubric.plugin import COMPONENTS
from submission_corpus import BUGGY, CORRECT, REFERENCE_SOURCE

pytestmark = pytest.mark.mnist
ROOT = Path(__file__).resolve().parents[1]
WITHOUT_TRAINING = ",".join(c for c in COMPONENTS if c != "train")


def grade(submission: Path, out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((out / "results.json").read_text())


def by_component(results: dict) -> dict[str, tuple[float, float]]:
    totals: dict[str, list[float]] = {}
    for test in results["tests"]:
        score, maximum = totals.setdefault(test["tags"][0], [0.0, 0.0])
        totals[test["tags"][0]] = [score + test["score"], maximum + test["max_score"]]
    return {component: (score, maximum) for component, (score, maximum) in totals.items()}


def assert_contract_format(results: dict) -> None:
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "tags", "visibility"} <= set(test)
        assert len(test["tags"]) == 1 and test["tags"][0] in COMPONENTS
        assert test["status"] in ("passed", "failed")


def test_reference_scores_full_marks(tmp_path):
    done, results = grade(ROOT / "reference", tmp_path)
    assert_contract_format(results)
    assert results["score"] == results["max_score"] == 100.0, [t for t in results["tests"] if t["status"] != "passed"]
    assert set(by_component(results)) == set(COMPONENTS)
    assert "total" in done.stdout and (tmp_path / "report.html").read_text().count('class="status-passed"') == len(
        results["tests"])


def test_template_scores_zero_with_not_implemented_everywhere(tmp_path):
    _, results = grade(ROOT, tmp_path, "--epochs", "1")  # the kit's layout: student_template/mlp.py
    assert_contract_format(results)
    assert results["score"] == 0.0
    for test in results["tests"]:
        assert "not implemented yet" in test["output"], test
        assert "Traceback" not in test["output"]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_but_different_code_gets_full_marks(name, tmp_path):
    _, results = grade(CORRECT[name].write(tmp_path / name), tmp_path / "out")
    lost = {c: v for c, v in by_component(results).items() if v[0] < v[1]}
    assert not lost, [t["output"] for t in results["tests"] if t["status"] != "passed" or t["score"] < t["max_score"]]


@pytest.mark.parametrize("name", BUGGY)
def test_a_bug_loses_points_exactly_where_it_is(name, tmp_path):
    submission = BUGGY[name]
    args = () if submission.trains else ("--only", WITHOUT_TRAINING)
    _, results = grade(submission.write(tmp_path / name), tmp_path / "out", *args)
    totals = by_component(results)
    losers = {c for c, (score, maximum) in totals.items() if score < maximum}
    expected = submission.losers if submission.trains else submission.losers - {"train"}
    assert losers == expected, {c: totals[c] for c in losers ^ expected}
    feedback = " ".join(t["output"] for t in results["tests"] if t["status"] == "failed")
    assert submission.diagnosis.lower() in feedback.lower(), feedback


def test_only_runs_the_named_components(tmp_path):
    _, results = grade(ROOT / "reference", tmp_path, "--only", "softmax,sgd_step")
    assert {t["tags"][0] for t in results["tests"]} == {"softmax", "sgd_step"}
    assert results["score"] == results["max_score"] == 14.0


@pytest.mark.parametrize("args, message", [(("/no/such/folder",), "no such file or directory"),
                                           ((str(ROOT / "tests"),), "no mlp.py"),
                                           ((str(ROOT / "reference"), "--only", "bogus"), "unknown component"),
                                           ((str(ROOT / "reference"), "--epochs", "0"), "--epochs")])
def test_unusable_input_exits_2_with_one_line(args, message):
    done = subprocess.run([sys.executable, "-m", "grader", "grade", *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_a_crashing_chatty_submission_still_gets_valid_results(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(
        REFERENCE_SOURCE + "\nimport os, sys\nsys.stdout.write('\\udcff <script>alert(1)</script> \\x00' * 1000)\n"
        "def softmax(logits):\n    os._exit(9)\n"
        "def cross_entropy(logits, y):\n    return float('nan'), np.full(logits.shape, np.inf)\n")
    _, results = grade(submission, tmp_path / "out", "--only", WITHOUT_TRAINING)
    assert_contract_format(results)
    totals = by_component(results)
    assert totals["softmax"][0] == 0 and totals["linear_forward"][0] == 6
    assert totals["cross_entropy"][0] <= 2  # only "returns the right types" and "inputs unchanged" can hold
    assert "exited with status 9" in " ".join(t["output"] for t in results["tests"])
    assert "<script>" not in (tmp_path / "out" / "report.html").read_text()


def scaled_calibration(tmp_path: Path, **timing: float) -> Path:
    """A copy of the calibration with timing fields replaced (golden.npz beside it)."""
    calibration = json.loads(CALIBRATION_FILE.read_text())
    calibration["timing"].update(timing)
    (tmp_path / "calibration.json").write_text(json.dumps(calibration))
    (tmp_path / "golden.npz").write_bytes(CALIBRATION_FILE.with_name("golden.npz").read_bytes())
    return tmp_path / "calibration.json"


def test_a_machine_three_times_slower_still_gets_full_time_credit(tmp_path):
    """Calibrated on a machine 3x faster than this one: its probe and its reference time are a third of ours.

    The budget scales by probe(now) / probe(calibration), so the reference here keeps full credit.
    """
    calibration = json.loads(CALIBRATION_FILE.read_text())["timing"]
    path = scaled_calibration(tmp_path, probe_seconds=calibration["probe_seconds"] / 3,
                              reference_seconds=calibration["reference_seconds"] / 3)
    _, results = grade(ROOT / "reference", tmp_path / "out", "--calibration", str(path), "--only", "train")
    assert results["score"] == results["max_score"] == 15.0
    training = results["extra_data"]["training"]
    assert training["budget_seconds"] >= 2.5 * training["seconds"]


def test_over_budget_training_is_stopped_and_graded_on_its_finished_epochs(tmp_path):
    path = scaled_calibration(tmp_path, budget_factor=0.12)  # about 2 of the 20 epochs fit
    _, results = grade(ROOT / "reference", tmp_path / "out", "--calibration", str(path), "--only", "train")
    tests = {t["name"].split(" ")[1]: t for t in results["tests"]}
    training = results["extra_data"]["training"]
    assert training["stopped"] and 1 <= len(training["accuracies"]) < 20
    assert tests["finishes"]["score"] == 0 and "stopped at the time budget" in tests["finishes"]["output"]
    assert 0 < tests["reaches"]["score"] < 12  # partial credit on the epochs it finished


def test_the_submissions_pytest_files_are_never_loaded(tmp_path):
    marker = tmp_path / "loaded"
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE)
    for name in ("conftest.py", "sitecustomize.py"):
        (submission / name).write_text(f"open({str(marker)!r}, 'w')\nraise SystemExit(3)\n")
    (submission / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option -p no:python\n")
    _, results = grade(submission, tmp_path / "out", "--only", "softmax,MLP")
    assert results["score"] == results["max_score"] == 33.0
    assert not marker.exists()
