"""The parent side of the sandbox: drive one submission's child call by call, within limits.

    with Sandbox(Path("submission_dir")) as box:
        probs = box.call("softmax", logits)              # arrays in, arrays out
        model = box.call("MLP", sizes=(4, 5, 3), seed=0)  # objects stay in the child: a Handle
        box.write_params(model, weights)
        logits = box.method(model, "forward", X)

A call that fails raises CallFailed with the cause in plain words. When the child dies,
hangs or breaks the wire format it is killed with all it started, and the next call starts
a fresh child from a fresh copy of the submission.
"""

from __future__ import annotations

import array
import dataclasses
import inspect
import json
import math
import os
import pwd
import re
import select
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.kill import AT_ONCE, DYING_CHILD, describe_exit, kill_leftovers, stop
from grader.record import SandboxStrength
from grader.submission import submission_files
from grader.text import clean_text

from . import shared, stand_ins, wire
from .cpu_time import tree_cpu_seconds
from .memory import tree_private_bytes
from .native_libraries import allowed_extension_libraries
from .output import CapturedStream

_AGENT_FILES = ("agent.py", "wire.py", "limits.py", "landlock.py", "stand_ins.py", "observe.py")
_PACKAGE_DIR = Path(__file__).resolve().parent
# Names in site-packages that belong to the grader: never readable by the child.
_GRADER_NAMES = ("grader", "mlp_autograder", "__editable___mlp_autograder", "__editable__.mlp_autograder")
_MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Seconds are wall-clock unless named CPU."""

    call_timeout: float = 60.0  # one call
    budget: float = 1800.0  # the whole grade, every call and restart included
    startup_timeout: float = 30.0  # a fresh child's start (interpreter + NumPy)
    import_timeout: float = 10.0  # importing mlp.py (module-level code should only define things)
    memory_bytes: int = 3 << 30  # memory of the submission's own (RLIMIT_DATA beyond what the agent committed at start)
    lend_bytes: int = 256 << 20  # more RLIMIT_DATA while the grader's inputs are mapped copy-on-write (180 MiB)
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE: any file the child writes
    disk_bytes: int = 256 << 20  # everything the child writes, in all (tmpfs size, or the watchdog's cap)
    disk_files: int = 10_000  # files and folders the child may create
    processes: int = 64  # processes and threads of the child's own user (RLIMIT_NPROC; when run by root)
    open_files: int = 64
    blas_threads: int = 1
    max_reply_bytes: int = 256 << 20  # body of one frame from the child


@dataclass
class CallFailed(Exception):
    """A call into the submission did not return a usable value.

    ``kind`` is one of: raised, not_implemented, import_failed, timeout (wall-clock), cpu_budget, stopped, disk,
    memory, crashed, protocol, unsendable, budget, lost_object. ``message`` is one line; ``detail`` may hold a
    traceback.
    """

    kind: str
    message: str
    detail: str = ""
    exc_type: str | None = None

    def __str__(self) -> str:
        return self.message

    def again(self) -> CallFailed:
        """The same failure, to raise once more: raising one instance again would add each raise's frames
        to its traceback, and pytest renders every frame of every check's failure (a module that cannot
        be imported cost 18 s of rendering over 42 checks)."""
        return dataclasses.replace(self)


class _Timeout(Exception):
    pass


class _ChildGone(Exception):
    pass


class _OverCpu(Exception):
    """The child's tree used the call's CPU budget."""


class _Stopped(Exception):
    """The child sits stopped (SIGSTOP, SIGTSTP, a tracer): it would never answer."""


class _DiskFull(Exception):
    """The watchdog saw the child's work dir pass its cap."""


class _OverMemory(Exception):
    """The watchdog saw the child's processes hold more memory of their own than they may."""

    def __init__(self, held: int) -> None:
        self.held = held


POLL_SECONDS = 0.5  # how often a waiting parent looks for a stopped child and (watchdog) the disk
# A child first seen stopped is given this long to be continued before it is killed (a debugger's
# brief stop, a job-control race): "within a second or two".
STOP_GRACE = 1.0
# The uids of sandbox users when the grader runs as root: one per grading process, so RLIMIT_NPROC
# (which counts the whole user's processes) binds each grade alone. No passwd entry is needed.
SANDBOX_UID_BASE = 1 << 20
SANDBOX_USER_ENV = "MLP_GRADER_SANDBOX_USER"
# The memory watchdog's allowance for what the agent itself holds (interpreter, NumPy, BLAS buffers, about
# 90 MiB committed of which 20 MiB are touched) on top of Limits.memory_bytes: RLIMIT_DATA stops a single
# process before that, so only memory it cannot see (copy-on-write copies of the inputs, shared mappings,
# forked processes) ever reaches the watchdog.
AGENT_ALLOWANCE = 128 << 20
# The agent's exit status when it cannot even allocate the few bytes of a report (agent.py: OUT_OF_MEMORY).
AGENT_OUT_OF_MEMORY = 86


@dataclass
class _Child:
    process: subprocess.Popen
    workdir: Path
    box: Path  # where it may write
    request_fd: int  # a Unix socket: frames, and with a frame the descriptors of shared segments it maps
    response_fd: int
    stdout: CapturedStream
    stderr: CapturedStream
    generation: int
    pidfd: int  # readable once the child has exited
    import_failure: CallFailed | None = None
    stopped_since: float | None = None  # when the parent first saw it stopped
    shared_bytes: int = 0  # the most of the grader's shared memory one request handed it (the watchdog's due)
    memory_checked: float = 0.0  # when the watchdog last measured it


def readable_paths() -> list[str]:
    """The Python installation and its site-packages, entry by entry, minus the grader's own entries,
    and the system libraries that the extensions of allowed plotting and data libraries load."""
    roots = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= set(site.getsitepackages())
    roots = {os.path.realpath(r) for r in roots if r and os.path.isdir(r)}
    site_dirs = {os.path.realpath(sysconfig.get_path(name)) for name in ("purelib", "platlib")}
    site_dirs |= {os.path.realpath(path) for path in site.getsitepackages()}
    paths = []
    for root in sorted(roots):
        for name in sorted(os.listdir(root)):
            path = os.path.realpath(os.path.join(root, name))
            # A site-packages nested in the stdlib is listed only when it is a root of its own.
            if name == "site-packages" or path in roots or name.lower().startswith(_GRADER_NAMES):
                continue
            paths.append(path)
    return paths + list(allowed_extension_libraries(tuple(sorted(site_dirs))))


def _copy_submission(source: Path, target: Path) -> None:
    """Copy the submission's regular files (no links, no caches, size-capped) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for relative, path in submission_files(source):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)


def child_env(workdir: str | Path, blas_threads: int) -> dict[str, str]:
    threads = str(blas_threads)
    # MPLBACKEND: a plot in graded code renders off screen (there is no display to open).
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "BLIS_NUM_THREADS": threads, "VECLIB_MAXIMUM_THREADS": threads}
    # This machine's BLAS needs these to compute correctly on some processors.
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class Sandbox:
    """One submission, run in a confined child process that is replaced whenever it fails."""

    def __init__(self, module_dir: Path, limits: Limits = Limits(), landlock: bool = True) -> None:
        self.module_dir = Path(module_dir).resolve()
        self.limits = limits
        self.landlock = landlock
        self.strength = SandboxStrength()
        self.started = time.monotonic()
        self.deadline = self.started + limits.budget
        self.last_seconds = 0.0  # wall time of the last call, callbacks excluded
        self.last_cpu_seconds = 0.0  # CPU seconds the child's tree used in the last call
        self._cpu_seen, self._cpu_limit, self._cpu_checked = 0.0, None, 0.0
        self.last_observed: object = None  # what the child recorded after an observed call's last callback
        self._streams: list[tuple[CapturedStream, CapturedStream]] = []
        self._child: _Child | None = None
        self._generation = 0
        self._callbacks: list[wire.Callback] = []
        self._workdirs: list[Path] = []  # every child's, recorded before the child starts
        self._failed_starts = 0
        self._unstartable: CallFailed | None = None  # set once mlp.py failed to import twice
        self.stand_ins: list[str] = []  # libraries the child stood in (stand_ins.KNOWN names only)
        self._sent = (0, 0)  # the last request's bytes in the frame and in shared memory
        self._last_exit: int | None = None  # exit status of the child last discarded
        # A function that ran past its call timeout -> the seconds its later calls have left, together.
        self._overran: dict[str, float] = {}
        self._call_started: float | None = None  # when the last request's child began to work on it

    # ---- public API -------------------------------------------------------------------------
    def call(self, name: str, *args: object, return_args: bool = False, timeout: float | None = None,
             cpu_timeout: float | None = None, observe: dict | None = None, **kwargs: object) -> object:
        """Call the submission's module-level ``name``; with ``return_args``, also return the
        arguments as they were after the call (to see in-place modification). ``timeout`` is
        wall-clock seconds; ``cpu_timeout``, when given, stops the call once the child's tree has
        used that many CPU seconds in it (``last_cpu_seconds`` says how many it used).

        ``observe`` (``{"handle": model, "columns": (k,) int, "projection": (k,) float64,
        "whole_projection": (D,) float64, "summed_rows": {key: (r,) int}}``) records
        the model's batches and steps during the call (observe.py in the child): each callback with
        ``observed=True`` gets what was recorded since the last one, ``last_observed`` the rest.
        """
        message = {"op": "call", "name": name, "args": list(args), "kwargs": kwargs, "return_args": return_args}
        if observe is not None:
            message["observe"] = observe
        self.last_observed = None
        if timeout is not None or cpu_timeout is not None:
            return self._request(message, timeout, cpu_timeout)
        return self._leashed(name, lambda limit: self._request(message, limit))

    def method(self, handle: wire.Handle, name: str, *args: object, return_args: bool = False,
               timeout: float | None = None, **kwargs: object) -> object:
        """Call a method of an object living in the child (``return_args`` as for ``call``)."""
        self._check_handle(handle)
        message = {"op": "method", "handle": handle, "name": name, "args": list(args), "kwargs": kwargs,
                   "return_args": return_args}
        if timeout is not None:
            return self._request(message, timeout)
        return self._leashed(name, lambda limit: self._request(message, limit))

    def _leashed(self, name: str, send: Callable[[float | None], object]) -> object:
        """``send`` with the call timeout, except for a function that already ran past it once: all its
        later calls share one more call timeout, so a function that hangs on every input costs two
        timeouts, not one per check, and one that hangs on a single input still answers the others."""
        left = self._overran.get(name)
        if left is not None and left <= 0:
            raise CallFailed("timeout", f"was not called again: an earlier call of {name} ran past the "
                                        f"{self.limits.call_timeout:.0f} s limit, and its later calls have used "
                                        "the one more limit they share")
        self._call_started = None
        try:
            return send(None if left is None else min(left, self.limits.call_timeout))
        except CallFailed as failure:
            if failure.kind == "timeout" and left is None:
                self._overran[name] = self.limits.call_timeout
            raise
        finally:
            if left is not None and self._call_started is not None:  # the call's own seconds, not a restart's
                self._overran[name] = left - (time.monotonic() - self._call_started)

    def getattr(self, handle: wire.Handle, name: str) -> object:
        """An attribute of an object living in the child (e.g. a model's ``params``)."""
        self._check_handle(handle)
        return self._request({"op": "getattr", "handle": handle, "name": name}, None)

    def write_params(self, handle: wire.Handle, values: dict[str, object]) -> None:
        """Write ``values`` into the model's own ``params`` arrays, in place."""
        self._check_handle(handle)
        self._request({"op": "write_params", "handle": handle, "values": values}, None)

    @property
    def children_started(self) -> int:
        """How many child processes this sandbox has started (the first one and every restart)."""
        return len(self._workdirs)

    def output(self) -> tuple[str, str]:
        """Captured (stdout, stderr) of every child, head and tail of each; complete once closed."""
        separator = "\n[--- the submission's process was restarted ---]\n"
        return (separator.join(out.text() for out, _ in self._streams),
                separator.join(err.text() for _, err in self._streams))

    def renew(self) -> None:
        """Let the next call start a fresh child (objects in the current one are lost).

        For the timed training: it gets the submission's whole memory, not what the checks before it
        left behind in the child's heap (about 25 MiB).
        """
        if self._child is not None and self._child.import_failure is None:
            self._discard_child(closing=True, planned=True)

    def close(self) -> None:
        """Kill the child and everything it started; remove every work dir."""
        self._discard_child(closing=True)
        for workdir in self._workdirs:
            if workdir.exists():  # a child interrupted before it was recorded may still run there
                kill_leftovers(workdir)
                shutil.rmtree(workdir, ignore_errors=True)
        for out, err in self._streams:
            out.join(1.0)
            err.join(1.0)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- one request ------------------------------------------------------------------------
    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _check_handle(self, handle: wire.Handle) -> None:
        if self._child is None or handle.generation != self._child.generation:
            raise CallFailed("lost_object", "this object was lost when the submission's process was restarted "
                                            "after an earlier failure")

    def _request(self, message: dict, timeout: float | None, cpu_timeout: float | None = None) -> object:
        if self._remaining() <= 0:
            raise CallFailed("budget", f"the grading time budget of {self.limits.budget:.0f} s is used up")
        if self._unstartable is not None:
            raise self._unstartable.again()
        child = self._ensure_child()
        if child.import_failure is not None:
            raise child.import_failure.again()
        limit = min(timeout or self.limits.call_timeout, self._remaining())
        self._callbacks = []
        shared_bytes = 0

        def locate(value: object) -> tuple[int, int] | None:
            nonlocal shared_bytes
            place = shared.locate(value)
            shared_bytes += value.nbytes if place is not None else 0
            return place

        try:
            frame, descriptors = wire.encode_shared(message, locate, callback_id=self._register_callback)
        except wire.UnsendableValue as exc:
            raise CallFailed("unsendable", f"the grader cannot send {exc}") from None
        # What this request costs the child to take in, for the report of a child that cannot.
        self._sent = (sum(len(memoryview(chunk).cast("B")) for chunk in frame[1:]), shared_bytes)
        child.shared_bytes = max(child.shared_bytes, shared_bytes)
        started = self._call_started = time.monotonic()
        deadline = started + limit
        in_callbacks = 0.0
        # CPU time is read from /proc only for a call that has a CPU budget (the timed run).
        cpu_started = self._cpu_seen = self.cpu_seconds() if cpu_timeout is not None else 0.0
        self._cpu_limit = None if cpu_timeout is None else cpu_started + cpu_timeout
        try:
            self._write(child, frame, deadline, descriptors)
            while True:
                reply = self._read(child, deadline)
                if not (isinstance(reply, dict) and "event" in reply):
                    self._note_stand_ins(reply)
                    if isinstance(reply, dict) and "observed" in reply:
                        self.last_observed = reply["observed"]
                    break
                spent = self._run_callback(child, reply, deadline)
                in_callbacks += spent
                deadline += spent  # evaluating in the parent is not the submission's time
                self._watch_cpu(child)  # a child that calls back without pause is never idle for _watch
                self._watch_memory(child)
            self._expect_silence(child)
        except _Timeout:
            self._discard_child("timeout")
            raise CallFailed("timeout", f"did not finish within {limit:.1f} s and was stopped") from None
        except _OverCpu:
            self._discard_child("over its CPU budget")
            raise CallFailed("cpu_budget", f"used its CPU budget of {cpu_timeout:.1f} s and was stopped") from None
        except _Stopped:
            raise self._stopped_failure() from None
        except _DiskFull:
            raise self._disk_failure() from None
        except _OverMemory as over:
            raise self._memory_failure(over.held) from None
        except _ChildGone:
            cause = self._discard_child()
            if self._last_exit == AGENT_OUT_OF_MEMORY:
                raise CallFailed("memory", "the grader's side of the submission's process could not allocate the "
                                           f"few bytes of its report: the submission holds the rest of its "
                                           f"{_mib(self.limits.memory_bytes)} MiB") from None
            raise CallFailed("crashed", f"the submission's process {cause}") from None
        except wire.ProtocolError as exc:
            self._discard_child("protocol error")
            raise CallFailed("protocol", f"the submission's process broke the wire protocol: {exc}") from None
        except BaseException:
            # Interrupted mid-call (a check's timeout, Ctrl-C): a half-read reply must never be read later.
            self._discard_child("interrupted")
            raise
        finally:
            self.last_seconds = time.monotonic() - started - in_callbacks
            if self._cpu_limit is not None:
                self.last_cpu_seconds = max(self._cpu_seen, self.cpu_seconds()) - cpu_started
            self._cpu_limit = None
        return self._unpack(reply, message.get("return_args", False))

    def _unpack(self, reply: object, with_args: bool) -> object:
        if isinstance(reply, dict) and isinstance(reply.get("agent_failure"), dict):
            failure = self._agent_failure(reply["agent_failure"])
            self._discard_child(f"its grader's side failed ({failure.kind})")
            raise failure
        if isinstance(reply, dict) and "error" in reply and isinstance(reply["error"], dict):
            failure = _failure_from(reply["error"], self.limits.memory_bytes)
            if "No space left on device" in failure.message and self.strength.disk_cap == "tmpfs":
                raise self._disk_failure()  # the tmpfs is full: free it with the child, say why in plain words
            raise failure
        if not (isinstance(reply, dict) and "ok" in reply and (not with_args or "args" in reply)):
            self._discard_child("protocol error")
            raise CallFailed("protocol", "the submission's process sent a reply of the wrong form")
        value = reply["ok"]
        return (value, reply["args"]) if with_args else value

    def _agent_failure(self, report: dict) -> CallFailed:
        """The child's agent (not the submission's code) could not do its part of the request.

        Which part comes from the child; the sizes of what the grader sent are the parent's own.
        """
        phase = report.get("phase")
        claimed = report.get("bytes")
        claimed = claimed if type(claimed) is int and claimed >= 0 else 0
        body, mapped = self._sent
        what = {"receive": f"allocate {_mib(body)} MiB to receive the inputs",
                "map": f"map the {_mib(mapped)} MiB of training data it shares with the grader",
                "event": f"allocate {_mib(claimed)} MiB to hand an on_epoch call to the grader",
                }.get(phase, f"allocate {_mib(claimed)} MiB to send the result back")
        if report.get("memory") is True:
            return CallFailed("memory", f"the grader's side of the submission's process could not {what}: the "
                                        f"submission holds the rest of its {_mib(self.limits.memory_bytes)} MiB")
        reason = " ".join(str(report.get("reason", "")).split())[:300]
        return CallFailed("protocol", f"the grader's side of the submission's process could not {what}"
                                      + (f" ({_child_text(reason)})" if reason else ""))

    def _register_callback(self, callback: wire.Callback) -> int:
        self._callbacks.append(callback)
        return len(self._callbacks) - 1

    def _run_callback(self, child: _Child, event: dict, deadline: float) -> float:
        started = time.monotonic()
        number = event["event"]
        if type(number) is not int or not 0 <= number < len(self._callbacks):
            raise wire.ProtocolError("callback event for an unknown callback")
        callback = self._callbacks[number]
        args = event.get("args") if isinstance(event.get("args"), list) else []
        kwargs = event.get("kwargs") if isinstance(event.get("kwargs"), dict) else {}
        try:
            # Positionally or by keyword, as the contract allows; the attached value comes by its name.
            given = {callback.attach[1]: event.get("attached")} if callback.attach else {}
            if callback.observed:
                given["observed"] = event.get("observed")
            bound = inspect.signature(callback.function).bind(*args, **kwargs, **given)
        except TypeError as exc:
            reply = {"refused": f"{callback.name}() {exc}"}
        else:
            reply = {"resume": callback.function(*bound.args, **bound.kwargs)}
        spent = time.monotonic() - started
        self._write(child, wire.encode(reply), deadline + spent)
        return spent

    # ---- pipe I/O with deadlines ------------------------------------------------------------
    def _read(self, child: _Child, deadline: float) -> object:
        def read_exact(count: int) -> bytearray:
            buffer = bytearray()
            while len(buffer) < count:
                remaining = deadline - time.monotonic()
                ready = select.select([child.response_fd, child.pidfd], [], [], min(max(remaining, 0),
                                                                                   POLL_SECONDS))[0]
                if not ready:
                    self._watch(child)
                    if remaining <= POLL_SECONDS:
                        raise _Timeout
                    continue
                if child.response_fd not in ready:
                    # The child is gone, but what it started may still hold the pipe open: EOF
                    # would never come.
                    raise _ChildGone
                chunk = os.read(child.response_fd, min(count - len(buffer), 1 << 20))
                if not chunk:
                    raise _ChildGone
                buffer += chunk
            return buffer

        generation = child.generation
        return wire.read_frame(read_exact, self.limits.max_reply_bytes, text=_child_text,
                               resolve_handle=lambda number: wire.Handle(number, generation))

    def _write(self, child: _Child, frame: list, deadline: float, descriptors: list[int] = ()) -> None:
        """Write ``frame``; ``descriptors`` go with its first bytes (SCM_RIGHTS)."""
        pending = list(descriptors)
        for chunk in frame:
            view = memoryview(chunk).cast("B")
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout
                if not select.select([], [child.request_fd], [], min(remaining, POLL_SECONDS))[1]:
                    self._watch(child)
                    continue
                try:
                    if pending:
                        view = view[_send_with_descriptors(child.request_fd, view, pending):]
                        pending = []
                    else:
                        view = view[os.write(child.request_fd, view):]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    raise _ChildGone from None

    def cpu_seconds(self) -> float:
        """CPU seconds the current child's process tree has used so far (0 without a child)."""
        child = self._child
        return 0.0 if child is None else tree_cpu_seconds(child.process.pid, child.workdir)

    def _watch_cpu(self, child: _Child) -> None:
        """Past the call's CPU budget? (Read from /proc at most every POLL_SECONDS.)"""
        if self._cpu_limit is None or time.monotonic() - self._cpu_checked < POLL_SECONDS:
            return
        self._cpu_checked = time.monotonic()
        self._cpu_seen = max(self._cpu_seen, self.cpu_seconds())
        if self._cpu_seen > self._cpu_limit:
            raise _OverCpu

    def _watch_memory(self, child: _Child) -> None:
        """Does the child's tree hold more memory of its own than it may? (Measured at most every POLL_SECONDS.)

        Private memory (anonymous pages, copy-on-write copies included) and shared memory of every process
        of the tree, proportionally (a page that two of its processes share counts once), less the grader's
        shared inputs it was handed; RLIMIT_DATA stops each process's own allocations long before this.
        """
        if time.monotonic() - child.memory_checked < POLL_SECONDS:
            return
        child.memory_checked = time.monotonic()
        held = tree_private_bytes(child.process.pid, child.workdir, child.shared_bytes)
        if held > self.limits.memory_bytes + AGENT_ALLOWANCE:
            raise _OverMemory(held)

    def _memory_failure(self, held: int) -> CallFailed:
        self._discard_child("held more memory than it may")
        return CallFailed("memory", f"ran out of memory: the submission's processes held {_mib(held)} MiB in all, "
                                    f"more than the {_mib(self.limits.memory_bytes)} MiB it may use (and "
                                    f"{_mib(AGENT_ALLOWANCE)} MiB for Python and NumPy); they were stopped")

    def _watch(self, child: _Child) -> None:
        """While waiting on the child: is it stopped for good, past its CPU budget or memory, or (watchdog) its
        disk cap?"""
        self._watch_cpu(child)
        self._watch_memory(child)
        if _is_stopped(child.process.pid):
            stopped_since = child.stopped_since or time.monotonic()
            child.stopped_since = stopped_since
            if time.monotonic() - stopped_since >= STOP_GRACE:
                raise _Stopped
        else:
            child.stopped_since = None
        if self.strength.disk_cap == "watchdog" and _over(child.box, self.limits.disk_bytes, self.limits.disk_files):
            raise _DiskFull

    def _stopped_failure(self) -> CallFailed:
        self._discard_child("was stopped (SIGSTOP, SIGTSTP or a debugger) and killed")
        return CallFailed("stopped", "the submission's process stopped itself (SIGSTOP, SIGTSTP or a debugger) "
                                     "and was killed")

    def _disk_failure(self) -> CallFailed:
        self._discard_child("wrote past the disk cap")
        return CallFailed("disk", f"the submission wrote more than {self.limits.disk_bytes >> 20} MiB or "
                                  f"{self.limits.disk_files} files in all into its work dir; it was stopped and "
                                  "the work dir removed")

    def _expect_silence(self, child: _Child) -> None:
        """Nothing may follow a reply: stray bytes mean someone else writes on the pipe."""
        if select.select([child.response_fd], [], [], 0)[0]:
            if os.read(child.response_fd, 1):
                raise wire.ProtocolError("trailing bytes after the reply")
            raise _ChildGone

    # ---- child lifecycle --------------------------------------------------------------------
    def _ensure_child(self) -> _Child:
        if self._child is None:
            self._child = self._start_child()
        return self._child

    def _start_child(self) -> _Child:
        """A fresh child, greeted and with mlp.py imported (or its import failure kept for every call)."""
        self._generation += 1
        # The grading process's pid in the name tells concurrent graders' sandboxes apart.
        workdir = Path(tempfile.mkdtemp(prefix=f"mlp-sandbox-{os.getpid()}-")).resolve()
        self._workdirs.append(workdir)
        # .agent: the child's own code and config; source: the submission's copy, which the child
        # copies into box/submission; box: all the child may write (a capped tmpfs where possible).
        agent_dir, source, box = workdir / ".agent", workdir / "source", workdir / "box"
        agent_dir.mkdir()
        box.mkdir()
        for name in _AGENT_FILES:
            shutil.copyfile(_PACKAGE_DIR / name, agent_dir / name)
        _copy_submission(self.module_dir, source)
        drop, root = None, privileged()
        if root:
            uid, gid = sandbox_user()
            drop = {"uid": uid, "gid": gid}
            os.chown(box, uid, gid)
            # The sandbox's group may pass through the work dir (never list it): access(2), which
            # matplotlib asks of its config dir, drops the capability that otherwise lets it by.
            os.chown(workdir, -1, gid)
            workdir.chmod(0o710)
        # The request channel is a Unix socket, so a frame can pass the descriptors of shared segments it maps.
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent_end.shutdown(socket.SHUT_RD)  # nothing comes back this way: the child's writes fail at once
        request_write, request_read = parent_end.detach(), child_end.detach()
        response_read, response_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        limits = self.limits
        config = {
            "source": str(source), "box": str(box), "module_dir": str(box / "submission"),
            "request_fd": request_read, "response_fd": response_write, "landlock": self.landlock,
            "read": readable_paths() + ["/dev/urandom"], "write": [str(box), "/dev/null"],
            "drop": drop, "disk": {"bytes": limits.disk_bytes, "files": limits.disk_files, "tmpfs": root},
            "limits": {"memory_bytes": limits.memory_bytes, "lend_bytes": limits.lend_bytes,
                       "cpu_seconds": math.ceil(limits.budget) + 1,
                       "file_bytes": limits.file_bytes, "open_files": limits.open_files,
                       "processes": limits.processes if drop else None},
        }
        # A file, not an argument: one argument is capped at 128 KiB and the read list can be long.
        config_path = agent_dir / "config.json"
        config_path.write_text(json.dumps(config))
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", str(agent_dir / "agent.py"), str(config_path)],
                cwd=workdir, env=child_env(box, limits.blas_threads), stdin=subprocess.DEVNULL,
                stdout=out_write, stderr=err_write, pass_fds=(request_read, response_write),
                start_new_session=True)
        finally:
            for fd in (request_read, response_write, out_write, err_write):
                os.close(fd)
        os.set_blocking(request_write, False)
        streams = (CapturedStream(out_read), CapturedStream(err_read))
        self._streams.append(streams)
        child = _Child(process, workdir, box, request_write, response_read, *streams, generation=self._generation,
                       pidfd=os.pidfd_open(process.pid))
        self._child = child
        try:
            hello = self._read(child, time.monotonic() + min(limits.startup_timeout, max(self._remaining(), 0)))
            if not (isinstance(hello, dict) and isinstance(hello.get("hello"), dict)):
                raise wire.ProtocolError("the child's greeting has the wrong form")
            self._note_strength(hello["hello"], drop is not None)
            self._write(child, wire.encode({"op": "import"}), time.monotonic() + limits.startup_timeout)
            reply = self._read(child, time.monotonic() + min(limits.import_timeout, max(self._remaining(), 0)))
            self._note_stand_ins(reply)
            if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
                failure = _failure_from(reply["error"], limits.memory_bytes)
                child.import_failure = CallFailed("import_failed", f"importing mlp.py failed: {failure.message}",
                                                  failure.detail, failure.exc_type)
        except (_Timeout, _ChildGone, _Stopped, _DiskFull, wire.ProtocolError) as exc:
            cause = self._discard_child({_Timeout: f"did not answer within the {limits.import_timeout:.0f} s allowed",
                                         _Stopped: "was stopped (SIGSTOP, SIGTSTP or a debugger)",
                                         _DiskFull: "wrote past the disk cap"}.get(type(exc)))
            failure = CallFailed("import_failed", f"the submission's process {cause} while starting or "
                                                  f"importing mlp.py")
            self._failed_starts += 1
            if self._failed_starts > 1:
                # One retry (a loaded machine can be slow once); then every call fails at once with this.
                self._unstartable = failure
            raise failure from None
        return child

    def _note_stand_ins(self, reply: object) -> None:
        """Keep the names of libraries the child says it stood in; only names the grader lists count."""
        named = reply.get("stand_ins") if isinstance(reply, dict) else None
        for name in named if isinstance(named, list) else []:
            if name in stand_ins.KNOWN and name not in self.stand_ins:
                self.stand_ins.append(name)

    def _note_strength(self, hello: dict, dropped: bool) -> None:
        abi, error = hello.get("landlock_abi"), hello.get("landlock_error")
        strength = self.strength
        strength.landlock_abi = abi if type(abi) is int and abi >= 0 else 0
        strength.landlock_error = str(error)[:_MAX_MESSAGE] if error else None
        strength.sessions_locked = hello.get("sessions_locked") is True
        if not self.landlock:
            strength.landlock_error = "Landlock was turned off"
        uid = hello.get("child_uid")
        strength.child_uid = uid if type(uid) is int else None
        strength.processes_cap = self.limits.processes if dropped and uid != 0 else None
        strength.disk_cap = "tmpfs" if hello.get("disk_cap") == "tmpfs" else "watchdog"
        strength.disk_bytes = self.limits.disk_bytes

    def _discard_child(self, reason: str | None = None, closing: bool = False, planned: bool = False) -> str:
        """Kill the current child's tree and remove its work dir; return the cause of its end.

        Without a ``reason`` the child broke its connection: it gets half a second to exit, so its
        exit status can name the cause. When ``closing``, an idle child is killed at once; a
        ``planned`` end is no restart to report.
        """
        child, self._child = self._child, None
        self._last_exit = None
        if child is None:
            return reason or "was not running"
        returncode = stop(child.process, DYING_CHILD if reason is None and not closing else AT_ONCE, child.workdir)
        self._last_exit = returncode
        for fd in (child.request_fd, child.response_fd, child.pidfd):
            os.close(fd)
        shutil.rmtree(child.workdir, ignore_errors=True)
        cause = reason or (describe_exit(returncode) if returncode is not None else "closed its connection")
        if (reason is not None or returncode is not None) and not planned:
            self.strength.restarts.append(cause)
        return cause


def sandbox_user() -> tuple[int, int]:
    """(uid, gid) the child drops to: $MLP_GRADER_SANDBOX_USER (Gradescope's setup.sh creates one), else
    a user of this grading process's own (no passwd entry needed)."""
    name = os.environ.get(SANDBOX_USER_ENV)
    if name:
        try:
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
        except KeyError:
            pass  # no such user here: a user of its own still keeps the child unprivileged
    return SANDBOX_UID_BASE + os.getpid(), SANDBOX_UID_BASE + os.getpid()


def privileged() -> bool:
    """The grader runs as root: its child can get a user of its own and a private capped tmpfs."""
    return os.geteuid() == 0


def _is_stopped(pid: int) -> bool:
    """The process is in a stopped or traced state (``T`` or ``t`` in /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t")
    except (OSError, IndexError):
        return False


def _over(folder: Path, max_bytes: int, max_files: int) -> bool:
    """More than ``max_bytes`` (allocated) or ``max_files`` entries below ``folder``."""
    total, count = 0, 0
    for directory, subdirs, files in os.walk(folder):
        for name in subdirs + files:
            count += 1
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue  # removed meanwhile
            if total > max_bytes or count > max_files:
                return True
    return False


def _child_text(text: str) -> str:
    """A string from the child: valid UTF-8 (wire.valid_text), no terminal control sequences."""
    return clean_text(wire.valid_text(text))


# NumPy's MemoryError: "Unable to allocate 359. MiB for an array with shape (60000, 784) and data type float64".
_NUMPY_ALLOCATION = re.compile(r"Unable to allocate ([0-9.]+) ([KMGTPE]?i?B) (for an array with shape .*)")


def _mib(nbytes: int) -> str:
    """Bytes in MiB for a sentence: whole MiB from 10 on, one decimal below."""
    return f"{nbytes / 2**20:.0f}" if nbytes >= 10 << 20 else f"{nbytes / 2**20:.1f}"


def _failure_from(error: dict, memory_bytes: int | None = None) -> CallFailed:
    """A CallFailed from the child's report of an exception (its text is data: trimmed, never trusted).

    A MemoryError (NumPy's names the allocation) becomes one line that says so and names the limit.
    """
    exc_type = str(error.get("type", "Exception"))[:100]
    message = " ".join(str(error.get("message", "")).split())[:_MAX_MESSAGE]
    detail = str(error.get("traceback", ""))[-8000:]
    if exc_type == "NotImplementedError":
        return CallFailed("not_implemented", f"not implemented yet ({message})" if message else
                          "not implemented yet", detail, exc_type)
    if exc_type.endswith("MemoryError") and memory_bytes is not None:
        allocation = _NUMPY_ALLOCATION.match(message)
        if allocation:
            size, unit, rest = allocation.groups()
            try:
                size = f"{float(size):g}"  # NumPy writes "359." for 359
            except ValueError:
                pass
            message = f"Unable to allocate {size} {unit} {rest}"
        what = message or "an allocation of the submission failed"
        return CallFailed("memory", f"ran out of memory: {what}; the submission may use {_mib(memory_bytes)} MiB",
                          detail, exc_type)
    return CallFailed("raised", f"raised {exc_type}: {message}" if message else f"raised {exc_type}",
                      detail, exc_type)


def _send_with_descriptors(fd: int, data: memoryview, descriptors: list[int]) -> int:
    """``sendmsg`` on the socket ``fd`` with ``descriptors`` attached (SCM_RIGHTS); returns the bytes sent."""
    carrier = socket.socket(fileno=fd)
    try:
        return carrier.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", descriptors))])
    finally:
        carrier.detach()  # the descriptor stays the child record's
