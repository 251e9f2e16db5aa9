"""The sandbox's costs are bounded (issue: hostile submissions, round 2).

Each bound is derived from the sandbox's own limits, never a race: an import that hangs starts
at most two children, a stopped child is killed long before its call's timeout, the processes a
child can create are capped (when the grader is root), and so is all it writes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from grader.rubric.plugin import IMPORT_FAILED
from grader.sandbox import CallFailed, Limits, Sandbox, session
from helpers import grade, live, reference_with, sandbox_processes

# Bounds in seconds and process counts, and a fork loop that fills the process table: run alone.
pytestmark = pytest.mark.serial
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a user of the sandbox's own needs a grader run as root")

FORK_LOOP = """
import os, time
def softmax(logits):
    made, started = 0, time.monotonic()
    while made < 5000 and time.monotonic() - started < 5:
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        made += 1
    return np.array([float(made)])
"""
FILLS_THE_DISK = """
def softmax(logits):
    block, written = bytes(1 << 20), 0
    for number in range(4000):
        with open(f"part{number}.bin", "wb") as stream:
            for _ in range(16):
                stream.write(block)
                written += len(block)
    return np.array([float(written)])
"""


def submission(tmp_path: Path, code: str) -> Path:
    return reference_with(tmp_path / "s", code)


def attempt(box: Sandbox) -> tuple[CallFailed | None, float]:
    started = time.monotonic()
    try:
        box.call("softmax", np.ones((2, 3)))
    except CallFailed as failure:
        return failure, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("code", ["\nimport time\ntime.sleep(1000)\n",
                                  "\nimport os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
                                  "\nimport os\nos._exit(0)\n"], ids=["sleeps", "stops", "exits"])
def test_a_module_that_cannot_be_imported_costs_two_children_at_most(tmp_path, code):
    limits = Limits(import_timeout=3.0, call_timeout=20.0)
    with Sandbox(submission(tmp_path, code), limits) as box:
        failures = [attempt(box) for _ in range(6)]
        assert box.children_started <= 2
    reasons = {failure.message for failure, _ in failures}
    assert len(reasons) == 1 and all(failure.kind == "import_failed" for failure, _ in failures), reasons
    assert sum(seconds for _, seconds in failures) < 2 * (limits.startup_timeout + limits.import_timeout)
    assert not sandbox_processes()


@pytest.mark.mnist
def test_a_whole_grade_of_a_module_that_hangs_at_import_is_bounded(tmp_path):
    """Every component and the timed training: two children at most, and the time two imports allow."""
    _, record = grade(submission(tmp_path, "\nimport time\ntime.sleep(1000)\n"), tmp_path / "out")
    limits = Limits()
    assert record.score == 0 and len(record.sandbox.restarts) <= 2
    assert record.seconds < 2 * (limits.startup_timeout + limits.import_timeout) + 60
    assert "10 s allowed" in record.import_failure  # told once, at the top (issue 18)
    assert all(r.output == IMPORT_FAILED for r in record.results), [r.output for r in record.results]


@pytest.mark.parametrize("signal_name", ["SIGSTOP", "SIGTSTP"])
def test_a_child_that_stops_itself_costs_seconds_not_its_timeout(tmp_path, signal_name):
    """SIGSTOP stops it: noticed by polling and killed. SIGTSTP cannot: its process group is orphaned."""
    code = f"\nimport os, signal\ndef softmax(logits):\n    os.kill(os.getpid(), signal.{signal_name})\n"
    limits = Limits(call_timeout=60.0)
    with Sandbox(submission(tmp_path, code), limits) as box:
        failure, seconds = attempt(box)
    if signal_name == "SIGSTOP":
        assert failure is not None and failure.kind == "stopped", failure
    assert seconds < limits.call_timeout / 4  # not the call's timeout
    assert not sandbox_processes()


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if f"\nUid:\t{uid}\t" in status and live(int(entry)):  # a killed process may wait to be reaped
            found.append(int(entry))
    return found


@ROOT_ONLY
def test_a_fork_loop_is_capped_and_everything_it_made_is_killed(tmp_path):
    limits = Limits()
    with Sandbox(submission(tmp_path, FORK_LOOP), limits) as box:
        made = float(box.call("softmax", np.ones((2, 3)))[0])
        uid = box.strength.child_uid
        assert uid == session.SANDBOX_UID_BASE + os.getpid() and box.strength.processes_cap == limits.processes
        assert 0 < made < limits.processes  # the child itself counts too
        assert len(processes_of(uid)) == made + 1
    assert processes_of(uid) == []


@ROOT_ONLY
@pytest.mark.mnist
def test_a_fork_loop_still_gets_a_grade(tmp_path):
    _, record = grade(submission(tmp_path, FORK_LOOP), tmp_path / "out", "--only", "softmax,linear_forward")
    assert record.sandbox.processes_cap and record.component_points()["linear_forward"][0] > 0
    assert not sandbox_processes()


@pytest.mark.parametrize("mechanism", ["tmpfs", "watchdog"])
def test_what_a_child_writes_is_capped_in_all(tmp_path, monkeypatch, mechanism):
    if mechanism == "tmpfs" and not session.privileged():
        pytest.skip("a private tmpfs needs a grader run as root")
    if mechanism == "watchdog":
        monkeypatch.setattr(session, "privileged", lambda: False)  # as on a student's laptop
    limits = Limits(disk_bytes=64 << 20, disk_files=200, file_bytes=32 << 20)
    with Sandbox(submission(tmp_path, FILLS_THE_DISK), limits) as box:
        failure, _ = attempt(box)
        assert box.strength.disk_cap == mechanism
        workdirs = list(box._workdirs)
        assert failure is not None and failure.kind == "disk" and "64 MiB" in failure.message, failure
        assert not any(path.exists() for path in workdirs)  # removed with the child
        assert box.call("linear_forward", np.ones((1, 2)), np.ones((2, 2)), np.ones(2)).shape == (1, 2)
    assert not sandbox_processes()


def test_the_strength_line_names_every_protection(tmp_path):
    with Sandbox(submission(tmp_path, ""), Limits()) as box:
        box.call("softmax", np.ones((2, 3)))
        line = box.strength.description()
    assert "Landlock ABI" in line or "no Landlock" in line
    assert "writes capped at 256 MiB by" in line
    assert ("unprivileged uid" in line and "at most 64 processes" in line) if session.privileged() else \
        "processes not capped" in line
