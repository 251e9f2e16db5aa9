"""Hostile submissions: nothing they do may crash, stall or fool the grader.

Each submission is the reference ``mlp.py`` with one misbehaviour appended (a later ``def``
wins), so every other function is known to be right. A probe grade runs five checks whose
expected values the parent computes with its own formulas, then the test asserts: the grade
stays within its budget plus a grace, every unaffected check still passes, the affected one
fails with the expected cause, no process of the submission survives, and files the child
wrote outside its work dir do not exist where Landlock confines it.
"""

from __future__ import annotations

import os
import re
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from grader.data.mnist import FILES, default_cache_dir
from grader.evaluation import accuracy
from grader.sandbox import Callback, CallFailed, Limits, Sandbox
from grader.sandbox.landlock import abi_version
from helpers import REFERENCE_SOURCE, live, sandbox_processes

# An import that hangs costs two import timeouts (one retry): 5 s each is still ten times a loaded machine's
# import of the reference.
LIMITS = Limits(call_timeout=3.0, budget=40.0, startup_timeout=10.0, import_timeout=5.0)
LABELS_PROBE = """

def _probe_read(path):
    try:
        open(path, "rb").read(1)
        return "read"
    except OSError as error:
        return type(error).__name__
"""
GRACE = 5.0
SLACK = 30.0  # seconds all the calls that neither hang nor restart may take together, on a loaded machine
LANDLOCK = abi_version()
CHECKS = ("softmax", "linear_forward", "relu_forward", "cross_entropy", "MLP")


@dataclass
class Hostile:
    code: str  # appended to the reference; {labels}, {outside}, {marker}, {port} are filled in
    failing: dict[str, str]  # check -> expected failure kind ("wrong" for a returned wrong value)
    files: dict[str, str] = field(default_factory=dict)  # extra files beside mlp.py
    replace: bool = False  # the code is the whole mlp.py
    message: str = ""  # a regex the failing checks' messages must match
    needs_landlock: int = 0  # the minimum Landlock ABI for the behaviour to be safe to try


SPAWN = """
import os, sys, time
def _spawn():
    pids = []
    pid = os.fork()
    if pid == 0:
        while True: time.sleep(1)
    pids.append(pid)
    read, write = os.pipe()
    if os.fork() == 0:  # daemonise: new session (refused under seccomp), cwd /, orphaned
        try: os.setsid()
        except OSError: pass
        os.chdir("/")
        grandchild = os.fork()
        if grandchild == 0:
            while True: time.sleep(1)
        os.write(write, str(grandchild).encode())
        os._exit(0)
    pids.append(int(os.read(read, 32)))
    try:
        import subprocess
        pids.append(subprocess.Popen(["sleep", "1000"]).pid)
    except OSError:
        pass  # exec is refused under Landlock
    print("PIDS:" + ",".join(map(str, pids)), flush=True)
"""

HOSTILE = {
    "raises": Hostile("def softmax(logits):\n    raise ValueError('boom <b>')\n", {"softmax": "raised"},
                      message="ValueError: boom <b>"),
    "hangs": Hostile("def softmax(logits):\n    while True: pass\n", {"softmax": "timeout"}),
    "ignores_sigterm": Hostile(
        "import signal, time\ndef softmax(logits):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(1000)\n", {"softmax": "timeout"}),
    "allocates_50gb": Hostile("def softmax(logits):\n    return np.ones(50 * 2**30 // 8)\n", {"softmax": "memory"},
                              message=r"^ran out of memory: Unable to allocate 50 GiB for an array with shape "
                                      r"\(6710886400,\) and data type float64; the submission may use 3072 MiB$"),
    "prints_100mb": Hostile(
        "import sys\ndef softmax(logits, _inner=softmax):\n    for _ in range(100):\n"
        "        sys.stdout.write('x' * (1 << 20))\n    sys.stdout.write('LAST LINE')\n"
        "    return _inner(logits)\n", {}),
    "os_exit": Hostile("import os\ndef softmax(logits):\n    os._exit(3)\n", {"softmax": "crashed"},
                       message="exited with status 3"),
    "segfault": Hostile("import ctypes\ndef softmax(logits):\n    ctypes.string_at(0)\n", {"softmax": "crashed"},
                        message="segmentation fault"),
    "spawns_and_hangs": Hostile(SPAWN + "def softmax(logits):\n    _spawn()\n    while True: pass\n",
                                {"softmax": "timeout"}),
    "spawns_and_exits": Hostile(SPAWN + "def softmax(logits):\n    _spawn()\n    os._exit(0)\n",
                                {"softmax": "crashed"}),
    "monkeypatches_numpy": Hostile(
        "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nnp.isclose = lambda *a, **k: True\n"
        "def softmax(logits):\n    return np.zeros_like(logits)\n", {"softmax": "wrong"}),
    "writes_fake_results": Hostile(
        "import json, os\nfor _place in ['results.json', '../results.json', '../../results.json',\n"
        "               '/tmp/results.json', '{outside}/results.json']:\n"
        "    try:\n        open(_place, 'w').write(json.dumps({{'score': 100}}))\n"
        "    except OSError:\n        pass\n", {}),
    "drops_conftest": Hostile(
        "try:\n    open('{outside}/conftest.py', 'w').write(\"open('{marker}', 'w')\")\nexcept OSError:\n    pass\n",
        {}, files={name: "open('{marker}', 'w')\n" for name in
                   ("conftest.py", "sitecustomize.py", "usercustomize.py")} | {"pytest.ini": "[pytest]\n"}),
    "returns_object_array": Hostile("def softmax(logits):\n    return np.array([1, 'a', None], dtype=object)\n",
                                    {"softmax": "raised"}, message="dtype object"),
    "returns_nan": Hostile("def softmax(logits):\n    return np.full(logits.shape, np.nan)\n", {"softmax": "wrong"}),
    "hunts_test_labels": Hostile(
        "import os\ndef softmax(logits):\n    for _root in ['/root', '/home', os.path.expanduser('~')]:\n"
        "        try: os.listdir(_root)\n        except OSError: pass\n"
        "    open('{labels}', 'rb').read()\n    return np.zeros_like(logits)\n",
        {"softmax": "raised"}, message="PermissionError", needs_landlock=1),
    "signals_the_grader": Hostile(
        "import os, signal\ndef softmax(logits):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
        {"softmax": "raised"}, message="PermissionError", needs_landlock=6),
    "opens_tcp": Hostile(
        "import socket\ndef softmax(logits):\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n",
        {"softmax": "raised"}, message="PermissionError", needs_landlock=4),
    "forges_frames": Hostile(
        "import os\ndef softmax(logits, _inner=softmax):\n"
        "    for _fd in range(3, 64):  # the config naming the reply pipe is unreadable: try every descriptor\n"
        "        try: os.write(_fd, b'MLPW' + bytes(12) + b'garbage')\n"
        "        except OSError: pass\n"
        "    return _inner(logits)\n", {"softmax": "protocol"}),
    "oversized_reply": Hostile("def softmax(logits):\n    return np.zeros((9000, 9000))\n",
                               {"softmax": "protocol"}, message="exceeds"),
    "fills_the_disk": Hostile("def softmax(logits):\n    with open('big', 'wb') as f:\n"
                              "        for _ in range(1024): f.write(bytes(1 << 20))\n",
                              {"softmax": "raised"}, message="File too large"),
    "syntax_error": Hostile("def softmax(logits:\n", {c: "import_failed" for c in CHECKS}, replace=True,
                            message="importing mlp.py failed: raised SyntaxError"),
    "hangs_on_import": Hostile("while True: pass\n", {c: "import_failed" for c in CHECKS}, replace=True,
                               message="while starting or importing"),
}


def log_softmax(logits):
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def run_checks(box: Sandbox, rng: np.random.Generator) -> dict[str, object]:
    """The probe grade: each check's outcome is "ok", "wrong" or the CallFailed."""
    logits = np.vstack([rng.normal(size=(3, 4)), [[1000.0, 0, 0, 0], [1, 325, 749, 750]]])
    x, W, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    y = np.array([0, 3, 1, 2, 2])
    weights = {"W1": rng.normal(size=(6, 5)), "b1": rng.normal(size=5), "W2": rng.normal(size=(5, 4)),
               "b2": rng.normal(size=4)}
    X = rng.normal(size=(7, 6))

    def mlp_forward():
        model = box.call("MLP", sizes=(6, 5, 4), seed=0)
        box.write_params(model, weights)
        return box.method(model, "forward", X)

    checks = {
        "softmax": (lambda: box.call("softmax", logits), np.exp(log_softmax(logits))),
        "linear_forward": (lambda: box.call("linear_forward", x, W, b), x @ W + b),
        "relu_forward": (lambda: box.call("relu_forward", x), np.where(x > 0, x, 0.0)),
        "cross_entropy": (lambda: box.call("cross_entropy", logits, y)[0],
                          -log_softmax(logits)[np.arange(5), y].mean()),
        "MLP": (mlp_forward, np.maximum(X @ weights["W1"] + weights["b1"], 0) @ weights["W2"] + weights["b2"]),
    }
    outcomes: dict[str, object] = {}
    for name, (run, expected) in checks.items():
        try:
            got = np.asarray(run())
            good = got.shape == np.shape(expected) and np.allclose(got, expected, rtol=1e-10, atol=1e-12)
            outcomes[name] = "ok" if good else "wrong"
        except CallFailed as failure:
            outcomes[name] = failure
    return outcomes


@pytest.fixture(scope="module")
def labels_file(mnist) -> Path:
    path = default_cache_dir() / "mnist" / FILES["test_labels"]
    assert path.is_file()
    return path


@pytest.mark.mnist
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_submission(name, tmp_path, labels_file):
    hostile = HOSTILE[name]
    if hostile.needs_landlock > LANDLOCK:
        pytest.skip(f"needs Landlock ABI {hostile.needs_landlock} to be tried safely; this kernel has {LANDLOCK}")
    outside, marker = tmp_path / "outside", tmp_path / "marker"
    outside.mkdir()
    listener = socket.create_server(("127.0.0.1", 0))  # a TCP peer the child must not reach
    fill = {"labels": labels_file, "outside": outside, "marker": marker, "port": listener.getsockname()[1]}
    submission = tmp_path / "submission"
    submission.mkdir()
    code = hostile.code.format(**fill)
    (submission / "mlp.py").write_text(code if hostile.replace else REFERENCE_SOURCE + "\n\n" + code + LABELS_PROBE)
    for filename, text in hostile.files.items():
        (submission / filename).write_text(text.format(**fill))

    started = time.monotonic()
    box = Sandbox(submission, LIMITS)
    try:
        outcomes = run_checks(box, np.random.default_rng(0))
        try:
            labels_read = box.call("_probe_read", str(labels_file))
        except CallFailed as failure:
            labels_read = failure.kind  # the module cannot even be imported: nothing of it runs
    finally:
        box.close()
        listener.close()
    stdout, _ = box.output()
    elapsed = time.monotonic() - started

    assert elapsed <= LIMITS.budget + GRACE
    # The cost is bounded by what failed, not by the budget: a child per failure that ends one (the
    # first child and one import retry aside), and a timeout's worth of seconds per timeout only.
    failures = [outcome for outcome in outcomes.values() if isinstance(outcome, CallFailed)]
    ending = sum(failure.kind in ("crashed", "timeout", "stopped", "protocol", "disk") for failure in failures)
    assert box.children_started <= ending + 2 + (labels_read in ("crashed", "timeout")), box.strength.restarts
    timeouts = sum(failure.kind == "timeout" for failure in failures)
    per_child = LIMITS.startup_timeout + LIMITS.import_timeout
    assert elapsed <= timeouts * LIMITS.call_timeout + min(box.children_started, 2) * per_child + SLACK, elapsed
    for check in CHECKS:
        outcome = outcomes[check]
        expected_kind = hostile.failing.get(check, "ok")
        got_kind = outcome.kind if isinstance(outcome, CallFailed) else outcome
        assert got_kind == expected_kind, f"{check}: {outcome}"
        if isinstance(outcome, CallFailed):
            assert re.search(hostile.message, outcome.message), outcome.message
            assert "\n" not in outcome.message
    spawned = [int(p) for p in re.findall(r"PIDS:([\d,]+)", stdout)[0].split(",")] if "PIDS:" in stdout else []
    assert not [pid for pid in spawned if live(pid)], "a process of the submission survived"
    assert not sandbox_processes()
    if LANDLOCK:
        assert labels_read in ("PermissionError", "import_failed", "crashed"), labels_read
        assert hostile.replace or labels_read == "PermissionError"
        assert box.strength.confined
        assert list(outside.iterdir()) == [], "the child wrote outside its work dir"
        assert not Path("/tmp/results.json").exists()
    assert not marker.exists(), "a file of the submission was executed by the grader"
    if name == "prints_100mb":
        assert "LAST LINE" in stdout and "bytes omitted" in stdout and len(stdout) < 100_000
    if name.startswith("spawns"):
        assert len(spawned) >= 2


def test_a_fresh_child_serves_the_calls_after_a_crash(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE + "\n\nimport os\ndef relu_backward(d, z):\n    os._exit(1)\n")
    with Sandbox(submission, LIMITS) as box:
        model = box.call("MLP", sizes=(3, 2), seed=0)
        with pytest.raises(CallFailed, match="exited with status 1"):
            box.call("relu_backward", np.ones(2), np.ones(2))
        with pytest.raises(CallFailed) as lost:
            box.method(model, "forward", np.ones((1, 3)))
        assert lost.value.kind == "lost_object"
        np.testing.assert_array_equal(box.call("relu_forward", np.array([-1.0, 2.0])), [0.0, 2.0])
        assert box.strength.restarts == ["exited with status 1 (sys.exit or os._exit in the submission)"]


def test_the_whole_grade_stops_at_its_budget(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    # Functions of their own: a function that ran past its timeout has its later calls cut short anyway.
    (submission / "mlp.py").write_text("import time\n" + "".join(f"def hangs_{i}(x):\n    time.sleep(100)\n"
                                                                 for i in range(5)))
    started = time.monotonic()
    with Sandbox(submission, Limits(call_timeout=2.0, budget=5.0)) as box:
        kinds = []
        for i in range(5):
            try:
                box.call(f"hangs_{i}", np.ones((1, 2)))
            except CallFailed as failure:
                kinds.append(failure.kind)
    assert time.monotonic() - started <= 5.0 + GRACE
    assert kinds[:2] == ["timeout", "timeout"] and kinds[-1] == "budget"


def test_a_function_that_hangs_costs_two_timeouts_however_often_it_is_called(tmp_path):
    """Once a call ran past its timeout, the function's later calls share one more timeout: one that hangs
    on every input costs two, not one per check, and one that hangs on one input answers the others."""
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text("import time\ndef softmax(x):\n    if x.shape[0] == 2:\n        return x\n"
                                       "    time.sleep(100)\n")
    limits = Limits(call_timeout=2.0, budget=60.0, startup_timeout=10.0)
    with Sandbox(submission, limits) as box:
        kinds, messages = [], []
        started = time.monotonic()
        for rows in (1, 2, 2, 1, 2, 1):  # it hangs on one row
            try:
                box.call("softmax", np.ones((rows, 2)))
                kinds.append("ok")
            except CallFailed as failure:
                kinds.append(failure.kind)
                messages.append(failure.message)
        elapsed = time.monotonic() - started
        restarts = box.children_started
    assert kinds == ["timeout", "ok", "ok", "timeout", "timeout", "timeout"], kinds
    assert messages[0].startswith("did not finish within 2.0 s") and "was not called again" in messages[-1]
    assert restarts == 2  # no child spent on the calls that were not made
    assert elapsed <= 2 * limits.call_timeout + restarts * limits.startup_timeout + SLACK, elapsed


def test_a_failure_told_again_carries_only_its_own_frames(tmp_path):
    """A module that cannot be imported fails every call with the same reason: each raise is a fresh
    exception, so its traceback does not grow with the calls before it (pytest renders every frame of
    every check's failure: 42 checks of a syntax error took 18 s)."""
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text("def softmax(:\n")
    depths, messages = [], set()
    with Sandbox(submission, LIMITS) as box:
        for _ in range(6):
            try:
                box.call("softmax", np.ones((1, 2)))
            except CallFailed as failure:
                depths.append(len(traceback.extract_tb(failure.__traceback__)))
                messages.add((failure.kind, failure.message))
    assert len(depths) == 6 and len(set(depths[2:])) == 1, depths
    assert len(messages) == 1 and "SyntaxError" in next(iter(messages))[1]


def test_student_input_modification_is_visible_to_the_parent(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text("def relu_forward(z):\n    z[z < 0] = 0\n    return z\n")
    z = np.array([-1.0, 2.0])
    with Sandbox(submission, LIMITS) as box:
        result, (after,) = box.call("relu_forward", z, return_args=True)
    np.testing.assert_array_equal(result, [0.0, 2.0])
    np.testing.assert_array_equal(after, [0.0, 2.0])
    np.testing.assert_array_equal(z, [-1.0, 2.0])  # the parent's own array is untouched


def test_without_landlock_grading_goes_on_and_says_the_sandbox_was_weaker(tmp_path):
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE)
    with Sandbox(submission, LIMITS, landlock=False) as box:
        outcomes = run_checks(box, np.random.default_rng(1))
    assert set(outcomes.values()) == {"ok"}
    assert not box.strength.confined and box.strength.landlock_error == "Landlock was turned off"
    assert box.strength.sessions_locked


def test_the_child_sees_a_scrubbed_environment_with_pinned_blas(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_GRADER_SECRET", "do-not-leak")
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text("import os, sys\ndef env():\n    return dict(os.environ)\n"
                                       "def cwd():\n    return os.getcwd()\n")
    with Sandbox(submission, LIMITS) as box:
        env, cwd = box.call("env"), box.call("cwd")
    assert "MLP_GRADER_SECRET" not in env and "PYTHONPATH" not in env
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["HOME"] == env["TMPDIR"] and cwd.startswith(env["HOME"]) and "mlp-sandbox-" in cwd


@pytest.mark.mnist
def test_training_in_the_sandbox_is_evaluated_by_the_parent(tmp_path, mnist):
    """The child trains; after each epoch it hands over its weights and the parent measures test accuracy."""
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE)
    accuracies = []

    def on_epoch(epoch, loss, params):
        accuracies.append(accuracy(params, mnist.x_test, mnist.y_test))

    with Sandbox(submission, Limits(call_timeout=300)) as box:
        model = box.call("MLP", seed=0)
        losses = box.call("train", model, mnist.x_train, mnist.y_train, epochs=2,
                          on_epoch=Callback(on_epoch, attach=(model, "params")))
        final = box.getattr(model, "params")
    assert len(losses) == 2 and len(accuracies) == 2 and accuracies[-1] >= 0.95
    assert accuracy(final, mnist.x_test, mnist.y_test) == accuracies[-1]


def test_close_kills_a_child_that_was_never_recorded(tmp_path):
    """An interrupt between a child's start and its registration left it running (the bug this pins down)."""
    submission = tmp_path / "s"
    submission.mkdir()
    (submission / "mlp.py").write_text(REFERENCE_SOURCE)
    box = Sandbox(submission, LIMITS)
    box.call("relu_forward", np.ones(2))
    orphan = box._child
    box._child = None  # as if the interrupt came before the child was recorded
    box.close()
    assert orphan.process.wait(timeout=5) is not None
    assert not sandbox_processes()
    for fd in (orphan.request_fd, orphan.response_fd, orphan.pidfd):
        os.close(fd)
