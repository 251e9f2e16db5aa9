"""The pytest plugin of the rubric: fixtures for the checks, points and component tags, results.

Registered as an object by ``run.grade`` (never through a conftest, so nothing of the
submission can be loaded as one). Each check carries ``@pytest.mark.points(n)`` and its
module ``pytestmark = pytest.mark.component("name")``; a check may ``award(fraction)`` for
partial credit. The plugin turns every check's outcome into a ``CheckResult``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from grader import calibration as calibration_files
from grader.contract import COMPONENTS, EPOCHS, POINTS
from grader.data import MNIST, load_mnist
from grader.record import CheckResult, GradeRecord, TrainingRecord
from grader.rubric.feedback import CheckFailure
from grader.sandbox import CallFailed, Limits, Sandbox
from grader.sandbox.stand_ins import note as stand_in_note
from grader.training import EpochProgress

CHECKS_BUDGET = 300.0  # seconds for every check but the timed training
# Seconds one call of a check may take (a function that hangs costs two: sandbox.session); --call-timeout.
CALL_TIMEOUT = 30.0
DEADLINE_RESERVE = 15.0  # seconds kept before a --deadline to write the reports
TRANSFER_ALLOWANCE = 60.0  # seconds to ship MNIST to the child and evaluate, on top of the training budget
IMPORT_FAILED = "not run: mlp.py could not be imported (the reason is at the top of the report)"


@dataclass
class GradingContext:
    """What a grade is run with; ``record`` gathers what it produces (results, training, sandbox)."""

    module_dir: Path
    record: GradeRecord
    only: frozenset[str] | None = None
    mnist_dir: str | None = None
    training_budget: float = 0.0  # wall-clock seconds reserved for the timed training in the sandbox's budget
    override_review: bool = False  # an instructor grants the accuracy points of an implausible run
    deadline_at: float | None = None  # time.monotonic() by which the whole grade must be written
    memory_bytes: int = Limits.memory_bytes  # the submission's own memory in its child (Limits.memory_bytes)
    call_timeout: float = CALL_TIMEOUT  # seconds one call of a check may take
    on_result: Callable[[GradeRecord], None] | None = None  # called after every check (partial results.json)
    translate: Callable[[str], str] = str  # a failure text in the student's terms (a notebook's cells); str: as is
    progress: Callable[[EpochProgress], None] | None = None  # called as each timed epoch is scored

    def seconds_left(self, reserve: float) -> float:
        """Seconds until the deadline minus ``reserve`` (infinite without a deadline)."""
        return float("inf") if self.deadline_at is None else self.deadline_at - time.monotonic() - reserve

    @property
    def epochs(self) -> int:
        return self.record.epochs

    @property
    def training(self) -> TrainingRecord:
        """The timed training's record (the train checks run only when grade() created it)."""
        assert self.record.training is not None
        return self.record.training


def first_line_of_doc(item: pytest.Item) -> str:
    doc = (item.function.__doc__ or item.name).strip()
    return doc.splitlines()[0].rstrip(".")


class RubricPlugin:
    """Fixtures and hooks for one grade."""

    def __init__(self, context: GradingContext, calibration_path: Path = calibration_files.CALIBRATION_FILE) -> None:
        self._context = context
        self._calibration_path = calibration_path
        self._awards: dict[str, tuple[float, str]] = {}
        self._box: Sandbox | None = None
        self._mnist: Future[MNIST] | None = None

    # ---- configuration ----------------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): the check's maximum score")
        config.addinivalue_line("markers", "component(name): the contract component the check targets")
        config.addinivalue_line("markers", "timed: judges the timed training run (informational under --epochs)")

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept = []
        points = dict.fromkeys(COMPONENTS, 0.0)
        for item in items:
            component = item.get_closest_marker("component")
            if component is None or component.args[0] not in COMPONENTS or item.get_closest_marker("points") is None:
                raise pytest.UsageError(f"{item.nodeid}: every check needs a valid component and points marker")
            points[component.args[0]] += float(item.get_closest_marker("points").args[0])
            if self._context.only is None or component.args[0] in self._context.only:
                kept.append(item)
            if component.args[0] == "train":
                # The timed training is bounded by its own budget, not by the per-check default.
                item.add_marker(pytest.mark.timeout(self._context.training_budget + 120))
        if points != POINTS:
            raise pytest.UsageError(f"the checks' points {points} differ from grader.contract.POINTS")
        items[:] = sorted(kept, key=lambda item: COMPONENTS.index(item.get_closest_marker("component").args[0]))
        if any("mnist" in item.fixturenames for item in items):
            # Read MNIST while the checks before the training run: the parent only waits on the child then.
            loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mnist")
            # The training images in sealed shared memory: the child maps them instead of receiving a copy.
            self._mnist = loader.submit(load_mnist, self._context.mnist_dir, shared=True)
            loader.shutdown(wait=False)

    # ---- fixtures ---------------------------------------------------------------------------
    @pytest.fixture(scope="session")
    def context(self) -> GradingContext:
        return self._context

    @pytest.fixture(scope="session")
    def box(self):
        budget = min(CHECKS_BUDGET + self._context.training_budget, self._context.seconds_left(DEADLINE_RESERVE))
        limits = Limits(call_timeout=self._context.call_timeout, budget=max(budget, 1.0),
                        memory_bytes=self._context.memory_bytes)
        self._box = Sandbox(self._context.module_dir, limits)
        yield self._box
        self._box.close()
        record = self._context.record
        record.sandbox = self._box.strength
        record.stand_ins = [stand_in_note(name) for name in self._box.stand_ins]
        record.stdout, record.stderr = self._box.output()

    @pytest.fixture(scope="session")
    def calibration(self) -> calibration_files.Calibration:
        return calibration_files.load(self._calibration_path)

    @pytest.fixture(scope="session")
    def golden(self, calibration: calibration_files.Calibration) -> dict[str, np.ndarray]:
        return calibration_files.golden(calibration, self._calibration_path.with_name("golden.npz"))

    @pytest.fixture(scope="session")
    def mnist(self) -> MNIST:
        return self._mnist.result()  # started at collection, as a selected check needs it

    @pytest.fixture
    def rng(self, request: pytest.FixtureRequest) -> np.random.Generator:
        """Fresh inputs each run (the run's seed is reported), distinct per check."""
        return np.random.default_rng([self._context.record.seed, *request.node.nodeid.encode()])

    @pytest.fixture
    def award(self, request: pytest.FixtureRequest):
        """``award(fraction, note)``: partial credit for a check that otherwise passes."""
        def give(fraction: float, note: str = "") -> None:
            self._awards[request.node.nodeid] = (min(max(float(fraction), 0.0), 1.0), note)
        return give

    # ---- verdicts ---------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        failed_setup = report.when == "setup" and report.failed
        if report.when != "call" and not failed_setup:
            return
        points = float(item.get_closest_marker("points").args[0])
        fraction, note = self._awards.get(item.nodeid, (1.0, ""))
        if report.passed:
            status, score, output = "passed", points * fraction, note
        else:
            status, score, output = "failed", 0.0, self._context.translate(self._failure_text(call.excinfo))
        training = self._context.record.training
        if item.get_closest_marker("timed") and training is not None and training.informational:
            output = (f"informational: --epochs {training.epochs} shortened the training from {EPOCHS} epochs, so "
                      f"this check gives no points.\n{output}").rstrip()
            points = score = 0.0
        self._context.record.results.append(CheckResult(
            name=first_line_of_doc(item), component=item.get_closest_marker("component").args[0],
            max_score=points, score=round(score, 3), status=status, output=output,
            seconds=round(call.duration, 3)))
        if self._context.on_result is not None:
            self._context.on_result(self._context.record)

    def _failure_text(self, excinfo: pytest.ExceptionInfo | None) -> str:
        """A failed check's text; an import failure is told once, in the record, not under every check."""
        error = excinfo.value if excinfo is not None else None
        if isinstance(error, CallFailed) and error.kind == "import_failed":
            record = self._context.record
            if not record.import_failure:
                record.import_failure = explain(excinfo)
            return IMPORT_FAILED
        return explain(excinfo)


def explain(excinfo: pytest.ExceptionInfo | None) -> str:
    """The student-facing text of a failed check."""
    if excinfo is None:
        return "failed"
    error = excinfo.value
    if isinstance(error, CheckFailure):
        return str(error)
    if isinstance(error, CallFailed):
        return error.message + (f"\n{error.detail.strip()}" if error.detail and error.kind != "not_implemented" else "")
    if excinfo.typename == "Failed" and "Timeout" in str(error):
        return "the check ran out of time (the submission is too slow or stuck)"
    return f"the check could not use what the submission returned ({excinfo.typename}: {str(error)[:300]})"

