"""The child side of the sandbox: confine this process, import the submission, serve calls.

Started by the parent as ``python -I agent.py CONFIG_PATH`` from a copy in the child's work
dir (with -I nothing from the environment or the current directory is imported first).
Order matters: limits, NumPy, Landlock, and only then the student's ``mlp``, which may
monkeypatch anything here. The parent believes none of it: it re-checks every frame and
computes every verdict itself.
"""

import errno
import gc
import io
import json
import math
import mmap
import os
import shutil
import socket
import sys
import traceback
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import landlock  # noqa: E402  (the agent's own modules sit beside it, on the path set just above)
import limits  # noqa: E402  (likewise)
import numpy  # noqa: E402  (imported before confinement: it needs to read its own files)
import observe  # noqa: E402  (the agent's own module, like landlock)
import stand_ins  # noqa: E402  (likewise)
import wire  # noqa: E402  (likewise)

MAX_TEXT = 4000
# Exit status when not even the few bytes of a report can be allocated (session.AGENT_OUT_OF_MEMORY).
OUT_OF_MEMORY = 86
_DRAIN_BYTES = 1 << 16

# BLAS allocates its work buffers (32 MiB with OpenBLAS) on the first product large enough: here, so
# that they count among what the agent committed before its limits were set, not as the submission's.
_ = numpy.ones((128, 128)) @ numpy.ones((128, 128))
del _


class AgentFailure(Exception):
    """The agent's own part of a request failed (receiving it, mapping the grader's inputs, encoding a
    reply or an on_epoch call), not the submission's code: reported to the parent as such."""

    def __init__(self, phase: str, nbytes: int, memory: bool = True, reason: str = "") -> None:
        super().__init__(f"the grader's side could not {phase} ({nbytes} bytes)")
        self.report = {"phase": phase, "bytes": int(nbytes), "memory": memory, "reason": reason[:300]}


class _NoRoom(Exception):
    """A buffer for incoming bytes could not be allocated; the bytes were read and dropped."""


class Connection:
    """Blocking frame I/O: requests arrive on a Unix socket (with the descriptors of shared segments),
    replies leave on a pipe."""

    def __init__(self, read_fd: int, write_fd: int, objects: dict[int, object]) -> None:
        self.read_fd, self.write_fd, self.objects = read_fd, write_fd, objects
        self.recorder: observe.Recorder | None = None  # set while an observed call runs
        try:
            self.socket: socket.socket | None = socket.socket(fileno=read_fd)
        except OSError:
            self.socket = None  # a pipe: no descriptors can come with the frames
        self.received: list[int] = []  # descriptors that came with the frame being read
        self.scratch = bytearray(_DRAIN_BYTES)  # for dropping bytes when no buffer can be had for them

    def _read_into(self, view: memoryview) -> int:
        if self.socket is None:
            return os.readv(self.read_fd, [view])
        space = socket.CMSG_SPACE(wire.MAX_DESCRIPTORS * 4)
        count, ancillary, _, _ = self.socket.recvmsg_into([view], space)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(data) - len(data) % 4
                self.received += [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, usable, 4)]
        return count

    def read_exact(self, count: int) -> bytearray:
        """Exactly ``count`` bytes; raises _NoRoom (the bytes read and dropped) when no buffer can be had."""
        try:
            buffer = bytearray(count)  # the parent is trusted: the size it announces is what it sends
        except MemoryError:
            self.drain(count)
            raise _NoRoom from None
        view, got = memoryview(buffer), 0
        while got < count:
            read = self._read_into(view[got:])
            if not read:
                raise EOFError("the grader closed the connection")
            got += read
        return buffer

    def drain(self, count: int) -> None:
        view = memoryview(self.scratch)
        while count > 0:
            read = self._read_into(view[:min(count, len(view))])
            if not read:
                raise EOFError("the grader closed the connection")
            count -= read

    def receive(self) -> object:
        """The next frame, decoded; AgentFailure when this process cannot take it in (the frame is consumed)."""
        header_length, body_length = wire.parse_prefix(bytes(self.read_exact(wire.PREFIX.size)), max_body=1 << 40)
        try:
            header = self.read_exact(header_length)
        except _NoRoom:
            self.drain(body_length)
            self._close_received()
            raise AgentFailure("receive", header_length + body_length) from None
        try:
            message, arrays, descriptors = wire.parse_header(bytes(header), body_length, wire.MAX_DESCRIPTORS)
            del header
            body = self.read_exact(body_length)
        except _NoRoom:
            self._close_received()
            raise AgentFailure("receive", body_length) from None
        except MemoryError:
            self.drain(body_length)
            self._close_received()
            raise AgentFailure("receive", header_length + body_length) from None
        fds, self.received = self.received, []
        try:
            if len(fds) != descriptors:
                raise wire.ProtocolError(f"the frame passes {descriptors} descriptors, {len(fds)} came with it")
            return wire.decode_body(message, arrays, body, resolve_handle=self.objects.__getitem__,
                                    make_callback=self.make_callback, make_rng=numpy.random.default_rng,
                                    map_shared=lambda index, offset, dtype, shape: map_shared(
                                        fds[index], offset, dtype, shape))
        except MemoryError:
            raise AgentFailure("receive", header_length + body_length) from None
        finally:
            for fd in fds:
                os.close(fd)  # a mapping keeps what it needs

    def _close_received(self) -> None:
        for fd in self.received:
            os.close(fd)
        self.received = []

    def send(self, message: object) -> None:
        """Send ``message``; AgentFailure when it cannot be encoded for want of memory (nothing is sent then)."""
        try:
            frame = wire.encode(message, handle_of=self.handle_of)
        except wire.UnsendableValue as exc:
            frame = wire.encode({"error": {"type": "UnsendableValue", "message": f"returned {exc}",
                                           "traceback": ""}})
        except MemoryError:
            phase = "event" if isinstance(message, dict) and "event" in message else "reply"
            raise AgentFailure(phase, _array_bytes(message)) from None
        for chunk in frame:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.write_fd, view):]

    def handle_of(self, value: object) -> int | None:
        """Objects of the submission's own classes travel as handles; they stay here."""
        if type(value).__module__ != "mlp" and not hasattr(value, "params"):
            return None
        for number, known in self.objects.items():
            if known is value:
                return number
        self.objects[len(self.objects) + 1] = value
        return len(self.objects)

    def make_callback(self, number: int, attach: dict | None):
        def callback(*args, **kwargs):
            extra = getattr(self.objects[attach["handle"]], attach["attr"]) if attach else None
            event = {"event": number, "args": list(args), "kwargs": kwargs, "attached": extra}
            if self.recorder is not None:
                event["observed"] = self.recorder.take()
            self.send(event)
            reply = self.receive()
            if isinstance(reply, dict) and isinstance(reply.get("refused"), str):
                raise TypeError(reply["refused"])  # called with arguments the contract does not give it
            return reply.get("resume") if isinstance(reply, dict) else None

        return callback


def reply(conn: Connection, message: dict) -> None:
    """Send a final reply; when even that cannot be encoded, say so in a few bytes, else exit OUT_OF_MEMORY."""
    try:
        conn.send(message)
    except AgentFailure as failure:
        try:
            conn.send({"agent_failure": failure.report})
        except (AgentFailure, MemoryError):
            os._exit(OUT_OF_MEMORY)


def map_shared(fd: int, offset: int, dtype: numpy.dtype, shape: tuple[int, ...]) -> numpy.ndarray:
    """The grader's array at ``offset`` of the sealed segment ``fd``, mapped copy-on-write.

    The submission gets a normal writable array; a write lands in a page of its own, never in the
    segment (sealed: nobody can write it). RLIMIT_DATA counts the whole mapping at once, so it is lent
    for as long as the mapping lives (limits.lend).
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes == 0:
        return numpy.empty(shape, dtype)
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    length = offset + nbytes - start
    try:
        size = os.fstat(fd).st_size
    except OSError as exc:
        raise AgentFailure("map", length, memory=False, reason=str(exc)) from None
    if size < offset + nbytes:
        raise wire.ProtocolError(f"an array of {nbytes} bytes at {offset} of a segment of {size}")
    for attempt in range(2):
        give_back = limits.lend(length)
        try:
            region = mmap.mmap(fd, length, access=mmap.ACCESS_COPY, offset=start)
            break
        except (OSError, MemoryError) as exc:
            give_back()
            memory = isinstance(exc, MemoryError) or exc.errno == errno.ENOMEM
            if not (memory and attempt == 0):
                raise AgentFailure("map", length, memory=memory, reason="" if memory else str(exc)) from None
        # An earlier mapping the submission kept in a reference cycle holds the loan: collect it, once.
        gc.collect()
    weakref.finalize(region, give_back)
    return numpy.frombuffer(region, dtype=dtype, count=math.prod(shape), offset=offset - start).reshape(shape)


def _array_bytes(value: object) -> int:
    """Bytes of the arrays inside ``value`` (what encoding it needs), without allocating."""
    if isinstance(value, numpy.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    return 0


def describe(exc: BaseException) -> dict:
    """The exception for the parent; its traceback shows the submission's frames, not the agent's own."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if not frame.filename.startswith(HERE + os.sep)]
    text = "".join(["Traceback (most recent call last):\n" if frames else "", *traceback.format_list(frames),
                    *traceback.format_exception_only(type(exc), exc)])
    return {"type": type(exc).__name__, "message": str(exc)[:MAX_TEXT], "traceback": text[-MAX_TEXT:]}


def serve(conn: Connection, module_dir: str) -> None:
    module, finder, reported = None, None, 0
    while True:
        # The last request's arguments (the grader's mapped inputs) go before the next request arrives.
        observed = request = result = message = None
        try:
            request = conn.receive()
        except EOFError:
            return
        except AgentFailure as failure:
            reply(conn, {"agent_failure": failure.report})
            continue
        try:
            op = request["op"]
            if op == "import":
                sys.path.insert(0, module_dir)
                finder = stand_ins.install(module_dir)
                import mlp as module  # noqa: PLC0415  (the submission, imported only now)

                result = None
            elif op == "call" and request.get("observe"):
                target, spec = getattr(module, request["name"]), dict(request["observe"])
                with observe.recording(module, spec.pop("handle"), module_dir, **spec) as conn.recorder:
                    try:
                        result = target(*request["args"], **request["kwargs"])
                    finally:
                        observed, conn.recorder = conn.recorder.take(), None
            elif op == "call":
                target = getattr(module, request["name"])
                result = target(*request["args"], **request["kwargs"])
            elif op == "method":
                target = getattr(request["handle"], request["name"])
                result = target(*request["args"], **request["kwargs"])
            elif op == "getattr":
                result = getattr(request["handle"], request["name"])
            elif op == "write_params":
                params = request["handle"].params
                for key, value in request["values"].items():
                    params[key][...] = value
                result = None
            else:
                raise ValueError(f"unknown op {op!r}")
            message = {"ok": result}
            if observed is not None:
                message["observed"] = observed
            if request.get("return_args"):
                message["args"] = request["args"]
        except AgentFailure as failure:  # an on_epoch call that could not be encoded, out through train
            message = {"agent_failure": failure.report}
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt from student code too)
            message = {"error": describe(exc)}
        if finder is not None and len(finder.stood_in) > reported:
            # Libraries stood in since the last reply (an import inside a function adds one later).
            message["stand_ins"], reported = finder.stood_in[reported:], len(finder.stood_in)
        reply(conn, message)


def main() -> None:
    with open(sys.argv[1]) as stream:
        config = json.load(stream)
    # Every print reaches the parent at once: a child killed later loses nothing it printed.
    sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    sys.stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    limits.apply(**config["limits"])
    limits.become_subreaper()
    strength = {"landlock_abi": 0, "landlock_error": None, "disk_cap": "watchdog", "child_uid": os.getuid()}
    drop, disk = config["drop"], config["disk"]
    if disk["tmpfs"]:
        # Root only, and before the privileges go: the work dir becomes a capped tmpfs of its own.
        owner = (drop["uid"], drop["gid"]) if drop else (os.getuid(), os.getgid())
        try:
            limits.private_tmpfs(config["box"], disk["bytes"], disk["files"], *owner)
            strength["disk_cap"] = "tmpfs"
        except OSError as exc:
            strength["disk_error"] = str(exc)
    strength["sessions_locked"] = limits.forbid_new_sessions()
    if drop:
        limits.drop_to(drop["uid"], drop["gid"])
        strength["child_uid"] = os.getuid()
    shutil.copytree(config["source"], config["module_dir"])
    os.chdir(config["module_dir"])
    if config["landlock"]:
        try:
            strength["landlock_abi"] = landlock.restrict(config["read"], config["write"])
        except OSError as exc:
            strength["landlock_error"] = str(exc)
    conn = Connection(config["request_fd"], config["response_fd"], {})
    conn.send({"hello": strength})
    serve(conn, config["module_dir"])


if __name__ == "__main__":
    main()
