"""results.json in Gradescope's autograder format (CONTRACT §3), always valid JSON.

Every test carries exactly one component tag. Non-finite numbers never reach the file (JSON
has no NaN); everything from the submission is a plain string, escaped by the encoder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from grader import __version__
from grader.rubric.run import Grade


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def results_document(grade: Grade, summary: str) -> dict:
    """The results dict; ``summary`` is the top-level ``output`` (the one-screen summary)."""
    context = grade.context
    return _finite({
        "score": grade.score,
        "max_score": grade.max_score,
        "execution_time": round(grade.seconds),
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": [{"name": r.name, "score": r.score, "max_score": r.max_score, "status": r.status,
                   "output": r.output, "tags": [r.component], "visibility": "visible"} for r in grade.results],
        "extra_data": {
            "grader_version": __version__,
            "calibration_id": grade.calibration_id,
            "seed": context.seed,
            "epochs": context.epochs,
            "only": sorted(context.only) if context.only else None,
            "sandbox": context.sandbox_strength,
            "training": context.training,
        },
    })


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(path: Path, grade: Grade, summary: str) -> None:
    write_atomically(path, json.dumps(results_document(grade, summary), indent=2, allow_nan=False) + "\n")


def write_failure(path: Path, message: str) -> None:
    """A valid results.json when grading could not finish: no score, the reason in ``output``."""
    document = {"score": 0.0, "execution_time": 0, "output": message, "visibility": "visible", "tests": [],
                "extra_data": {"grader_version": __version__, "grader_failed": True}}
    write_atomically(path, json.dumps(document, indent=2) + "\n")


def failure_reason(stderr: str, returncode: int) -> str:
    """The one line a ``python -m grader grade`` that failed gave as its reason (its last non-blank line)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"grading failed (exit {returncode})"
