"""The child side of the sandbox: confine this process, import the submission, serve calls.

Started by the parent as ``python -I agent.py CONFIG_PATH`` from a copy in the child's work
dir (with -I nothing from the environment or the current directory is imported first).
Order matters: limits, NumPy, Landlock, and only then the student's ``mlp``, which may
monkeypatch anything here. The parent believes none of it: it re-checks every frame and
computes every verdict itself.
"""

import io
import json
import os
import shutil
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import landlock  # noqa: E402  (the agent's own modules sit beside it, on the path set just above)
import limits  # noqa: E402  (likewise)
import numpy  # noqa: E402  (imported before confinement: it needs to read its own files)
import wire  # noqa: E402  (likewise)

MAX_TEXT = 4000


class Connection:
    """Blocking frame I/O over the two pipe descriptors the parent passed down."""

    def __init__(self, read_fd: int, write_fd: int, objects: dict[int, object]) -> None:
        self.read_fd, self.write_fd, self.objects = read_fd, write_fd, objects

    def read_exact(self, count: int) -> bytearray:
        buffer = bytearray()
        while len(buffer) < count:
            chunk = os.read(self.read_fd, min(count - len(buffer), 1 << 22))
            if not chunk:
                raise EOFError("the grader closed the connection")
            buffer += chunk
        return buffer

    def receive(self) -> object:
        return wire.read_frame(self.read_exact, max_body=1 << 40, resolve_handle=self.objects.__getitem__,
                               make_callback=self.make_callback, make_rng=numpy.random.default_rng)

    def send(self, message: object) -> None:
        try:
            frame = wire.encode(message, handle_of=self.handle_of)
        except wire.UnsendableValue as exc:
            frame = wire.encode({"error": {"type": "UnsendableValue", "message": f"returned {exc}",
                                           "traceback": ""}})
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
        def callback(*args):
            extra = getattr(self.objects[attach["handle"]], attach["attr"]) if attach else None
            self.send({"event": number, "args": list(args), "attached": extra})
            reply = self.receive()
            return reply.get("resume") if isinstance(reply, dict) else None

        return callback


def describe(exc: BaseException) -> dict:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "message": str(exc)[:MAX_TEXT], "traceback": text[-MAX_TEXT:]}


def serve(conn: Connection, module_dir: str) -> None:
    module = None
    while True:
        try:
            request = conn.receive()
        except EOFError:
            return
        try:
            op = request["op"]
            if op == "import":
                sys.path.insert(0, module_dir)
                import mlp as module  # noqa: PLC0415  (the submission, imported only now)

                result = None
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
            reply = {"ok": result}
            if request.get("return_args"):
                reply["args"] = request["args"]
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt from student code too)
            reply = {"error": describe(exc)}
        conn.send(reply)


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
