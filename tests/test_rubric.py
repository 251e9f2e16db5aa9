"""The rubric end to end, through the real command line: fair in both directions.

Correct-but-different code gets full marks; each buggy submission loses points on exactly
the components its bug touches, with feedback naming the mistake; results.json follows
CONTRACT §3 whatever the submission does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.calibration import CALIBRATION_FILE, load
from grader.contract import COMPONENTS, POINTS
from helpers import REFERENCE_SOURCE, ROOT, grade, run_grader
from submission_corpus import BUGGY, CORRECT, WITHOUT_TRAINING, corpus_params

pytestmark = pytest.mark.mnist


def assert_contract_format(path: Path) -> None:
    """The file itself, as CONTRACT §3 states it (not through the grader's reader)."""
    results = json.loads(path.read_text())
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "tags", "visibility"} <= set(test)
        assert len(test["tags"]) == 1 and test["tags"][0] in COMPONENTS
        assert test["status"] in ("passed", "failed")


@pytest.mark.slow
def test_reference_scores_full_marks(tmp_path):
    done, record = grade(ROOT / "reference", tmp_path)
    assert_contract_format(tmp_path / "results.json")
    assert record.score == record.max_score == 100.0, [r for r in record.results if r.status != "passed"]
    assert {c: m for c, (_, m) in record.component_points().items()} == POINTS
    assert "total" in done.stdout and (tmp_path / "report.html").read_text().count('class="status-passed"') == len(
        record.results)


def test_template_scores_zero_with_not_implemented_everywhere(tmp_path):
    _, record = grade(ROOT, tmp_path, "--epochs", "1")  # the kit's layout: student_template/mlp.py
    assert_contract_format(tmp_path / "results.json")
    assert record.score == 0.0
    for result in record.results:
        assert "not implemented yet" in result.output, result
        assert "Traceback" not in result.output


@pytest.mark.parametrize("name", corpus_params(CORRECT))
def test_correct_but_different_code_gets_full_marks(name, corpus_grade):
    record = corpus_grade(name).record
    lost = {c: v for c, v in record.component_points().items() if v[0] < v[1]}
    assert not lost, [r.output for r in record.results if r.score < r.max_score]


@pytest.mark.parametrize("name", corpus_params(BUGGY))
def test_a_bug_loses_points_exactly_where_it_is(name, corpus_grade):
    totals = corpus_grade(name).record.component_points()
    losers = {c for c, (score, maximum) in totals.items() if score < maximum}
    expected = BUGGY[name].losers
    assert losers == expected, {c: totals[c] for c in losers ^ expected}


@pytest.mark.parametrize("name", corpus_params(BUGGY))
def test_a_bugs_feedback_names_the_likely_mistake(name, corpus_grade):
    record = corpus_grade(name).record
    feedback = " ".join(r.output for r in record.results if r.score < r.max_score)
    assert BUGGY[name].diagnosis.lower() in feedback.lower(), feedback
    if record.training is not None:  # an on_epoch per batch is counted, not scored once per call
        assert len(record.training.accuracies) <= record.training.epochs


@pytest.mark.parametrize("name", corpus_params({**CORRECT, **BUGGY}))
def test_every_corpus_grade_writes_the_contract_format_and_its_report(name, corpus_grade):
    graded = corpus_grade(name)
    assert_contract_format(graded.out / "results.json")
    report = (graded.out / "report.html").read_text()
    assert report.count('class="status-passed"') == sum(r.status == "passed" for r in graded.record.results)
    assert "total" in graded.stdout


def test_only_runs_the_named_components(tmp_path):
    _, record = grade(ROOT / "reference", tmp_path, "--only", "softmax,sgd_step")
    assert {r.component for r in record.results} == {"softmax", "sgd_step"}
    assert record.score == record.max_score == POINTS["softmax"] + POINTS["sgd_step"]


@pytest.mark.parametrize("args, message", [(("/no/such/folder",), "no such file or directory"),
                                           ((str(ROOT / "tests"),), "no mlp.py"),
                                           ((str(ROOT / "reference"), "--only", "bogus"), "unknown component"),
                                           ((str(ROOT / "reference"), "--epochs", "0"), "--epochs")])
def test_unusable_input_exits_2_with_one_line(args, message):
    done = run_grader("grade", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_a_crashing_chatty_submission_still_gets_valid_results(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(
        REFERENCE_SOURCE + "\nimport os, sys\nsys.stdout.write('\\udcff <script>alert(1)</script> \\x00' * 1000)\n"
        "def softmax(logits):\n    os._exit(9)\n"
        "def cross_entropy(logits, y):\n    return float('nan'), np.full(logits.shape, np.inf)\n")
    _, record = grade(submission, tmp_path / "out", "--only", WITHOUT_TRAINING)
    assert_contract_format(tmp_path / "out" / "results.json")
    totals = record.component_points()
    assert totals["softmax"][0] == 0 and totals["linear_forward"][0] == POINTS["linear_forward"]
    assert totals["cross_entropy"][0] <= 2  # only "returns the right types" and "inputs unchanged" can hold
    assert "exited with status 9" in " ".join(r.output for r in record.results)
    assert "<script>" not in (tmp_path / "out" / "report.html").read_text()


def scaled_calibration(tmp_path: Path, **timing: float) -> Path:
    """A copy of the calibration with timing fields replaced (golden.npz beside it)."""
    calibration = json.loads(CALIBRATION_FILE.read_text())
    calibration["timing"].update(timing)
    (tmp_path / "calibration.json").write_text(json.dumps(calibration))
    (tmp_path / "golden.npz").write_bytes(CALIBRATION_FILE.with_name("golden.npz").read_bytes())
    return tmp_path / "calibration.json"


@pytest.mark.slow
def test_a_machine_three_times_slower_still_gets_full_time_credit(tmp_path):
    """Calibrated on a machine 3x faster than this one: its probe and its reference time are a third of ours.

    The budget scales by probe(now) / probe(calibration), so the reference here keeps full credit.
    """
    calibration = json.loads(CALIBRATION_FILE.read_text())["timing"]
    path = scaled_calibration(tmp_path, probe_seconds=calibration["probe_seconds"] / 3,
                              reference_seconds=calibration["reference_seconds"] / 3)
    _, record = grade(ROOT / "reference", tmp_path / "out", "--calibration", str(path), "--only", "train")
    assert record.score == record.max_score == POINTS["train"]
    assert record.training.budget_seconds >= 2.5 * record.training.seconds


def test_over_budget_training_is_stopped_and_graded_on_its_finished_epochs(tmp_path):
    path = scaled_calibration(tmp_path, budget_factor=0.12)  # about 2 of the 20 epochs fit
    _, record = grade(ROOT / "reference", tmp_path / "out", "--calibration", str(path), "--only", "train")
    checks = {r.name.split(" ")[1]: r for r in record.results}
    assert record.training.stopped and 1 <= len(record.training.accuracies) < 20
    assert checks["finishes"].score == 0 and "stopped at the time budget" in checks["finishes"].output
    # Scored on the last epoch it finished, by the calibration's own rule.
    last = record.training.accuracies[-1]
    assert f"{last:.4f} of epoch {len(record.training.accuracies)} (train did not return)" in checks["reaches"].output
    assert checks["reaches"].score == pytest.approx(
        checks["reaches"].max_score * load(path).accuracy_credit(last), abs=0.01)


def test_the_submissions_pytest_files_are_never_loaded(tmp_path):
    marker = tmp_path / "loaded"
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE)
    for name in ("conftest.py", "sitecustomize.py"):
        (submission / name).write_text(f"open({str(marker)!r}, 'w')\nraise SystemExit(3)\n")
    (submission / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option -p no:python\n")
    _, record = grade(submission, tmp_path / "out", "--only", "softmax,MLP")
    assert record.score == record.max_score == POINTS["softmax"] + POINTS["MLP"]
    assert not marker.exists()
