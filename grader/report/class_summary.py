"""The class summary ``index.html``: score histogram, what to re-teach, every submission with its report.

Fed by the per-student ``results.json`` files under one folder (``DIR/<student>/results.json``).
Student names are folder names: data, escaped like everything else.
"""

from __future__ import annotations

import json
import statistics
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.report.jinja import ENVIRONMENT
from grader.report.charts import histogram
from grader.report.results_json import write_atomically
from grader.rubric.plugin import COMPONENTS



@dataclass
class StudentRow:
    name: str
    link: str  # relative URL of the student's report.html
    score: float
    max_score: float
    components: dict[str, tuple[float, float]]
    tests: list[dict]


def read_results(folder: Path) -> list[StudentRow]:
    """One row per ``folder/<student>/results.json`` that is valid JSON, in name order."""
    rows = []
    for path in sorted(folder.glob("*/results.json")):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        components: dict[str, tuple[float, float]] = {}
        for test in results.get("tests", []):
            score, maximum = components.get(test["tags"][0], (0.0, 0.0))
            components[test["tags"][0]] = (score + test["score"], maximum + test["max_score"])
        rows.append(StudentRow(name=path.parent.name, link=urllib.parse.quote(path.parent.name) + "/report.html",
                               score=float(results.get("score", 0.0)),
                               max_score=float(results.get("max_score", sum(m for _, m in components.values()))),
                               components=components, tests=results.get("tests", [])))
    return rows


def failure_rates(rows: list[StudentRow]) -> list[tuple[str, str, int, float]]:
    """(component, check, how many failed, share) for every check with points, most failed first."""
    failed: dict[tuple[str, str], int] = {}
    for row in rows:
        for test in row.tests:
            if test.get("max_score", 0) > 0:
                key = (test["tags"][0], test["name"])
                failed[key] = failed.get(key, 0) + (test["status"] == "failed")
    ranked = sorted(failed.items(), key=lambda item: (-item[1], COMPONENTS.index(item[0][0]), item[0][1]))
    return [(component, name, count, count / len(rows)) for (component, name), count in ranked]


def render_index(rows: list[StudentRow], title: str) -> str:
    scores = [row.score for row in rows]
    maximum = max((row.max_score for row in rows), default=100.0) or 100.0
    return ENVIRONMENT.get_template("index.html.j2").render(
        title=title, students=rows, components=[c for c in COMPONENTS if any(c in r.components for r in rows)],
        histogram=histogram(scores, maximum), failures=failure_rates(rows), maximum=maximum,
        mean=statistics.fmean(scores) if scores else 0.0, median=statistics.median(scores) if scores else 0.0,
        version=__version__)


def write_index(folder: Path, title: str = "MLP assignment: class summary") -> Path:
    """Write ``folder/index.html`` from the results under it; return its path."""
    path = folder / "index.html"
    write_atomically(path, render_index(read_results(folder), title))
    return path
