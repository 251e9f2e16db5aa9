"""Batch grading: a class of 40 mixed submissions completes with every row, resumes, survives Ctrl-C,
and takes a .zip only after validating every entry."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.assign.template import as_notebook
from grader.contract import COMPONENTS, POINTS, TOTAL_POINTS
from grader.report.results_json import read_results
from helpers import REFERENCE_SOURCE, ROOT, running, sandbox_processes
from submission_corpus import BUGGY, CORRECT

pytestmark = pytest.mark.mnist
ONLY = ",".join(c for c in COMPONENTS if c != "train")
SHOWN_WITHOUT_TRAINING = {name: bug for name, bug in BUGGY.items() if bug.losers - {"train"}}
HOSTILE = {
    "segfaults": "import ctypes\ndef softmax(logits):\n    ctypes.string_at(0)\n",
    "exits": "import os\ndef linear_forward(x, W, b):\n    os._exit(4)\n",
    "prints_garbage": "import sys\nsys.stdout.write('\\x00\\udcff<script>' * 100000)\n",
}


def batch(*args: str, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "batch", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})})


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    """40 students and more: correct variants, every buggy one whose bug is outside train (the class is graded
    without the timed run, so a bug in train alone grades as correct code does), hostile ones and two malformed
    folders."""
    folder = tmp_path_factory.mktemp("class") / "submissions"
    for name, submission in {**CORRECT, **SHOWN_WITHOUT_TRAINING}.items():
        submission.write(folder / name)
    for name, code in HOSTILE.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "mlp.py").write_text(REFERENCE_SOURCE + "\n" + code)
    (folder / "no_mlp_py").mkdir()
    (folder / "no_mlp_py" / "README.txt").write_text("forgot the code")
    (folder / "syntax_error").mkdir()
    (folder / "syntax_error" / "mlp.py").write_text("def softmax(:\n")
    assert len(list(folder.iterdir())) >= 40
    return folder


def test_a_class_of_40_completes_with_every_row(klass, tmp_path):
    done = batch(str(klass), "--out", str(tmp_path), "--jobs", "2", "--only", ONLY)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_csv(tmp_path / "grades.csv")
    assert set(rows) == {p.name for p in klass.iterdir()}
    assert rows["no_mlp_py"]["status"] == "unusable" and "no mlp.py" in rows["no_mlp_py"]["reason"]
    for name in CORRECT:
        assert float(rows[name]["total"]) == TOTAL_POINTS - POINTS["train"], name
    for name, submission in SHOWN_WITHOUT_TRAINING.items():
        losers = {c for c in COMPONENTS if c != "train" and rows[name][c] != "" and
                  float(rows[name][c]) < POINTS[c]}
        assert losers == submission.losers - {"train"}, name
    assert float(rows["segfaults"]["softmax"]) == 0
    assert float(rows["segfaults"]["linear_forward"]) == POINTS["linear_forward"]
    assert rows["syntax_error"]["status"] == "graded" and float(rows["syntax_error"]["total"]) == 0
    assert ("[40/" in done.stderr or "[41/" in done.stderr) and "ETA" in done.stderr
    index = (tmp_path / "index.html").read_text()
    assert index.count('href="') >= 40 and "<script>" in index
    for name in rows:
        if rows[name]["status"] == "graded":
            read_results(tmp_path / name / "results.json")

    again = batch(str(klass), "--out", str(tmp_path), "--jobs", "2", "--only", ONLY)
    statuses = {row["status"] for name, row in read_csv(tmp_path / "grades.csv").items() if name != "no_mlp_py"}
    assert again.returncode == 0 and statuses == {"skipped"}


def test_force_grades_again(tmp_path):
    klass = tmp_path / "k"
    CORRECT["einsum"].write(klass / "ann")
    out = tmp_path / "out"
    assert batch(str(klass), "--out", str(out), "--only", "softmax").returncode == 0
    first = (out / "ann" / "results.json").stat().st_mtime_ns
    batch(str(klass), "--out", str(out), "--only", "softmax", "--force")
    assert (out / "ann" / "results.json").stat().st_mtime_ns != first
    assert read_csv(out / "grades.csv")["ann"]["status"] == "graded"


def test_a_zip_of_the_class_grades_the_same(tmp_path):
    klass = tmp_path / "k"
    CORRECT["np_where"].write(klass / "ann")
    BUGGY["dW_transposed"].write(klass / "ben")
    archive = tmp_path / "class.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", tmp_path, "k")
    done = batch(str(archive), "--out", str(tmp_path / "out"), "--only", "softmax,linear_backward")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert float(rows["ann"]["total"]) == 18.0 and float(rows["ben"]["linear_backward"]) < 10


def grade_columns(path: Path) -> dict[str, tuple[str, ...]]:
    """Everything of grades.csv that is a grade (not the seconds it took)."""
    return {name: tuple(row[c] for c in ("total", *COMPONENTS, "status", "reason"))
            for name, row in read_csv(path).items()}


def test_a_dask_cluster_gives_the_same_grades_as_the_local_run(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the 'cluster' extra is not installed")
    klass = tmp_path / "k"
    for name in ("multi_file", "np_where"):
        CORRECT[name].write(klass / name)
    for name in ("dW_transposed", "softmax_without_max_shift"):
        BUGGY[name].write(klass / name)
    (klass / "exits").mkdir()
    (klass / "exits" / "mlp.py").write_text(REFERENCE_SOURCE + "\n" + HOSTILE["exits"])
    (klass / "no_mlp_py").mkdir()
    (klass / "notebook").mkdir()
    (klass / "notebook" / "mlp.ipynb").write_text(as_notebook(REFERENCE_SOURCE, "# my work"))
    local = batch(str(klass), "--out", str(tmp_path / "local"), "--only", ONLY, "--similarity")
    assert local.returncode == 0, local.stderr[-2000:]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  local_directory=str(tmp_path / "dask")) as cluster:
        remote = batch(str(klass), "--out", str(tmp_path / "dask-out"), "--only", ONLY, "--scheduler",
                       cluster.scheduler_address, "--similarity")
    assert remote.returncode == 0, remote.stderr[-2000:]
    grades = grade_columns(tmp_path / "local" / "grades.csv")
    assert grade_columns(tmp_path / "dask-out" / "grades.csv") == grades and len(grades) == 7
    assert float(grades["multi_file"][0]) == float(grades["notebook"][0]) == TOTAL_POINTS - POINTS["train"]
    assert grades["no_mlp_py"][-2] == "unusable"
    # Similarity screening runs on the Dask path too (here: every submission but one starts from the reference).
    screened = (tmp_path / "dask-out" / "similarity.csv").read_text()
    assert screened == (tmp_path / "local" / "similarity.csv").read_text() and "notebook" in screened
    assert (tmp_path / "dask-out" / "dW_transposed" / "report.html").is_file()
    assert (tmp_path / "dask-out" / "index.html").is_file()


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    pytest.importorskip("distributed", reason="the 'cluster' extra is not installed")
    CORRECT["np_where"].write(tmp_path / "k" / "ann")
    # Dask's own setting says how long it tries (its default, 30 s, would be most of this test's cost).
    done = batch(str(tmp_path / "k"), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9",
                 env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert done.returncode == 2 and "cannot reach the Dask scheduler" in done.stderr and "after 2 s" in done.stderr
    assert done.stderr.count("\n") == 1


def unsafe_zip(path: Path, kind: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "absolute":
            archive.writestr("/etc/evil/mlp.py", "x")
        elif kind == "dotdot":
            archive.writestr("ann/../../evil.py", "x")
        elif kind == "link":
            info = zipfile.ZipInfo("ann/mlp.py")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
        elif kind == "bomb":
            archive.writestr("ann/mlp.py", b"\0" * (50 << 20))
    return path


@pytest.mark.parametrize("kind, message", [("absolute", "absolute path"), ("dotdot", "climbs out"),
                                           ("link", "symbolic link"), ("bomb", "compressed")])
def test_unsafe_zips_are_refused_before_extraction(tmp_path, kind, message):
    done = batch(str(unsafe_zip(tmp_path / "c.zip", kind)), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out" / "grades.csv").exists()


def test_ctrl_c_keeps_what_finished(tmp_path):
    klass = tmp_path / "k"
    for i in range(6):
        (klass / f"s{i}").mkdir(parents=True)
        slow = "import time\ndef softmax(logits):\n    time.sleep(25)\n" if i else ""
        (klass / f"s{i}" / "mlp.py").write_text(REFERENCE_SOURCE + slow)
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"  # the grades' sandboxes live here, and only this run's
    scratch.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(klass), "--out", str(out), "--jobs", "2",
                                "--only", "linear_forward,softmax"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(scratch)},
                               # As a background job inherits it (CI's case): SIGINT ignored. The grader
                               # must still stop on it, and stop the grades it started.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    first = process.stderr.readline()  # s0 is quick: its row comes first
    assert "[1/6] s0: graded" in first, first
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode != 0
    rows = read_csv(out / "grades.csv")
    points = POINTS["softmax"] + POINTS["linear_forward"]
    assert rows["s0"]["status"] == "graded" and float(rows["s0"]["total"]) == points
    assert read_results(out / "s0" / "results.json").score == points
    assert len(rows) < 6
    # An interrupted grade leaves at most a partial results.json, so running the batch again grades it.
    partial = [name for name in ("s1", "s2", "s3", "s4", "s5") if (out / name / "results.json").exists()]
    assert all(read_results(out / name / "results.json").incomplete for name in partial)
    time.sleep(0.5)
    assert not sandbox_processes(str(scratch))
    leftovers = subprocess.run(["pgrep", "-f", f"grader grade {klass}"], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_ctrl_c_reaches_the_grades_on_dask_workers(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed", reason="the 'cluster' extra is not installed")
    klass = tmp_path / "k"
    for i in range(3):
        (klass / f"s{i}").mkdir(parents=True)
        (klass / f"s{i}" / "mlp.py").write_text(REFERENCE_SOURCE + "import time\ndef softmax(logits):\n"
                                                                     "    time.sleep(120)\n")
    scratch = tmp_path / "tmp"  # the workers' copies and the grades' sandboxes live here, and only this run's
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # inherited by the workers the cluster starts
    grades = f"grader grade {scratch}"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        process = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(klass), "--out", str(tmp_path / "out"),
                                    "--only", "softmax", "--scheduler", cluster.scheduler_address], cwd=ROOT,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while len(running(grades)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(running(grades)) == 2  # both workers are grading
        time.sleep(3.0)  # into the slow check
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr[-2000:]
        deadline = time.monotonic() + 60
        while (running(grades) or sandbox_processes(str(scratch))) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(grades) and not sandbox_processes(str(scratch))
    assert not list((tmp_path / "out").glob("*/results.json"))
