"""report.html: one self-contained page per submission (inline CSS, no network), rendered with Jinja2.

Autoescaping is on: everything from a submission (output, messages, names) is data, never markup.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from grader import __version__
from grader.report.jinja import ENVIRONMENT
from grader.report.charts import accuracy_chart, loss_chart
from grader.report.results_json import write_atomically
from grader.report.summary import component_totals
from grader.rubric.run import Grade



def sandbox_description(strength: dict) -> str:
    if not strength:
        return "not started"
    if strength.get("confined"):
        return f"Landlock ABI {strength['landlock_abi']}" + (", sessions locked" if strength.get("sessions_locked")
                                                            else "")
    return f"weaker: no Landlock ({strength.get('landlock_error') or 'unavailable'})"


def machine_description() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render_report(grade: Grade, title: str, band: dict[str, list[float]] | None = None) -> str:
    """The page; ``band`` is the calibrated reference's per-epoch accuracy (mean, min, std)."""
    training = grade.context.training
    epochs = int(training.get("epochs", 0))
    charts = {}
    if training.get("accuracies") and band:
        charts = {"accuracy_chart": accuracy_chart(training["accuracies"], band, epochs),
                  "loss_chart": loss_chart(training.get("losses", []), epochs)}
    failed = [r for r in grade.results if r.status == "failed" and r.max_score > 0]
    return ENVIRONMENT.get_template("report.html.j2").render(
        title=title, grade=grade, components=component_totals(grade), training=training,
        informational=bool(training.get("informational")), stdout=grade.context.stdout,
        stderr=grade.context.stderr, sandbox=sandbox_description(grade.context.sandbox_strength),
        version=__version__, first=failed[0] if failed else None, machine=machine_description(), **charts)


def write_report(path: Path, grade: Grade, title: str, band: dict[str, list[float]] | None = None) -> None:
    write_atomically(path, render_report(grade, title, band))
