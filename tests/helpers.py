"""Helpers the grader's own tests share: where the repository is, running the grader, finding sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grader.record import GradeRecord
from grader.report.results_json import read_results

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SOURCE = (ROOT / "reference" / "mlp.py").read_text()


def reference_with(folder: Path, code: str, **files: bytes) -> Path:
    """A submission in ``folder``: the reference's mlp.py with ``code`` after it (a later def wins), and ``files``."""
    folder.mkdir(parents=True)
    (folder / "mlp.py").write_text(REFERENCE_SOURCE + code)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def run_grader(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
               timeout: float = 1200) -> subprocess.CompletedProcess:
    """``python -m grader ARGS`` as a user runs it; its output captured as text."""
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def grade(submission: Path, out: Path, *args: str) -> tuple[subprocess.CompletedProcess, GradeRecord]:
    """Grade ``submission`` into ``out`` through the command line; the run and the record it wrote."""
    done = run_grader("grade", str(submission), "--out", str(out), *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, read_results(out / "results.json")


def live(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sandbox_processes(marker: str | None = None) -> list[int]:
    """Processes still running from one of this test process's sandbox work dirs (command line or cwd).

    ``marker`` narrows or widens the match (default: the work dirs this process creates), so a test
    run never counts the sandboxes of another run on the same machine.
    """
    marker = marker or f"mlp-sandbox-{os.getpid()}-"
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if (marker.encode() in cmdline or marker in cwd) and live(int(entry)):
            found.append(int(entry))
    return found


def running(pattern: str) -> list[str]:
    """Pids of processes whose command line matches ``pattern`` (pgrep -f)."""
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
