"""``python -m grader classroom RESULTS``: results.json as one GitHub Classroom runner result.

GitHub Classroom's gradebook reads points only from the annotations of its reporter action
(``classroom-resources/autograding-grading-reporter@v1``), which reads each runner's result as
base64 JSON from ``<RUNNER>_RESULTS``: ``version``, ``status``, ``max_score`` and ``tests`` (each
with its ``score``; the reporter adds them up). One test per component carries its partial
score. ``status`` is "pass" whenever grading ran: the kit's own ``--min-score`` step decides
whether the job fails; "error" when the grade could not run at all.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from grader.contract import TOTAL_POINTS
from grader.record import GradeRecord
from grader.report.results_json import UnreadableResults, read_results
from grader.submission import UnusableSubmission


def runner_result(record: GradeRecord) -> dict:
    """The runner result of one grade: a test per graded component, its points as the test's score."""
    tests = []
    for component, (score, maximum) in record.component_points().items():
        failed = [r for r in record.results if r.component == component and r.score < r.max_score]
        first = failed[0].output.strip().splitlines()[0] if failed and failed[0].output.strip() else ""
        tests.append({"name": component, "status": "pass" if score >= maximum else "fail", "score": score,
                      "max_score": maximum, "message": first[:500], "test_code": "", "filename": "",
                      "line_no": 0, "execution_time": ""})
    return {"version": 1, "status": "error" if record.failure is not None else "pass",
            "max_score": TOTAL_POINTS, "tests": tests}


def encoded(record: GradeRecord) -> str:
    return base64.b64encode(json.dumps(runner_result(record)).encode()).decode()


def main(results: Path, github_output: Path | None = None, runner: str = "mlp") -> int:
    """Print the base64 runner result, or append ``result=...`` to ``github_output`` (a step's outputs)."""
    try:
        record = read_results(results)
    except UnreadableResults as exc:
        raise UnusableSubmission(str(exc)) from None
    if github_output is None:
        print(encoded(record))
    else:
        with open(github_output, "a", encoding="utf-8") as stream:
            stream.write(f"result={encoded(record)}\n")
        print(f"{runner}: {record.score:g} of {TOTAL_POINTS:g} points for GitHub Classroom")
    return 0
