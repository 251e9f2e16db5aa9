"""results.json is written from a GradeRecord and read back into the same record, in Gradescope's format."""

from __future__ import annotations

import json

from grader.record import CheckResult, GradeRecord, SandboxStrength, TrainingRecord
from grader.report.results_json import read_results, results_document, write_results

RECORD = GradeRecord(
    results=[CheckResult("softmax matches", "softmax", 3.0, 0.0, "failed", "expected: 1\ngot:      2\n```fence```"),
             CheckResult("train reaches", "train", 10.0, 9.25, "passed", "test accuracy 0.9700")],
    seed=7, replay="python -m grader grade s --seed 7", epochs=20, calibration_id="v1", seconds=12.0,
    grader_version="0.1.0", summary="component  points\ntotal  9.2 / 13",
    training=TrainingRecord(accuracies=[0.95, 0.97], final_accuracy=0.97, seconds=1.5, review="too fast"),
    sandbox=SandboxStrength(landlock_abi=7, child_uid=1048600, processes_cap=64, disk_cap="tmpfs"),
    leaderboard=True)


def test_a_record_survives_the_file(tmp_path):
    write_results(tmp_path / "results.json", RECORD)
    again = read_results(tmp_path / "results.json")
    assert again.results == RECORD.results and again.training == RECORD.training and again.sandbox == RECORD.sandbox
    assert (again.seed, again.replay, again.summary, again.review) == (7, RECORD.replay, RECORD.summary, "too fast")
    assert again.leaderboard and not again.incomplete and again.failure is None


def test_the_document_follows_gradescopes_format():
    document = results_document(RECORD)
    assert "max_score" not in document  # not in Gradescope's spec
    assert document["output_format"] == document["test_output_format"] == "md"
    assert document["output"].startswith("```\n") and document["output"].endswith("\n```")
    fence = document["tests"][0]["output"].split("\n", 1)[0]
    assert len(fence) > 3 and "```fence```" in document["tests"][0]["output"]  # a longer fence than the text's
    assert document["leaderboard"] == [{"name": "Test accuracy", "value": 0.97, "order": "desc"},
                                       {"name": "Training seconds", "value": 1.5, "order": "asc"}]
    assert json.loads(json.dumps(document, allow_nan=False)) == document
