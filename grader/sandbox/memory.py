"""The memory a sandbox child's process tree holds of its own, for the parent's memory watchdog.

Read from /proc: each process's proportional set size of anonymous and shared memory
(``smaps_rollup``: ``Pss_Anon`` + ``Pss_Shmem``), so that a page two processes of the tree share
(a fork's, a shared mapping's) counts once, and copy-on-write copies of the grader's inputs count as
the submission's. What the grader shares with the child (the training images, mapped copy-on-write)
is taken off, up to what it handed the child: those pages are the grader's until written.
"""

from __future__ import annotations

from pathlib import Path

from grader.kill import tree_of


def process_memory(pid: int) -> tuple[int, int]:
    """``(anonymous, shared)`` bytes of ``pid``, proportionally; (0, 0) when it is gone or unreadable."""
    anonymous = shmem = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss_Anon:"):
                    anonymous = int(line.split()[1]) * 1024
                elif line.startswith(b"Pss_Shmem:"):
                    shmem = int(line.split()[1]) * 1024
        if anonymous or shmem:
            return anonymous, shmem
        # A kernel without the Pss_ breakdown (before 5.0): resident pages, shared ones counted per process.
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssAnon:"):
                    anonymous = int(line.split()[1]) * 1024
                elif line.startswith(b"RssShmem:"):
                    shmem = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0, 0
    return anonymous, shmem


def tree_private_bytes(root_pid: int, workdir: Path | None = None, granted_shared: int = 0) -> int:
    """Anonymous + shared memory of the live tree of ``root_pid``, less at most ``granted_shared`` of shared memory."""
    anonymous = shmem = 0
    for pid in tree_of(root_pid, workdir):
        own, shared = process_memory(pid)
        anonymous += own
        shmem += shared
    return anonymous + max(shmem - granted_shared, 0)
