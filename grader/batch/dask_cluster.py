"""Batch grades on an existing Dask distributed cluster (``batch --scheduler ADDRESS``).

The workers have the grader installed but need not share a file system with this machine: each
task carries the student's files (as the sandbox would copy them), the worker grades them with
the same ``python -m grader grade`` process as a local batch, in a temporary folder, and returns
``results.json`` and ``report.html`` as bytes, which are written here. A named Dask ``Event``
carries Ctrl-C to the workers: their running grades are interrupted like local ones. How long an
unreachable scheduler is tried is Dask's own setting (``distributed.comm.timeouts.connect``, 30 s
unless configured, e.g. by ``$DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath

from grader.batch.grade_process import Outcome, run_grade
from grader.errors import GraderError
from grader.report.results_json import write_atomically
from grader.submission import submission_files

_OUTPUTS = ("report.html", "results.json")  # results.json last: its presence marks a student as graded


class BatchError(GraderError):
    """The cluster cannot be used; the message is one line."""


def grade_on_worker(student: str, files: dict[str, bytes], grade_args: list[str], stop_event: str) -> dict:
    """Runs on a Dask worker: grade ``files`` as the folder ``student``; the outcome and output files."""
    from distributed import Event  # noqa: PLC0415  (imported where the task runs)

    stop = Event(stop_event)
    with tempfile.TemporaryDirectory(prefix="mlp-batch-worker-") as scratch:
        folder = Path(scratch, "submissions", student)
        for name, data in files.items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"refused file name {name!r}")
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(data)
        folder.mkdir(parents=True, exist_ok=True)
        out = Path(scratch, "out")
        outcome = run_grade(folder, out, grade_args, should_stop=stop.is_set, poll=1.0)
        produced = {name: (out / name).read_bytes() for name in _OUTPUTS if (out / name).is_file()}
    return {"returncode": outcome.returncode, "stderr": outcome.stderr, "seconds": outcome.seconds,
            "stopped": outcome.stopped, "files": produced, "folder": str(folder)}


class DaskGrades:
    """Grades on the cluster whose scheduler listens at ``address``; as many at once as it has threads."""

    def __init__(self, address: str, grade_args: list[str]) -> None:
        try:
            import dask.config  # noqa: PLC0415  (the optional 'cluster' extra)
            from distributed import Client, Event  # noqa: PLC0415
        except ImportError:
            raise BatchError("--scheduler needs Dask: pip install 'mlp-autograder[cluster]'") from None
        try:
            self.client = Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect"))
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.grade_args = grade_args
        self.slots = max(1, sum(self.client.nthreads().values()))
        self._stop_name = f"mlp-batch-stop-{uuid.uuid4().hex}"
        self._stop = Event(self._stop_name, client=self.client)

    def grade(self, folder: Path, target: Path) -> Outcome:
        started = time.monotonic()
        files = {relative: path.read_bytes() for relative, path in submission_files(folder)}
        future = self.client.submit(grade_on_worker, folder.name, files, self.grade_args, self._stop_name,
                                    key=f"grade-{folder.name}-{uuid.uuid4().hex[:8]}", pure=False, retries=0)
        try:
            done = future.result()
        except Exception as exc:  # noqa: BLE001  (a lost worker is that student's error row, not the batch's end)
            return Outcome(None, "", time.monotonic() - started, f"the Dask worker failed: {type(exc).__name__}: {exc}")
        if done["files"]:
            target.mkdir(parents=True, exist_ok=True)
            for name in _OUTPUTS:
                if name in done["files"]:
                    write_atomically(target / name, done["files"][name].decode("utf-8"))
        # Messages name the folder the instructor gave, as a local batch's do, not the worker's copy.
        stderr = done["stderr"].replace(done["folder"], str(folder))
        return Outcome(done["returncode"], stderr, done["seconds"], done["stopped"])

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.client.close()
