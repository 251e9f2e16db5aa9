"""Grade a class: one grade per student, in parallel, resumable, on this machine or a Dask cluster.

Each student's grade runs as its own ``python -m grader grade`` process (its own pytest, its own
sandbox; see ``grade_process.py``), started here (``LocalGrades``) or on a Dask worker
(``dask_cluster.DaskGrades``). A student already graded (its ``results.json`` exists) is skipped
unless ``force``. Every grade writes its files atomically, so Ctrl-C leaves what finished intact;
``grades.csv`` and ``index.html`` are written at the end and on interruption.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from grader.batch.grade_process import Outcome, run_grade
from grader.contract import COMPONENTS
from grader.report.results_json import UnreadableResults, failure_reason, read_results
from grader.summary.class_page import write_index
from grader.text import clean_text, csv_cell


@dataclass
class Row:
    """One student's line of grades.csv."""

    student: str
    status: str  # graded, skipped (already graded), unusable, error, not graded (interrupted)
    total: float = 0.0
    max_score: float | None = None  # the most this grade could give (100, less under --only); None: not graded
    components: dict[str, float] | None = None
    seconds: float = 0.0
    reason: str = ""
    review: str = ""  # why the grade waits for an instructor (accuracy points withheld)


class Grades(Protocol):
    """Where the grades run: ``slots`` at a time; ``grade`` blocks until one is done or stopped."""

    slots: int

    def grade(self, folder: Path, target: Path) -> Outcome: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class LocalGrades:
    """Grades as child processes of this one, ``jobs`` at a time."""

    def __init__(self, jobs: int, grade_args: list[str]) -> None:
        self.slots, self.grade_args = jobs, grade_args
        self._stop = threading.Event()

    def grade(self, folder: Path, target: Path) -> Outcome:
        return run_grade(folder, target, self.grade_args, should_stop=self._stop.is_set)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        pass


def students_of(folder: Path) -> list[Path]:
    """One sub-folder per student, in name order (hidden folders ignored)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _row_from_results(student: str, results_path: Path, status: str, seconds: float) -> Row:
    try:
        record = read_results(results_path)
    except UnreadableResults as exc:
        return Row(student, "error", seconds=seconds, reason=str(exc)[:200])
    if record.failure is not None:
        return Row(student, "error", seconds=seconds, reason=record.failure[:200])
    if record.incomplete:
        return Row(student, "error", seconds=seconds, reason="grading did not finish (its results are partial)")
    points = {component: score for component, (score, _) in record.component_points().items()}
    return Row(student, status, record.score, record.max_score, points, seconds, review=record.review or "")


def _finished(results: Path) -> bool:
    """A results.json a finished grade wrote (one left by a grade that was stopped is partial)."""
    try:
        return not read_results(results).incomplete
    except UnreadableResults:
        return True  # its row says why; grading again would not change that


class Batch:
    """Grades every student of ``submissions`` into ``out`` with ``jobs`` workers."""

    def __init__(self, submissions: Path, out: Path, grades: Grades, force: bool = False,
                 progress: TextIO = sys.stderr) -> None:
        self.submissions, self.out, self.grades = submissions, out, grades
        self.force, self.progress = force, progress
        self._stopping = False

    def grade_one(self, folder: Path) -> Row:
        target = self.out / folder.name
        results = target / "results.json"
        if results.exists() and not self.force and _finished(results):
            return _row_from_results(folder.name, results, "skipped", 0.0)
        if self._stopping:
            return Row(folder.name, "not graded", reason="interrupted")
        outcome = self.grades.grade(folder, target)
        if outcome.stopped:
            status = "not graded" if outcome.stopped == "interrupted" else "error"
            return Row(folder.name, status, seconds=outcome.seconds, reason=outcome.stopped)
        if outcome.returncode == 2:
            return Row(folder.name, "unusable", seconds=outcome.seconds, reason=failure_reason(outcome.stderr, 2))
        if results.exists():
            return _row_from_results(folder.name, results, "graded", outcome.seconds)
        return Row(folder.name, "error", seconds=outcome.seconds,
                   reason=failure_reason(outcome.stderr, outcome.returncode or 0))

    def run(self) -> list[Row]:
        """Grade everything; on Ctrl-C stop the running grades and keep what finished."""
        self.out.mkdir(parents=True, exist_ok=True)
        students = students_of(self.submissions)
        rows: dict[str, Row] = {}
        started, failures = time.monotonic(), 0
        pool = ThreadPoolExecutor(max_workers=self.grades.slots)
        try:
            futures = {pool.submit(self.grade_one, folder): folder for folder in students}
            for future in as_completed(futures):
                row = future.result()
                rows[row.student] = row
                failures += row.status in ("unusable", "error")
                done = len(rows)
                eta = (time.monotonic() - started) / done * (len(students) - done)
                line = (f"[{done}/{len(students)}] {row.student}: {row.status} {row.total:.1f}  "
                        f"ETA {eta:.0f} s, failures so far {failures}")
                print(clean_text(line), file=self.progress, flush=True)
        except KeyboardInterrupt:
            self.stop()
            print("interrupted: finished grades are kept; run again to grade the rest", file=self.progress)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            ordered = [rows[s.name] for s in students if s.name in rows]
            self.write_csv(ordered)
            if any(row.status in ("graded", "skipped") for row in ordered):
                write_index(self.out)
        return ordered

    def stop(self) -> None:
        """Start no more grades; the running ones are interrupted (and killed if they do not stop)."""
        self._stopping = True
        self.grades.stop()

    def write_csv(self, rows: list[Row]) -> Path:
        path = self.out / "grades.csv"
        tmp = path.with_name(".grades.csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["student", "total", "max", *COMPONENTS, "status", "seconds", "reason", "review"])
            for row in rows:
                points = row.components or {}
                writer.writerow([csv_cell(row.student), f"{row.total:.1f}" if row.max_score is not None else "",
                                 f"{row.max_score:g}" if row.max_score is not None else "",
                                 *(f"{points[c]:.1f}" if c in points else "" for c in COMPONENTS),
                                 row.status, f"{row.seconds:.1f}", csv_cell(row.reason), csv_cell(row.review)])
        os.replace(tmp, path)
        return path

