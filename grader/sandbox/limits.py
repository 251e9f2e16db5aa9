"""Resource limits the child sets on itself before any student code runs.

Copied into the child, so it imports only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from collections.abc import Callable

_PR_SET_CHILD_SUBREAPER, _PR_SET_KEEPCAPS = 36, 8
_CLONE_NEWNS, _MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 0x00020000, 2, 4, 0x4000, 1 << 18
_CAPABILITY_VERSION_3, _CAP_DAC_READ_SEARCH = 0x20080522, 2
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


# RLIMIT_AS is only a distant backstop, this far beyond the memory limits: address space that uses no
# memory (thread stacks, malloc's per-thread arena reservations, code) must never fail a submission.
AS_HEADROOM = 4 << 30
# The kernel's OOM killer, where a container or machine still runs out, takes the child first, never the grader.
OOM_SCORE_ADJ = 1000


def committed_bytes(field: str = "VmData") -> int:
    """This process's ``field`` of /proc/self/status in bytes (VmData: what RLIMIT_DATA counts); 0 if unreadable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def apply(memory_bytes: int, lend_bytes: int, cpu_seconds: int, file_bytes: int, open_files: int,
          processes: int | None) -> None:
    """Cap private memory, CPU time, file size, open descriptors and (when given) processes; no core dumps.

    Memory: RLIMIT_DATA counts what a process's own allocations commit (heap, anonymous and
    copy-on-write mappings, thread stacks), not code, reservations or shared mappings, and an
    allocation past it fails at once (NumPy's MemoryError names its size). Its soft limit is what
    this process has committed so far (interpreter, NumPy, BLAS buffers) plus ``memory_bytes``, the
    submission's own; the hard limit leaves ``lend_bytes`` more, lent by ``lend`` while the grader's
    inputs are mapped copy-on-write. RLIMIT_AS stays only as a backstop AS_HEADROOM further away.

    CPU: SIGXCPU at ``cpu_seconds`` (the process dies by it), SIGKILL 5 s later. ``processes``
    (RLIMIT_NPROC) counts every process and thread of the user, so it is set only for a user of
    the sandbox's own (``drop_to``); root is never bound by it.
    """
    data = committed_bytes("VmData") + memory_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (data, data + lend_bytes))
    address_space = committed_bytes("VmSize") + memory_bytes + lend_bytes + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    try:
        with open("/proc/self/oom_score_adj", "w") as adjust:
            adjust.write(str(OOM_SCORE_ADJ))
    except OSError:
        pass  # no /proc: the limits above still hold


def lend(nbytes: int) -> Callable[[], None]:
    """Raise RLIMIT_DATA's soft limit by ``nbytes`` (at most to the hard limit) for a mapping of the grader's.

    A copy-on-write mapping counts in full the moment it is made, though its pages are the grader's
    until written. Returns the function that takes the loan back (call it once the mapping is gone).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return lambda: None
    raised = soft + nbytes if hard == resource.RLIM_INFINITY else min(soft + nbytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (raised, hard))
    lent = raised - soft

    def give_back() -> None:
        now, limit = resource.getrlimit(resource.RLIMIT_DATA)
        if now != resource.RLIM_INFINITY:
            resource.setrlimit(resource.RLIMIT_DATA, (max(now - lent, 0), limit))

    return give_back


def private_tmpfs(path: str, size_bytes: int, files: int, uid: int, gid: int) -> None:
    """Mount a tmpfs of at most ``size_bytes`` and ``files`` at ``path``, seen by this process alone.

    In a mount namespace of its own, so the mount vanishes with the last process in it and the
    host sees only the empty folder. Needs CAP_SYS_ADMIN (root); raises OSError otherwise.
    """
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    options = f"size={size_bytes},nr_inodes={files},mode=0700,uid={uid},gid={gid}".encode()
    _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options), "mount tmpfs")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_to(uid: int, gid: int) -> None:
    """Become the unprivileged ``uid``:``gid``, keeping only CAP_DAC_READ_SEARCH.

    That one capability lets the interpreter go on reading its own installation where it sits
    below a private home (root's pyenv in /root, mode 0700); Landlock still decides what may be
    read, and with no_new_privs no program it starts gains anything.
    """
    _check(_libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    data = (_CapData * 2)(_CapData(1 << _CAP_DAC_READ_SEARCH, 1 << _CAP_DAC_READ_SEARCH, 0), _CapData(0, 0, 0))
    _check(_libc.capset(ctypes.byref(_CapHeader(_CAPABILITY_VERSION_3, 0)), data), "capset")


def become_subreaper() -> None:
    """Adopt orphaned descendants, so a daemonised grandchild stays below this process to be killed."""
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# seccomp: refuse setsid(), so nothing the child starts can leave its session, and killing
# the session kills it even after its parent died. Syscall numbers are per architecture.
_SETSID = {"x86_64": (0xC000003E, 112), "aarch64": (0xC00000B7, 157)}
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_RET_ALLOW, _RET_EPERM = 0x7FFF0000, 0x00050001
_LD_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_X32_BIT = 0x40000000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def forbid_new_sessions() -> bool:
    """Install the setsid() filter; return False where this architecture or kernel has no seccomp."""
    if platform.machine() not in _SETSID:
        return False
    arch, setsid = _SETSID[platform.machine()]
    program = [
        (_LD_ABS, 0, 0, 4),  # the calling convention's architecture
        (_JEQ, 0, 4, arch),  # another one: allow
        (_LD_ABS, 0, 0, 0),  # the syscall number
        (_JGE, 1, 0, _X32_BIT),  # x32 calls on x86_64: refuse them all
        (_JEQ, 0, 1, setsid),
        (_RET, 0, 0, _RET_EPERM),
        (_RET, 0, 0, _RET_ALLOW),
    ]
    filters = (_SockFilter * len(program))(*(_SockFilter(*row) for row in program))
    fprog = _SockFprog(len(program), filters)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0
