"""Resource limits the child sets on itself before any student code runs.

Copied into the child, so it imports only the standard library.
"""

from __future__ import annotations

import ctypes
import resource

_PR_SET_CHILD_SUBREAPER = 36


def apply(memory_bytes: int, cpu_seconds: int, file_bytes: int, open_files: int) -> None:
    """Cap address space, CPU time, file size, open descriptors; forbid core dumps.

    CPU: SIGXCPU at ``cpu_seconds`` (the process dies by it), SIGKILL 5 s later.
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def become_subreaper() -> None:
    """Adopt orphaned descendants, so a daemonised grandchild stays below this process to be killed."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


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
    import platform  # noqa: PLC0415

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
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0
