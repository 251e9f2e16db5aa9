"""report.html: one self-contained page per submission (inline CSS, no network), rendered with Jinja2.

Autoescaping is on: everything from a submission (output, messages, names) is data, never markup.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from grader import __version__
from grader.report.results_json import write_atomically
from grader.report.summary import component_totals
from grader.rubric.run import Grade

_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("grader.report", "templates"),
                                  autoescape=True, undefined=jinja2.StrictUndefined)


def sandbox_description(strength: dict) -> str:
    if not strength:
        return "not started"
    if strength.get("confined"):
        return f"Landlock ABI {strength['landlock_abi']}" + (", sessions locked" if strength.get("sessions_locked")
                                                            else "")
    return f"weaker: no Landlock ({strength.get('landlock_error') or 'unavailable'})"


def render_report(grade: Grade, title: str) -> str:
    training = grade.context.training
    return _ENVIRONMENT.get_template("report.html.j2").render(
        title=title, grade=grade, components=component_totals(grade), training=training,
        informational=bool(training.get("informational")), stdout=grade.context.stdout,
        stderr=grade.context.stderr, sandbox=sandbox_description(grade.context.sandbox_strength),
        version=__version__)


def write_report(path: Path, grade: Grade, title: str) -> None:
    write_atomically(path, render_report(grade, title))
