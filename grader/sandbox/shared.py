"""Arrays the grader hands to the child without copying them: read-only views of sealed memfds.

    x_train = sealed_array((60000, 784), np.float32, lambda out: np.divide(pixels, 255, out=out))

The array's bytes live once on the machine, in a memfd (Linux) that is sealed before anyone else
sees it: no write, no shrink, no grow, no new seals, so nothing that holds a descriptor of it (the
child) can change what the grader reads there, or pull pages away from under the grader's mapping.
The grader keeps a read-only mapping; ``locate`` tells the sandbox that an array it is about to
send lies in such a segment, and the frame then carries a descriptor of it instead of the bytes
(``wire.encode_shared``). The child maps it copy-on-write (``agent.py``): the submission gets a
normal writable array, and whatever it writes lands in pages of its own.

Where memfds or seals are missing (not Linux), ``sealed_array`` gives an ordinary read-only array
and every frame carries the bytes, as before.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Arrays smaller than this travel inside the frame: a mapping is worth it only for the data set.
MIN_SHARED_BYTES = 1 << 20
NAME = "mlp-grader-data"  # how the segment shows in /proc/PID/maps and smaps (memfd:NAME)
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


@dataclass(frozen=True)
class Segment:
    fd: int  # a read-only descriptor of the sealed memfd: what the child is given
    address: int  # where the grader's own read-only mapping starts
    size: int


_segments: dict[int, Segment] = {}  # by address; an entry lives as long as its mapping
_lock = threading.Lock()


def available() -> bool:
    """Memfds with seals exist here (Linux 3.17 and later)."""
    return hasattr(os, "memfd_create") and hasattr(os, "MFD_ALLOW_SEALING") and all(
        hasattr(fcntl, name) for name in (*_SEALS, "F_ADD_SEALS"))


def sealed_array(shape: tuple[int, ...], dtype: np.dtype | type, fill: Callable[[np.ndarray], None]) -> np.ndarray:
    """A read-only array of ``shape`` and ``dtype`` whose contents ``fill(out)`` writes once, in a sealed memfd.

    ``fill`` gets a writable array of that shape and must keep no reference to it.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not available() or nbytes == 0:
        array = np.empty(shape, dtype)
        fill(array)
        array.flags.writeable = False
        return array
    fd = os.memfd_create(NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, nbytes)
        with mmap.mmap(fd, nbytes) as writable:  # MAP_SHARED: the memfd's own pages, written once
            out = np.frombuffer(writable, dtype=dtype).reshape(shape)
            fill(out)
            del out  # an exported buffer would keep the writable mapping, and the write seal would fail
        seals = 0
        for name in _SEALS:
            seals |= getattr(fcntl, name)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        # A read-only descriptor for the child (the seals already refuse writes; this refuses them twice).
        readonly = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(fd)
    try:
        region = mmap.mmap(readonly, nbytes, access=mmap.ACCESS_READ)
    except OSError:
        os.close(readonly)
        raise
    array = np.frombuffer(region, dtype=dtype).reshape(shape)
    address = array.__array_interface__["data"][0]
    with _lock:
        _segments[address] = Segment(readonly, address, nbytes)
    weakref.finalize(region, _forget, address, readonly)
    return array


def _forget(address: int, fd: int) -> None:
    with _lock:
        _segments.pop(address, None)
    os.close(fd)


def locate(array: np.ndarray) -> tuple[int, int] | None:
    """``(descriptor, byte offset)`` of a C-contiguous array that lies in a sealed segment, else None.

    Only arrays of at least MIN_SHARED_BYTES are located: smaller ones are cheaper in the frame.
    """
    if array.nbytes < MIN_SHARED_BYTES or not array.flags.c_contiguous:
        return None
    start = array.__array_interface__["data"][0]
    with _lock:
        for segment in _segments.values():
            if segment.address <= start and start + array.nbytes <= segment.address + segment.size:
                return segment.fd, start - segment.address
    return None


def segment_bytes() -> int:
    """Bytes in sealed segments right now (what the grader could map into a child at once)."""
    with _lock:
        return sum(segment.size for segment in _segments.values())
