"""Markdown summaries (score table + top failures) for terminals and CI job summaries.

Student text is escaped so it stays text: table pipes, HTML, backticks and line breaks.
"""

from __future__ import annotations

from grader.record import GradeRecord
from grader.report.terminal import component_totals
from grader.text import clean_text

_ESCAPES = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[",
                          "]": "\\]", "\n": " ", "\r": " "})


def escape(text: str, limit: int = 200) -> str:
    text = clean_text(text)
    text = text if len(text) <= limit else text[:limit] + "…"
    return text.translate(_ESCAPES)


def grade_markdown(grade: GradeRecord, title: str) -> str:
    lines = [f"### {escape(title)}: {grade.score:.1f} / {grade.max_score:.0f}", "",
             "| component | points | first problem |", "|---|---:|---|"]
    for component, score, maximum, first in component_totals(grade):
        lines.append(f"| {component} | {score:.1f} / {maximum:.0f} | {escape(first)} |")
    failed = [r for r in grade.results if r.status == "failed"][:5]
    if grade.import_failure:
        lines += ["", f"**mlp.py could not be imported**, so no check could run: "
                      f"{escape(grade.import_failure.splitlines()[0])}"]
    elif failed:
        lines += ["", "**Top failures**", ""]
        for r in failed:
            first = r.output.strip().splitlines()[0] if r.output.strip() else ""
            lines.append(f"- **{r.component}**: {escape(r.name)}: {escape(first)}")
    return "\n".join(lines) + "\n"
