"""Run the rubric on one submission: pytest, in this (trusted) process, on the grader's checks only."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest

from grader import calibration as calibration_files
from grader.calibration.speed_probe import probe_seconds
from grader.rubric.plugin import COMPONENTS, CheckResult, GradingContext, RubricPlugin
from grader.training import EPOCHS

CHECKS_DIR = Path(__file__).resolve().parents[1] / "checks"
TRANSFER_ALLOWANCE = 60.0  # seconds to ship MNIST to the child and evaluate, on top of the budget


@dataclass
class Grade:
    """Everything one grade produced: the check results and what the reports show besides."""

    context: GradingContext
    seconds: float
    calibration_id: str
    pytest_exit: int
    log: str = ""
    results: list[CheckResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 3)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.results), 3)


def grade(module_dir: Path, epochs: int = EPOCHS, only: frozenset[str] | None = None, mnist_dir: str | None = None,
          calibration_path: Path = calibration_files.CALIBRATION_FILE, seed: int | None = None) -> Grade:
    """Grade the ``mlp.py`` in ``module_dir``; never raises for anything the submission does."""
    started = time.monotonic()
    calibration = calibration_files.load(calibration_path)
    context = GradingContext(module_dir=module_dir, epochs=epochs, only=only, mnist_dir=mnist_dir,
                             seed=secrets.randbits(32) if seed is None else seed)
    if only is None or "train" in only:
        probe = probe_seconds()
        budget = calibration.time_budget(probe, epochs)
        context.training = {"probe_seconds": round(probe, 6), "budget_seconds": round(budget, 3), "epochs": epochs,
                            "scaled_reference_seconds": round(calibration.scaled_reference_seconds(probe, epochs), 3),
                            "informational": epochs != EPOCHS}
        context.training_budget = budget + TRANSFER_ALLOWANCE
    plugin = RubricPlugin(context, calibration_path)
    args = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "rubric.ini"), "--rootdir", str(CHECKS_DIR),
            "--confcutdir", str(CHECKS_DIR), "--import-mode=importlib", "-p", "no:cacheprovider",
            "-p", "pytest_timeout", "-q", "--tb=short", "-p", "no:warnings"]
    log = io.StringIO()
    with mock.patch.dict(os.environ), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        # Only the rubric's own configuration counts: no plugins or options from the environment.
        for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
            os.environ.pop(name, None)
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        exit_code = pytest.main(args, plugins=[plugin])
    if exit_code == pytest.ExitCode.INTERRUPTED:
        # Ctrl-C: a partial grade must not be written, or a resumed batch would take it as done.
        raise KeyboardInterrupt
    if context.training.get("informational"):
        for result in context.results:
            if result.component == "train":
                result.output = (f"informational: --epochs {epochs} shortened the training from {EPOCHS} epochs, so "
                                 f"this check gives no points.\n{result.output}").rstrip()
                result.max_score = result.score = 0.0
    return Grade(context=context, seconds=round(time.monotonic() - started, 3), calibration_id=calibration.id,
                 pytest_exit=int(exit_code), log=log.getvalue(), results=context.results)


def parse_components(text: str) -> frozenset[str]:
    """``--only`` value: comma-separated component names (CONTRACT §3)."""
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - set(COMPONENTS))
    if unknown or not names:
        raise ValueError(f"unknown component {', '.join(unknown) or '(none given)'}; choose from {', '.join(COMPONENTS)}")
    return names
