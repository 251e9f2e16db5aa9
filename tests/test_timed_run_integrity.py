"""The timed run cannot be replayed or bent (issue 19): it starts from weights the grader draws, is
observed as it runs, and is budgeted in CPU seconds.

The dishonest trains here behave honestly on the few rows of the verified-step checks and cheat on
the full data only, as the submissions that motivated the issue did. The contract violations that
show only on the full data are in the corpus (``tests/submission_corpus.py``, graded by
test_rubric); the replays need snapshot files made here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grader.calibration import CALIBRATION_FILE
from grader.record import GradeRecord
from grader.report.results_json import read_results
from grader.sandbox import CallFailed, Limits, Sandbox
from grader.training import WALL_FACTOR, layer_correlations, start_weights
from helpers import grade, reference_with
from reference.mlp import MLP, train

pytestmark = pytest.mark.mnist

REPLAY = """
import os as _os, time as _time
_honest_train = train


def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    if len(X) < 1000:  # the grader's small checks: behave
        return _honest_train(model, X, y, epochs, batch_size, lr, seed, on_epoch)
    history = []
    for epoch in range(1, epochs + 1):
        _time.sleep(0.5)  # about an epoch's time
        with np.load(_os.path.join(_os.path.dirname(__file__), f"snap_{{min(epoch, {last})}}.npz")) as snap:
            for key in model.params:
                model.params[key][...] = snap[key] {noise}
        history.append(0.3 / epoch)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
"""


def snapshots(mnist, init: dict[str, np.ndarray], epochs: int) -> dict[str, bytes]:
    """An honest run's weights after each epoch (float32 npz files), from ``init``."""
    model = MLP(seed=0)
    for key, value in init.items():
        model.params[key][...] = value
    files = {}

    def keep(epoch, loss):
        buffer = __import__("io").BytesIO()
        np.savez(buffer, **{key: value.astype(np.float32) for key, value in model.params.items()})
        files[f"snap_{epoch}.npz"] = buffer.getvalue()

    train(model, mnist.x_train, mnist.y_train, epochs=epochs, seed=5, on_epoch=keep)
    return files


@pytest.fixture(scope="module")
def replays(mnist, once) -> dict[str, dict[str, bytes]]:
    """Two honest runs' snapshots, made once for every worker that grades a replay of them."""
    def from_init(seed: int) -> Path:
        def make(folder: Path) -> None:
            for name, data in snapshots(mnist, MLP(seed=seed).params, 2).items():
                (folder / name).write_bytes(data)

        return once(f"replays-from-mlp-seed-{seed}", make)

    folders = {"another_init": from_init(7), "mlp_seed_0": from_init(0)}
    return {source: {path.name: path.read_bytes() for path in sorted(folder.glob("snap_*.npz"))}
            for source, folder in folders.items()}


@pytest.mark.parametrize(("source", "noise"), [("another_init", ""), ("mlp_seed_0", ""),
                                               ("another_init", "+ np.random.default_rng(epoch).normal(0, 0.01, "
                                                                "model.params[key].shape)")],
                         ids=["another_init", "mlp_seed_0", "pretrained_plus_noise"])
def test_replayed_snapshots_are_held_for_review(tmp_path, replays, source, noise):
    code = REPLAY.format(last=2, noise=noise)
    folder = reference_with(tmp_path / "s", code, **replays[source])
    _, record = grade(folder, tmp_path / "out", "--only", "train", "--epochs", "2")
    assert record.review is not None and "unrelated to the ones train was given" in record.review, record.review
    assert "after epoch 1" in record.review and "were they loaded from elsewhere?" in record.review
    observed = next(r for r in record.results if "the contract's loop" in r.name)
    assert observed.score == 0 and "nothing was observed" in observed.output
    verified = [r for r in record.results if "exactly one step" in r.name or "on_epoch once" in r.name]
    assert all(r.score == r.max_score for r in verified)  # honest on small inputs, as designed


def test_trained_weights_keep_their_start_and_others_do_not(mnist):
    start = start_weights(11)
    model = MLP(seed=0)
    for key, value in start.items():
        model.params[key][...] = value
    train(model, mnist.x_train[:20000], mnist.y_train[:20000], epochs=2, seed=3)
    kept = layer_correlations(model.params, start)
    unrelated = layer_correlations(model.params, start_weights(12))
    assert min(kept.values()) > 0.8 and max(abs(v) for v in unrelated.values()) < 0.1, (kept, unrelated)


def test_the_drawn_start_is_the_grades_own_and_a_replay_draws_it_again(tmp_path):
    assert all(np.array_equal(start_weights(5)[k], v) for k, v in start_weights(5).items())
    assert not np.array_equal(start_weights(5)["W1"], start_weights(6)["W1"])
    assert not np.array_equal(start_weights(0)["W1"], MLP(seed=0).params["W1"])
    runs = [grade(reference_with(tmp_path / f"s{i}", ""), tmp_path / f"out{i}", "--only", "train", "--epochs", "1",
                  "--seed", "4242")[1].training for i in range(2)]
    assert runs[0].start_correlations == runs[1].start_correlations and runs[0].accuracies == runs[1].accuracies


def test_a_spinning_train_is_stopped_at_its_cpu_budget_and_a_sleeping_one_by_the_wall(tmp_path):
    code = "\nimport time\ndef train(model, X, y, **kwargs):\n    if kwargs.get('lr') == 1.0:\n" \
           "        time.sleep(60)\n    while True:\n        pass\n"
    with Sandbox(reference_with(tmp_path / "s", code), Limits(call_timeout=60)) as box:
        model = box.call("MLP")
        started = time.monotonic()
        with pytest.raises(CallFailed) as spun:
            box.call("train", model, np.zeros((2, 784)), np.zeros(2, dtype=np.int64), cpu_timeout=2.0, timeout=30)
        spinning, spun_cpu = time.monotonic() - started, box.last_cpu_seconds
        model = box.call("MLP")
        started = time.monotonic()
        with pytest.raises(CallFailed) as slept:
            box.call("train", model, np.zeros((2, 784)), np.zeros(2, dtype=np.int64), lr=1.0, cpu_timeout=2.0,
                     timeout=4.0)
        sleeping = time.monotonic() - started
    assert spun.value.kind == "cpu_budget" and "CPU budget of 2.0 s" in spun.value.message
    assert 2.0 <= spun_cpu < 4.0
    assert spinning < 25 and slept.value.kind == "timeout" and 4.0 <= sleeping < 25


def busy_processes(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


@pytest.mark.slow
@pytest.mark.serial
def test_a_loaded_machine_keeps_the_time_points(tmp_path):
    """Two busy processes per core: the wall clock stretches, the CPU seconds train needs do not."""
    load = busy_processes(4)
    try:
        _, record = grade(reference_with(tmp_path / "s", ""), tmp_path / "out", "--only", "train")
    finally:
        for process in load:
            process.kill()
            process.wait()
    timing = next(r for r in record.results if "time budget" in r.name)
    assert timing.score == timing.max_score, timing.output
    training = record.training
    assert training.seconds < 3 * training.scaled_reference_seconds, training  # CPU seconds, not stretched
    assert record.review is None, record.review


def small_budget_calibration(tmp_path: Path, factor: float) -> Path:
    """The shipped calibration with its time budget factor replaced (its golden fixtures beside it)."""
    raw = json.loads(CALIBRATION_FILE.read_text())
    raw["timing"]["budget_factor"] = factor
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(raw))
    (tmp_path / "golden.npz").write_bytes(CALIBRATION_FILE.with_name("golden.npz").read_bytes())
    return path


@pytest.fixture(scope="session")
def quarter_budget(once) -> tuple[Path, GradeRecord]:
    """A calibration whose time budget is a quarter of the reference's own time (a train that never ends costs
    its budget: the test of that need not cost a whole timed run), and the reference's grade of train under it
    (what a grade costs besides its timed run), made once for the tests that read them."""
    def make(folder: Path) -> None:
        calibration = small_budget_calibration(folder, 0.25)
        grade(reference_with(folder / "ok", ""), folder / "ok_out", "--calibration", str(calibration),
              "--only", "train")

    folder = once("quarter-budget", make)
    return folder / "calibration.json", read_results(folder / "ok_out" / "results.json")


@pytest.mark.serial  # it times a whole grade against its budget
@pytest.mark.parametrize(("kind", "body"), [
    ("endless loop", "    while True:\n        pass\n"),
    ("stdout flood", "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n")])
def test_a_train_that_never_ends_costs_its_budget_and_the_checks(tmp_path, kind, body, quarter_budget):
    calibration, quiet = quarter_budget
    code = "\n_honest = train\n\n\ndef train(model, X, y, *args, **kwargs):\n    if len(X) < 1000:\n" \
           "        return _honest(model, X, y, *args, **kwargs)\n" + body
    _, record = grade(reference_with(tmp_path / "s", code), tmp_path / "out", "--calibration", str(calibration),
                      "--only", "train")
    budget, used = record.training.budget_seconds, record.training.seconds
    checks = quiet.seconds - quiet.training.seconds  # everything but the timed run itself
    print(f"\n{kind}: grade {record.seconds:.1f} s ({used:.1f} CPU s in train) for a {budget:.1f} "
          f"CPU s budget and {checks:.1f} s of other checks")
    assert record.training.stopped and "CPU budget" in record.training.stopped, record.training.stopped
    assert budget <= used <= budget + 2  # stopped at its budget, within the half-second polls
    # In wall-clock time the budget stretches with the machine's load, never past its safety net.
    assert record.seconds <= WALL_FACTOR * budget + checks + 30, (record.seconds, budget, checks)


def test_the_recorder_sees_every_batch_and_step(tmp_path, mnist):
    """What the child records for one epoch of the reference (its cost is the benchmark's row)."""
    folder = reference_with(tmp_path / "s", "")
    with Sandbox(folder, Limits(call_timeout=300)) as box:
        model = box.call("MLP")
        box.call("train", model, mnist.x_train[:6400], mnist.y_train[:6400], epochs=1, cpu_timeout=100.0,
                 observe={"handle": model, "columns": np.arange(64), "projection": np.ones(64),
                          "whole_projection": np.ones(784),
                          "summed_rows": {key: np.arange(5) for key in ("W1", "b1", "W2", "b2", "W3", "b3")}})
        record = box.last_observed
    assert record["sizes"].tolist() == [64] * 100 and len(record["fingerprints"]) == 6400
    assert record["foreign"] == 0 and np.all(record["lrs"] == 0.1)
    assert set(record["grad_sum"]) == set(record["first_grads"]) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert record["grad_sum"]["W1"].shape == (5 * 128,) and record["first_grads"]["W1"].shape == (784, 128)
    assert record["first_rows"].shape == record["first_whole"].shape == (64,)
