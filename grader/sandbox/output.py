"""Capture a child's stdout or stderr with bounded memory: the first and last bytes, and a count."""

from __future__ import annotations

import fcntl
import os
import threading
from collections import deque

from grader.text import clean_text


class CapturedStream:
    """Drains a pipe on a daemon thread, keeping ``head`` bytes from the start and ``tail`` from the end.

    Draining never blocks the child, so a submission that prints gigabytes only costs the time
    to read them, and its prints never fail.
    """

    def __init__(self, fd: int, head: int = 32 * 1024, tail: int = 32 * 1024) -> None:
        self._fd, self._head_cap, self._tail_cap = fd, head, tail
        try:  # a deeper pipe: a flood of prints is drained in fewer, larger reads
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass  # above this machine's pipe-max-size: the default depth works, only slower
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.total = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while chunk := os.read(self._fd, 1 << 20):
                with self._lock:
                    self.total += len(chunk)
                    room = self._head_cap - len(self._head)
                    self._head += chunk[:room]
                    rest = chunk[room:] if room > 0 else chunk
                    if rest:
                        self._tail.append(rest)
                        self._tail_size += len(rest)
                        while self._tail_size - len(self._tail[0]) >= self._tail_cap:
                            self._tail_size -= len(self._tail.popleft())
        finally:
            os.close(self._fd)

    def join(self, timeout: float) -> None:
        """Wait for the pipe's end (all writers gone) at most ``timeout`` seconds."""
        self._thread.join(timeout)

    def text(self) -> str:
        """Head, an omission marker, and tail, decoded leniently."""
        with self._lock:
            tail = b"".join(self._tail)[-self._tail_cap:]
            omitted = self.total - len(self._head) - len(tail)
            head = bytes(self._head)
        marker = f"\n[... {omitted} bytes omitted ...]\n".encode() if omitted > 0 else b""
        return clean_text((head + marker + tail).decode("utf-8", errors="replace"))
