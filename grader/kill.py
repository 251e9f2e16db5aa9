"""The one place processes are stopped: the policy (signal, grace) and what is killed.

Used for the sandbox's child (``sandbox/session.py``), a batch's grade processes and a Dask
worker's grades (``batch/grade_process.py``). A stop sends the policy's polite signal, if any,
waits the grace period for the process to exit by itself, then SIGKILLs, until none is left,
everything that belongs to it: its session, its process group, every descendant, and any
process whose working directory is inside its work dir (a grandchild that left the session
still sits there). Children started here run in their own session, and a sandbox child makes
itself a subreaper, so its descendants stay findable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StopPolicy:
    """How a process is asked to stop before it is killed."""

    polite: signal.Signals | None  # sent first; None: no warning
    grace: float  # seconds it may take to exit by itself before everything of it is SIGKILLed


# The sandbox's child: killed at once when the grader is done with it or it timed out.
AT_ONCE = StopPolicy(None, 0.0)
# A child that closed its connection is usually dying: half a second lets its exit status name the cause.
DYING_CHILD = StopPolicy(None, 0.5)
# A grade process: SIGINT lets it close its sandbox and leave only an incomplete results.json.
GRADE_PROCESS = StopPolicy(signal.SIGINT, 20.0)


def stop(process: subprocess.Popen, policy: StopPolicy, workdir: Path | None = None) -> int | None:
    """Stop ``process`` by ``policy`` and kill all that belongs to it; its exit status if it ended by itself."""
    returncode = process.poll()
    if returncode is None and policy.polite is not None:
        try:
            process.send_signal(policy.polite)
        except ProcessLookupError:
            pass
    if returncode is None and policy.grace > 0:
        try:
            returncode = process.wait(timeout=policy.grace)
        except subprocess.TimeoutExpired:
            pass
    kill_tree(process, workdir)
    return returncode


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, sid) of every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def _cwd_inside(pid: int, root: str) -> bool:
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == root or cwd.startswith(root + os.sep)


def tree_of(root_pid: int, workdir: Path | None) -> set[int]:
    """Every live process that belongs to the child started as ``root_pid`` (including it)."""
    table = _proc_table()
    members = {pid for pid, (_, pgid, sid) in table.items() if root_pid in (pgid, sid)}
    if root_pid in table:
        members.add(root_pid)
    grown = True
    while grown:
        before = len(members)
        members |= {pid for pid, (ppid, _, _) in table.items() if ppid in members}
        grown = len(members) > before
    if workdir is not None:
        root = str(workdir.resolve())
        members |= {pid for pid in table if _cwd_inside(pid, root)}
    members.discard(os.getpid())
    return members


def _sigkill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # gone meanwhile


def kill_tree(process: subprocess.Popen, workdir: Path | None, rounds: int = 50) -> None:
    """SIGKILL the child and every process of its tree, then reap the child."""
    for _ in range(rounds):
        members = tree_of(process.pid, workdir)
        if process.poll() is None:
            members.add(process.pid)
        if not members:
            break
        _sigkill(members)
        process.poll()
        time.sleep(0.005)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass  # unkillable (stuck in the kernel); nothing more a user-space grader can do


def describe_exit(returncode: int | None) -> str:
    """The cause of a child's death in plain words."""
    if returncode is None:
        return "stopped answering"
    if returncode >= 0:
        return f"exited with status {returncode} (sys.exit or os._exit in the submission)"
    number = -returncode
    causes = {
        signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV), e.g. through ctypes or a bad pointer",
        signal.SIGBUS: "crashed with a bus error (SIGBUS)",
        signal.SIGABRT: "aborted (SIGABRT), often an internal assertion in a C library",
        signal.SIGXCPU: "used up its CPU time limit (SIGXCPU)",
        signal.SIGXFSZ: "wrote a file past its size limit (SIGXFSZ)",
        signal.SIGKILL: "was killed (SIGKILL), by a limit or by the system running out of memory",
        signal.SIGFPE: "crashed with an arithmetic exception (SIGFPE)",
    }
    return causes.get(number, f"was killed by signal {signal.Signals(number).name}"
                      if number in signal.Signals._value2member_map_ else f"was killed by signal {number}")


def kill_leftovers(workdir: Path, rounds: int = 50) -> None:
    """SIGKILL every process working inside ``workdir``, with everything in its session.

    For a child that was never recorded (an interrupt between its start and its registration):
    it runs in ``workdir``, and seccomp keeps all it started in its session.
    """
    root = str(workdir.resolve())
    for _ in range(rounds):
        table = _proc_table()
        inside = {pid for pid in table if _cwd_inside(pid, root)}
        sessions = {table[pid][2] for pid in inside}
        members = inside | {pid for pid, (_, _, sid) in table.items() if sid in sessions}
        members.discard(os.getpid())
        if not members:
            return
        _sigkill(members)
        time.sleep(0.005)
