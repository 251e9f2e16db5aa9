"""The class summary ``index.html``: score histogram, what to re-teach, every submission with its report.

Fed by the per-student ``results.json`` files under one folder (``DIR/<student>/results.json``).
Student names are folder names: data, escaped like everything else.
"""

from __future__ import annotations

import json
import statistics
import urllib.parse
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from grader import __version__
from grader.contract import COMPONENTS
from grader.record import GradeRecord
from grader.report.charts import histogram
from grader.report.jinja import ENVIRONMENT
from grader.report.markdown import escape
from grader.report.results_json import UnreadableResults, read_results, write_atomically


@dataclass
class StudentRow:
    """One graded student of the class page: the folder's name and its record."""

    name: str
    record: GradeRecord

    @property
    def link(self) -> str:
        """Relative URL of the student's report.html."""
        return urllib.parse.quote(self.name) + "/report.html"

    @property
    def score(self) -> float:
        return self.record.score

    @property
    def max_score(self) -> float:
        return self.record.max_score

    @cached_property
    def components(self) -> dict[str, tuple[float, float]]:
        """(score, max) per component; the page reads it once per cell, so it is computed once."""
        return self.record.component_points()


def read_class(folder: Path) -> list[StudentRow]:
    """One row per ``folder/<student>/results.json`` that holds a grade, in name order."""
    rows = []
    for path in sorted(folder.glob("*/results.json")):
        try:
            record = read_results(path)
        except UnreadableResults:
            continue
        if record.failure is None and not record.incomplete:
            rows.append(StudentRow(path.parent.name, record))
    return rows


def failure_rates(rows: list[StudentRow]) -> list[tuple[str, str, int, float]]:
    """(component, check, how many failed, share) for every check with points, most failed first."""
    failed: dict[tuple[str, str], int] = {}
    for row in rows:
        for result in row.record.results:
            if result.max_score > 0:
                key = (result.component, result.name)
                failed[key] = failed.get(key, 0) + (result.status == "failed")
    ranked = sorted(failed.items(), key=lambda item: (-item[1], COMPONENTS.index(item[0][0]), item[0][1]))
    return [(component, name, count, count / len(rows)) for (component, name), count in ranked]


def read_similarity(folder: Path) -> dict | None:
    """``folder/similarity.json`` as the similarity screening wrote it, or None."""
    try:
        document = json.loads((folder / "similarity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and isinstance(document.get("top"), list) else None


def render_index(rows: list[StudentRow], title: str, similarity: dict | None = None) -> str:
    scores = [row.score for row in rows]
    maximum = max((row.max_score for row in rows), default=100.0) or 100.0
    return ENVIRONMENT.get_template("index.html.j2").render(
        title=title, students=rows, components=[c for c in COMPONENTS if any(c in r.components for r in rows)],
        histogram=histogram(scores, maximum), failures=failure_rates(rows), maximum=maximum,
        mean=statistics.fmean(scores) if scores else 0.0, median=statistics.median(scores) if scores else 0.0,
        version=__version__, similarity=similarity)


def write_index(folder: Path, title: str = "MLP assignment: class summary") -> Path:
    """Write ``folder/index.html`` from the results under it; return its path."""
    path = folder / "index.html"
    write_atomically(path, render_index(read_class(folder), title, read_similarity(folder)))
    return path


def class_markdown(rows: list[StudentRow], title: str) -> str:
    lines = [f"### {escape(title)}", "", "| student | total |", "|---|---:|"]
    lines += [f"| {escape(row.name)} | {row.score:.1f} / {row.max_score:.0f} |" for row in rows]
    top = failure_rates(rows)[:10] if rows else []
    if top:
        lines += ["", "**Most failed checks**", ""]
        lines += [f"- {count}/{len(rows)} **{component}**: {escape(name)}"
                  for component, name, count, _ in top if count]
    return "\n".join(lines) + "\n"
