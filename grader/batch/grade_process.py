"""One student's ``python -m grader grade`` as a child process, on this machine or on a Dask worker.

The grade runs with BLAS pinned to one thread (workers do not oversubscribe the cores) in its
own process group. It is stopped politely: SIGINT first, so it closes its sandbox and leaves an
incomplete results.json at most; everything of it is killed only if it has not stopped after a
grace period (grader.kill).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.kill import GRADE_PROCESS, stop

PER_STUDENT_TIMEOUT = 3600.0  # seconds; a backstop only: every grade is bounded by its sandbox budget
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_MAX_STDERR = 64 << 10  # the tail of a grade's stderr kept for its reason


@dataclass
class Outcome:
    """How one grade ended. ``stopped`` is set when it was interrupted or timed out, not finished."""

    returncode: int | None
    stderr: str
    seconds: float
    stopped: str = ""  # "interrupted" or "grading timed out"


def run_grade(folder: Path, out: Path, grade_args: list[str], should_stop: Callable[[], bool] = lambda: False,
              timeout: float = PER_STUDENT_TIMEOUT, poll: float = 0.5) -> Outcome:
    """Grade ``folder`` into ``out``; checks ``should_stop`` every ``poll`` seconds while it runs."""
    started = time.monotonic()
    command = [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), *grade_args]
    # stderr goes to a file: a pipe nobody reads while the grade is being stopped could block it.
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, **BLAS_ONE_THREAD}, start_new_session=True)
        reason = ""
        try:
            while process.poll() is None and not reason:
                try:
                    process.wait(timeout=poll)
                except subprocess.TimeoutExpired:
                    reason = ("interrupted" if should_stop() else
                              "grading timed out" if time.monotonic() - started > timeout else "")
        finally:
            returncode = stop(process, GRADE_PROCESS)
        stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - _MAX_STDERR))
        text = stderr.read().decode("utf-8", errors="replace")
    return Outcome(None if reason else returncode, text, time.monotonic() - started, reason)
