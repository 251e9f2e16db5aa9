"""CPU seconds a sandbox child has used: its own, its threads', and every descendant's.

The timed run is budgeted in CPU time, not wall-clock time, so a loaded machine gives the same
verdict and the same cost as a quiet one. Read from /proc: user + system time of each live process
of the child's tree, plus what the processes it reaped had used (the child is a subreaper, so an
orphaned grandchild's time ends up there too).
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.kill import tree_of

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` in seconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / _TICKS


def tree_cpu_seconds(root_pid: int, workdir: Path | None = None) -> float:
    """CPU seconds of the live process tree of ``root_pid`` and of the children it reaped."""
    return sum(process_cpu_seconds(pid) for pid in tree_of(root_pid, workdir))
