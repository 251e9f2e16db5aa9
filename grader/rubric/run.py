"""Run the rubric on one submission: pytest, in this (trusted) process, on the grader's checks only."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest

from grader import __version__
from grader import calibration as calibration_files
from grader.calibration.speed_probe import probe_seconds
from grader.contract import COMPONENTS, EPOCHS
from grader.record import GradeRecord, TrainingRecord
from grader.rubric.plugin import TRANSFER_ALLOWANCE, GradingContext, RubricPlugin
from grader.training import WALL_FACTOR, EpochProgress

CHECKS_DIR = Path(__file__).resolve().parents[1] / "checks"


def grade(module_dir: Path, epochs: int = EPOCHS, only: frozenset[str] | None = None, mnist_dir: str | None = None,
          calibration_path: Path = calibration_files.CALIBRATION_FILE, seed: int | None = None,
          override_review: bool = False, deadline: float | None = None, memory_bytes: int | None = None,
          call_timeout: float | None = None,
          on_result: Callable[[GradeRecord], None] | None = None,
          progress: Callable[[EpochProgress], None] | None = None,
          translate: Callable[[str], str] = str) -> GradeRecord:
    """Grade the ``mlp.py`` in ``module_dir``; never raises for anything the submission does.

    ``deadline``: seconds the whole grade may take (the timed training gets what is left);
    ``call_timeout``: seconds one call of a check may take (None: ``CALL_TIMEOUT``);
    ``on_result`` sees the record after every check (to keep a results.json that a kill cannot lose);
    ``progress`` sees each epoch of the timed training once the grader has scored it;
    ``translate`` tells failure texts in the student's terms (``grader.notebook.graded_folder``; str: as they are).
    """
    started = time.monotonic()
    calibration = calibration_files.load(calibration_path)
    record = GradeRecord(seed=secrets.randbits(32) if seed is None else seed, epochs=epochs,
                         only=[c for c in COMPONENTS if c in only] if only else None, calibration_id=calibration.id,
                         grader_version=__version__)
    context = GradingContext(module_dir=module_dir, record=record, only=only, mnist_dir=mnist_dir,
                             override_review=override_review, on_result=on_result, progress=progress,
                             translate=translate,
                             deadline_at=None if deadline is None else started + deadline)
    if memory_bytes is not None:
        context.memory_bytes = memory_bytes
    if call_timeout is not None:
        context.call_timeout = call_timeout
    if only is None or "train" in only:
        probe = probe_seconds()
        budget = calibration.time_budget(probe, epochs)
        record.training = TrainingRecord(
            epochs=epochs, informational=epochs != EPOCHS, probe_seconds=round(probe, 6),
            budget_seconds=round(budget, 3),
            scaled_reference_seconds=round(calibration.scaled_reference_seconds(probe, epochs), 3))
        # Wall-clock seconds the sandbox keeps for the timed run: its CPU budget's safety net.
        context.training_budget = WALL_FACTOR * budget + TRANSFER_ALLOWANCE
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
        # Ctrl-C: no finished grade is written (what was graded so far stays marked incomplete, so a
        # resumed batch grades this submission again).
        raise KeyboardInterrupt
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        # The rubric itself did not run (a broken check, a bad configuration): a grader bug, never a 0.
        raise RuntimeError(f"the rubric's pytest run ended with {exit_code!r}:\n{log.getvalue()[-3000:]}")
    # The import failure (kept once, in the record) and the submission's warnings name mlp.py's lines too.
    record.import_failure, record.stderr = translate(record.import_failure), translate(record.stderr)
    record.seconds = round(time.monotonic() - started, 3)
    return record
