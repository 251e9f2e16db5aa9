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


def _kib_fields(path: str, anonymous: bytes, shared: bytes) -> tuple[int, int]:
    """The two ``Name:  N kB`` fields of a /proc file, in bytes (0 where absent)."""
    found = {anonymous: 0, shared: 0}
    with open(path, "rb") as stream:
        for line in stream:
            name = line.split(b":", 1)[0]
            if name in found:
                found[name] = int(line.split()[1]) * 1024
    return found[anonymous], found[shared]


def process_memory(pid: int) -> tuple[int, int]:
    """``(anonymous, shared)`` bytes of ``pid``, proportionally; (0, 0) when it is gone or unreadable."""
    try:
        anonymous, shmem = _kib_fields(f"/proc/{pid}/smaps_rollup", b"Pss_Anon", b"Pss_Shmem")
        if anonymous or shmem:
            return anonymous, shmem
        # A kernel without the Pss_ breakdown (before 5.0): resident pages, shared ones counted per process.
        return _kib_fields(f"/proc/{pid}/status", b"RssAnon", b"RssShmem")
    except (OSError, ValueError, IndexError):
        return 0, 0


def tree_private_bytes(root_pid: int, workdir: Path | None = None, granted_shared: int = 0) -> int:
    """Anonymous + shared memory of the live tree of ``root_pid``, less at most ``granted_shared`` of shared memory."""
    anonymous = shmem = 0
    for pid in tree_of(root_pid, workdir):
        own, shared = process_memory(pid)
        anonymous += own
        shmem += shared
    return anonymous + max(shmem - granted_shared, 0)
