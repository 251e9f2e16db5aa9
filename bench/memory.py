"""Peak memory of a whole grade: the grading process and the submission's child together.

``python -m bench.memory [SUBMISSION ...]`` grades each submission (default: the reference and the
reference whose ``train`` starts with ``X = X.astype(np.float64)``) in a process of its own and
prints the peak. Where a memory cgroup can be made (root, cgroup v1 at /sys/fs/cgroup/memory) the
grade runs in a fresh one and the peak is its ``memory.max_usage_in_bytes`` (page cache included,
as a container's limit counts it) next to the peak of its anonymous and shared memory sampled from
``memory.stat`` (what cannot be reclaimed); elsewhere the peak is the sampled proportional set size
(anonymous + shared, PSS) summed over the grade's process tree, so memory the two processes share is
counted once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import print_table

ROOT = Path(__file__).resolve().parents[1]
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
SAMPLE_SECONDS = 0.02
FLOAT64_TRAIN = "    X = X.astype(np.float64)  # float64 arithmetic, as the lecture's notebook did\n"
# The heavier pattern: the float64 copy, a shuffled float64 copy each epoch and one-hot labels for every row.
HEAVY_TRAIN = '''
def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    X = X.astype(np.float64)
    Y = np.eye(10)[y]  # one-hot labels, one row per example
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    history = []
    for epoch in range(epochs):
        perm = rng.permutation(n)
        X, Y = X[perm], Y[perm]
        total = 0.0
        for start in range(0, n, batch_size):
            xb, yb = X[start:start + batch_size], Y[start:start + batch_size]
            loss, grads = model.loss_and_grads(xb, yb.argmax(axis=1))
            sgd_step(model.params, grads, lr)
            total += loss * len(xb)
        history.append(total / n)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
'''


def float64_source() -> str:
    """The reference with ``X = X.astype(np.float64)`` as the first line of ``train``'s body."""
    source = (ROOT / "reference" / "mlp.py").read_text()
    marker = "    # BEGIN SOLUTION: shuffle indices each epoch"
    assert marker in source
    return source.replace(marker, FLOAT64_TRAIN + marker, 1)


def heavy_source() -> str:
    return (ROOT / "reference" / "mlp.py").read_text() + "\n" + HEAVY_TRAIN


@dataclass
class Peak:
    usage: int | None  # the cgroup's max usage (page cache included); None without a cgroup
    resident: int  # sampled peak of anonymous + shared memory (cgroup's memory.stat, else the tree's PSS)
    score: float | None  # the grade's total, to show it graded as expected
    how: str

    def text(self) -> str:
        score = "" if self.score is None else f", score {self.score:g}"
        if self.usage is None:
            return f"{self.resident / 2**20:.0f} MiB ({self.how}{score})"
        return (f"{self.usage / 2**20:.0f} MiB ({self.how}; {self.resident / 2**20:.0f} MiB anonymous + shared, "
                f"sampled{score})")


def _stat(group: Path) -> int:
    values = {}
    for line in (group / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        values[key] = int(value)
    return values.get("total_rss", 0) + values.get("total_shmem", 0)


def _pss(pid: int) -> int:
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as stream:
            for line in stream:
                if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                    total += int(line.split()[1]) * 1024
    except OSError:
        pass
    return total


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as stream:
                    parent = int(stream.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _make_group() -> Path | None:
    group = CGROUP_V1 / f"mlp-bench-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
        (group / "memory.max_usage_in_bytes").write_text("0")
        return group
    except OSError:
        return None


def _remove_group(group: Path) -> None:
    for _ in range(100):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def grade_peak(submission: Path, env: dict[str, str] | None = None, epochs: int | None = None) -> Peak:
    """Grade ``submission`` with ``python -m grader grade`` in a process of its own; its peak memory."""
    group = _make_group()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as out:
        command = [sys.executable, "-m", "grader", "grade", str(submission), "--out", out]
        if epochs is not None:
            command += ["--epochs", str(epochs)]

        def enter() -> None:
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))

        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   preexec_fn=enter)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    now = _stat(group) if group is not None else sum(_pss(pid) for pid in _tree(process.pid))
                except OSError:
                    now = 0
                peak = max(peak, now)
                time.sleep(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, stderr = process.communicate()
        done.set()
        sampler.join()
        if process.returncode != 0:
            raise RuntimeError(f"grading {submission} failed: {stderr[-2000:]}")
        score = None
        try:
            from grader.report.results_json import read_results  # noqa: PLC0415  (only here)

            score = read_results(Path(out) / "results.json").score
        except Exception:  # noqa: BLE001  (a number, not a verdict)
            pass
    if group is None:
        return Peak(None, peak, score, "PSS of the process tree, sampled")
    usage = int((group / "memory.max_usage_in_bytes").read_text())
    _remove_group(group)
    return Peak(usage, peak, score, "memory cgroup's max usage")


def memory_rows(env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Bench rows: the whole grade's peak memory for the reference and its float64 variant."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-subs-") as scratch:
        for name, source in (("reference", (ROOT / "reference" / "mlp.py").read_text()),
                             ("reference, train in float64", float64_source())):
            folder = Path(scratch) / name.replace(" ", "_").replace(",", "")
            folder.mkdir()
            (folder / "mlp.py").write_text(source)
            rows.append((f"peak memory of a whole grade, {name}", grade_peak(folder, env).text()))
    return rows


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    rows = [(f"peak memory of a whole grade, {p}", grade_peak(p).text()) for p in paths] if paths else memory_rows()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
