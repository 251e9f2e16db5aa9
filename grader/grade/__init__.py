"""``python -m grader grade``: grade one submission and write its reports (CONTRACT §2).

The rubric (``grader.rubric.run``) produces a ``GradeRecord``; this module writes it in every
format asked for (results.json, report.html, and optionally Markdown and JUnit XML), prints the
terminal summary and applies ``--min-score``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from pathlib import Path

from grader.calibration import CALIBRATION_FILE
from grader.calibration import load as load_calibration
from grader.contract import EPOCHS, check_epochs, check_min_score, parse_components
from grader.errors import GraderError, UsageError
from grader.notebook import graded_folder
from grader.record import GradeRecord
from grader.report.html import write_report
from grader.report.junit import write_junit
from grader.report.markdown import grade_markdown
from grader.report.progress import EpochPrinter
from grader.report.results_json import write_failure, write_results
from grader.report.terminal import summary_text
from grader.rubric.run import grade
from grader.submission import module_dir
from grader.text import clean_text


def main(submission: Path, out: Path | None = None, only: str | None = None, epochs: int | None = None,
         mnist_dir: str | None = None, calibration: Path = CALIBRATION_FILE, summary_md: Path | None = None,
         junitxml: Path | None = None, min_score: float | None = None, override_review: bool = False,
         seed: int | None = None, deadline: float | None = None, memory_mb: int | None = None,
         call_timeout: float | None = None, leaderboard: bool = False) -> int:
    """Grade, write every report, print the summary; exit status 1 below ``min_score``, else 0."""
    selected = parse_components(only)
    check_epochs(epochs)
    check_min_score(min_score)
    folder = module_dir(submission)
    name = submission.resolve().name
    out = out or Path("reports") / name
    out.mkdir(parents=True, exist_ok=True)
    print(clean_text(f"grading {folder} ..."), flush=True)
    if seed is not None and not 0 <= seed < 1 << 32:
        raise UsageError("--seed must be a whole number from 0 to 4294967295")
    deadline = _from_env(deadline, "MLP_GRADER_DEADLINE", "--deadline", 30)
    memory_mb = _from_env(memory_mb, "MLP_GRADER_MEMORY_MB", "--memory-mb", 256)
    call_timeout = _from_env(call_timeout, "MLP_GRADER_CALL_TIMEOUT", "--call-timeout", 1)

    def keep_partial(partial: GradeRecord) -> None:
        # Written after every check: a grade the platform kills still shows what was graded.
        snapshot = dataclasses.replace(partial, incomplete=True, leaderboard=leaderboard,
                                       summary=summary_text(partial) + "\nincomplete: grading was still running")
        write_results(out / "results.json", snapshot)

    printer = EpochPrinter.to_stdout()
    try:
        with graded_folder(folder) as (graded, notes, translate):
            record = grade(graded, epochs=epochs or EPOCHS, only=selected, mnist_dir=mnist_dir,
                           calibration_path=calibration, override_review=override_review, seed=seed,
                           deadline=deadline, memory_bytes=None if memory_mb is None else int(memory_mb) << 20,
                           call_timeout=call_timeout, on_result=keep_partial, progress=printer, translate=translate)
        record.notes = notes
        record.leaderboard = leaderboard
        record.replay = shlex.join(["python", "-m", "grader", "grade", str(submission), "--seed", str(record.seed),
                                    *(["--only", only] if only else []),
                                    *(["--epochs", str(epochs)] if epochs else []),
                                    *(["--call-timeout", f"{call_timeout:g}"] if call_timeout is not None else [])])
        record.summary = summary_text(record)
        write_results(out / "results.json", record)
    except GraderError:
        raise
    except Exception as exc:
        write_failure(out / "results.json", f"the grader itself failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        printer.finish()
    title = f"MLP assignment: {name}"
    band = load_calibration(calibration).raw["accuracy"]["reference"]["per_epoch"]
    write_report(out / "report.html", record, title, band)
    _write_extras(record, title, name, summary_md, junitxml)
    print(record.summary)
    print(clean_text(f"wrote {out / 'results.json'} and {out / 'report.html'}"))
    if min_score is not None and record.score < min_score:
        # Exit 1, distinct from 2 (unusable input): CI fails the job, the reports are already written.
        print(f"score {record.score:.1f} is below the minimum {min_score:g}", file=sys.stderr)
        return 1
    return 0


def _from_env(value: float | None, variable: str, flag: str, least: float) -> float | None:
    """An option given on the command line, else by its environment variable; at least ``least``."""
    if value is None and os.environ.get(variable):
        try:
            value = float(os.environ[variable])
        except ValueError:
            raise UsageError(f"${variable} must be a number, not {os.environ[variable]!r}") from None
    if value is not None and value < least:
        raise UsageError(f"{flag} (or ${variable}) must be at least {least:g}")
    return value


def _write_extras(record: GradeRecord, title: str, name: str, summary_md: Path | None,
                  junitxml: Path | None) -> None:
    """The optional formats: Markdown summary and JUnit XML."""
    if summary_md:
        summary_md.write_text(grade_markdown(record, title), encoding="utf-8")
    if junitxml:
        write_junit(junitxml, record, name)
