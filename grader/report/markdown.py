"""Markdown summaries (score table + top failures) for terminals and CI job summaries.

Student text is escaped so it stays text: table pipes, HTML, backticks and line breaks.
"""

from __future__ import annotations

from grader.report.class_summary import StudentRow, failure_rates
from grader.report.summary import component_totals
from grader.rubric.run import Grade

_ESCAPES = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[",
                          "]": "\\]", "\n": " ", "\r": " "})


def escape(text: str, limit: int = 200) -> str:
    text = text if len(text) <= limit else text[:limit] + "…"
    return text.translate(_ESCAPES)


def grade_markdown(grade: Grade, title: str) -> str:
    lines = [f"### {escape(title)}: {grade.score:.1f} / {grade.max_score:.0f}", "",
             "| component | points | first problem |", "|---|---:|---|"]
    for component, score, maximum, first in component_totals(grade):
        lines.append(f"| {component} | {score:.1f} / {maximum:.0f} | {escape(first)} |")
    failed = [r for r in grade.results if r.status == "failed"][:5]
    if failed:
        lines += ["", "**Top failures**", ""]
        lines += [f"- **{r.component}**: {escape(r.name)}: {escape(r.output.strip().splitlines()[0] if r.output else '')}"
                  for r in failed]
    return "\n".join(lines) + "\n"


def class_markdown(rows: list[StudentRow], title: str) -> str:
    lines = [f"### {escape(title)}", "", "| student | total |", "|---|---:|"]
    lines += [f"| {escape(row.name)} | {row.score:.1f} / {row.max_score:.0f} |" for row in rows]
    top = failure_rates(rows)[:10] if rows else []
    if top:
        lines += ["", "**Most failed checks**", ""]
        lines += [f"- {count}/{len(rows)} **{component}**: {escape(name)}" for component, name, count, _ in top if count]
    return "\n".join(lines) + "\n"
