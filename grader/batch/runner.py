"""Grade a class: one ``python -m grader grade`` per student, in parallel, resumable.

Each student's grade runs as its own process (its own pytest, its own sandbox), with BLAS pinned
to one thread, so workers do not oversubscribe the cores. A student already graded (its
``results.json`` exists) is skipped unless ``force``. Every grade writes its files atomically, so
Ctrl-C leaves what finished intact; ``grades.csv`` and ``index.html`` are written at the end and
on interruption.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from grader.report.class_summary import write_index
from grader.rubric.plugin import COMPONENTS

PER_STUDENT_TIMEOUT = 3600.0  # backstop only: every grade is bounded by its sandbox budget


@dataclass
class Row:
    """One student's line of grades.csv."""

    student: str
    status: str  # graded, skipped (already graded), unusable, error
    total: float = 0.0
    components: dict[str, float] | None = None
    seconds: float = 0.0
    reason: str = ""


def students_of(folder: Path) -> list[Path]:
    """One sub-folder per student, in name order (hidden folders ignored)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _row_from_results(student: str, results_path: Path, status: str, seconds: float) -> Row:
    results = json.loads(results_path.read_text(encoding="utf-8"))
    points: dict[str, float] = {}
    for test in results.get("tests", []):
        points[test["tags"][0]] = points.get(test["tags"][0], 0.0) + test["score"]
    failed = results.get("extra_data", {}).get("grader_failed")
    return Row(student, "error" if failed else status, float(results.get("score", 0.0)), points, seconds,
               results.get("output", "")[:200] if failed else "")


class Batch:
    """Grades every student of ``submissions`` into ``out`` with ``jobs`` workers."""

    def __init__(self, submissions: Path, out: Path, jobs: int, grade_args: list[str], force: bool = False,
                 progress: TextIO = sys.stderr) -> None:
        self.submissions, self.out, self.jobs = submissions, out, jobs
        self.grade_args, self.force, self.progress = grade_args, force, progress
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def grade_one(self, folder: Path) -> Row:
        target = self.out / folder.name
        results = target / "results.json"
        if results.exists() and not self.force:
            return _row_from_results(folder.name, results, "skipped", 0.0)
        started = time.monotonic()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(target), *self.grade_args]
        with self._lock:
            if self._stopping:
                return Row(folder.name, "not graded", reason="interrupted")
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                       start_new_session=True)
            self._running.add(process)
        try:
            _, stderr = process.communicate(timeout=PER_STUDENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Interrupt first, so the grade closes its sandbox; kill only if it does not stop.
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
            return Row(folder.name, "error", seconds=time.monotonic() - started, reason="grading timed out")
        finally:
            with self._lock:
                self._running.discard(process)
        seconds = time.monotonic() - started
        if process.returncode == 2:
            return Row(folder.name, "unusable", seconds=seconds, reason=_last_line(stderr))
        if results.exists():
            return _row_from_results(folder.name, results, "graded", seconds)
        return Row(folder.name, "error", seconds=seconds, reason=_last_line(stderr) or f"exit {process.returncode}")

    def run(self) -> list[Row]:
        """Grade everything; on Ctrl-C stop the running grades and keep what finished."""
        self.out.mkdir(parents=True, exist_ok=True)
        students = students_of(self.submissions)
        rows: dict[str, Row] = {}
        started, failures = time.monotonic(), 0
        pool = ThreadPoolExecutor(max_workers=self.jobs)
        try:
            futures = {pool.submit(self.grade_one, folder): folder for folder in students}
            for future in as_completed(futures):
                row = future.result()
                rows[row.student] = row
                failures += row.status in ("unusable", "error")
                done = len(rows)
                eta = (time.monotonic() - started) / done * (len(students) - done)
                print(f"[{done}/{len(students)}] {row.student}: {row.status} {row.total:.1f}  "
                      f"ETA {eta:.0f} s, failures so far {failures}", file=self.progress, flush=True)
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

    def stop(self, grace: float = 20.0) -> None:
        """Interrupt the running grades (their sandboxes clean up) and start no more.

        A grade still starting up has no handler yet; whatever has not exited after ``grace``
        seconds is killed (it has no sandbox to leave behind at that point).
        """
        with self._lock:
            self._stopping = True
            running = list(self._running)
        for process in running:
            process.send_signal(signal.SIGINT)

        def kill_stragglers() -> None:
            for process in running:
                try:
                    process.wait(timeout=max(grace, 0.0))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

        threading.Thread(target=kill_stragglers, daemon=True).start()

    def write_csv(self, rows: list[Row]) -> Path:
        path = self.out / "grades.csv"
        tmp = path.with_name(".grades.csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["student", "total", *COMPONENTS, "status", "seconds", "reason"])
            for row in rows:
                points = row.components or {}
                writer.writerow([row.student, f"{row.total:.1f}",
                                 *(f"{points[c]:.1f}" if c in points else "" for c in COMPONENTS),
                                 row.status, f"{row.seconds:.1f}", row.reason])
        os.replace(tmp, path)
        return path


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
