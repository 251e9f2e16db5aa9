"""results.json in Gradescope's autograder format (CONTRACT §3): written from a ``GradeRecord``, read back into one.

The one module that knows the file's layout: the batch, the class page, the exports and the
tests read results.json through ``read_results``. Every test carries exactly one component
tag. Non-finite numbers never reach the file (JSON has no NaN); everything from the submission
is a plain string, escaped by the encoder. The record's fields beyond Gradescope's live under
``extra_data``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path

from grader import __version__
from grader.record import CheckResult, GradeRecord, SandboxStrength, TrainingRecord


class UnreadableResults(ValueError):
    """A results.json that is missing, not JSON, or not of this grader's layout."""


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def results_document(record: GradeRecord) -> dict:
    """The results dict of ``record`` (its ``summary`` is the top-level ``output``)."""
    extra = {"grader_version": record.grader_version or __version__, "calibration_id": record.calibration_id,
             "seed": record.seed, "replay": record.replay, "epochs": record.epochs, "only": record.only,
             "review": record.review, "notes": record.notes, "stand_ins": record.stand_ins,
             "import_failure": record.import_failure,
             "sandbox": dataclasses.asdict(record.sandbox) if record.sandbox else None,
             "training": dataclasses.asdict(record.training) if record.training else None}
    if record.failure is not None:
        extra["grader_failed"] = True
    if record.incomplete:
        extra["incomplete"] = True
    document = {
        "score": record.score,
        "execution_time": round(record.seconds),
        # Gradescope shows Markdown: the summary's columns survive only in a code block.
        "output": fenced(record.failure if record.failure is not None else record.summary),
        "output_format": "md",
        "test_output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": [{"name": r.name, "score": r.score, "max_score": r.max_score, "status": r.status,
                   "output": fenced(r.output), "output_format": "md", "tags": [r.component], "visibility": "visible"}
                  for r in record.results],
        "extra_data": extra,
    }
    if record.leaderboard and record.training is not None and record.training.final_accuracy is not None:
        document["leaderboard"] = [
            {"name": "Test accuracy", "value": round(record.training.final_accuracy, 4), "order": "desc"},
            {"name": "Training seconds", "value": round(record.training.seconds, 1), "order": "asc"}]
    return _finite(document)


def fenced(text: str) -> str:
    """``text`` as a Markdown code block (lines and columns kept), fenced longer than any backtick run in it."""
    if not text:
        return ""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def unfenced(text: str) -> str:
    """The text a ``fenced`` block holds (older files' plain text is returned as it is)."""
    match = re.fullmatch(r"(`{3,})\n(.*)\n\1", text, re.DOTALL)
    return match.group(2) if match else text


def _fields(cls: type, data: object) -> dict:
    """The entries of ``data`` that are fields of the dataclass ``cls`` (older or newer files still read)."""
    if not isinstance(data, dict):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def record_from_document(document: dict) -> GradeRecord:
    """The record a results dict was written from (report-only fields, stdout and stderr, are empty)."""
    try:
        extra = document.get("extra_data") or {}
        results = [CheckResult(name=str(t["name"]), component=str(t["tags"][0]), max_score=float(t["max_score"]),
                               score=float(t["score"]), status=str(t["status"]),
                               output=unfenced(str(t.get("output", "")))) for t in document.get("tests", [])]
        output = unfenced(str(document.get("output", "")))
        training, sandbox = extra.get("training"), extra.get("sandbox")
        return GradeRecord(
            results=results, seed=int(extra.get("seed") or 0), replay=str(extra.get("replay") or ""),
            epochs=int(extra.get("epochs") or 0),
            only=extra.get("only"), calibration_id=str(extra.get("calibration_id", "")),
            seconds=float(document.get("execution_time") or 0), grader_version=str(extra.get("grader_version", "")),
            training=TrainingRecord(**_fields(TrainingRecord, training)) if training else None,
            sandbox=SandboxStrength(**_fields(SandboxStrength, sandbox)) if sandbox else None,
            notes=[str(note) for note in extra.get("notes") or []],
            stand_ins=[str(line) for line in extra.get("stand_ins") or []],
            import_failure=str(extra.get("import_failure") or ""),
            summary="" if extra.get("grader_failed") else output,
            failure=output if extra.get("grader_failed") else None,
            incomplete=bool(extra.get("incomplete")), leaderboard="leaderboard" in document)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise UnreadableResults(f"not a results.json of this grader ({type(exc).__name__}: {exc})") from None


def read_results(path: Path) -> GradeRecord:
    """The record of ``path``; UnreadableResults when it cannot be read as one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnreadableResults(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise UnreadableResults(f"{path}: not a JSON object")
    return record_from_document(document)


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(path: Path, record: GradeRecord) -> None:
    write_atomically(path, json.dumps(results_document(record), indent=2, allow_nan=False) + "\n")


def write_failure(path: Path, message: str) -> None:
    """A valid results.json when grading could not finish: no score, the reason in ``output``."""
    write_results(path, GradeRecord(failure=message, epochs=0))


def failure_reason(stderr: str, returncode: int) -> str:
    """The one line a ``python -m grader grade`` that failed gave as its reason (its last non-blank line)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"grading failed (exit {returncode})"
