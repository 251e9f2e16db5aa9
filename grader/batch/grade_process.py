"""One student's ``python -m grader grade`` as a child process, on this machine or on a Dask worker.

The grade runs with BLAS pinned to one thread (workers do not oversubscribe the cores) in its
own process group. It is stopped politely: SIGINT first, so it closes its sandbox and writes
nothing partial; its whole group is killed only if it has not stopped after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PER_STUDENT_TIMEOUT = 3600.0  # seconds; a backstop only: every grade is bounded by its sandbox budget
STOP_GRACE = 20.0  # seconds a grade gets to stop after SIGINT before it is killed
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               errors="replace", env={**os.environ, **BLAS_ONE_THREAD}, start_new_session=True)
    try:
        while True:
            try:
                _, stderr = process.communicate(timeout=poll)
                return Outcome(process.returncode, stderr, time.monotonic() - started)
            except subprocess.TimeoutExpired:
                reason = ("interrupted" if should_stop() else
                          "grading timed out" if time.monotonic() - started > timeout else "")
                if reason:
                    return Outcome(None, _stop(process), time.monotonic() - started, reason)
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen) -> str:
    """Interrupt, then kill the group if it has not stopped within the grace period; its stderr."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=STOP_GRACE)[1] or ""
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[1] or ""
