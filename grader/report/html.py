"""report.html: one self-contained page per submission (inline CSS, no network), rendered with Jinja2.

Autoescaping is on: everything from a submission (output, messages, names) is data, never markup.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from grader import __version__
from grader.record import GradeRecord, TrainingRecord
from grader.report.charts import accuracy_chart, loss_chart
from grader.report.jinja import ENVIRONMENT
from grader.report.results_json import write_atomically
from grader.report.terminal import component_totals


def machine_description() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render_report(grade: GradeRecord, title: str, band: dict[str, list[float]] | None = None) -> str:
    """The page; ``band`` is the calibrated reference's per-epoch accuracy (mean, min, std)."""
    training = grade.training or TrainingRecord(epochs=0)
    charts = {}
    if training.accuracies and band:
        charts = {"accuracy_chart": accuracy_chart(training.accuracies, band, training.epochs),
                  "loss_chart": loss_chart(training.losses, training.epochs)}
    failed = [r for r in grade.results if r.status == "failed" and r.max_score > 0]
    return ENVIRONMENT.get_template("report.html.j2").render(
        title=title, grade=grade, components=component_totals(grade), training=training,
        informational=training.informational, stdout=grade.stdout, stderr=grade.stderr,
        sandbox=grade.sandbox.description() if grade.sandbox else "not started",
        version=__version__, first=failed[0] if failed else None, machine=machine_description(), **charts)


def write_report(path: Path, grade: GradeRecord, title: str, band: dict[str, list[float]] | None = None) -> None:
    write_atomically(path, render_report(grade, title, band))
