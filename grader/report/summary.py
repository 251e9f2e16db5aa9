"""The one-screen terminal summary: component, points, first failure line."""

from __future__ import annotations

from grader.rubric.plugin import COMPONENTS
from grader.rubric.run import Grade


def component_totals(grade: Grade) -> list[tuple[str, float, float, str]]:
    """(component, score, max, first failure line) in contract order, for components that were graded."""
    rows = []
    for component in COMPONENTS:
        results = [r for r in grade.results if r.component == component]
        if not results:
            continue
        failures = [r for r in results if r.status == "failed"]
        first = ""
        if failures:
            lines = failures[0].output.strip().splitlines()
            first = f"{failures[0].name}: {lines[0] if lines else 'failed'}"
        rows.append((component, sum(r.score for r in results), sum(r.max_score for r in results), first))
    return rows


def summary_text(grade: Grade, width: int = 100) -> str:
    lines = [f"{'component':<16}{'points':>12}  first problem", "-" * min(width, 100)]
    for component, score, maximum, first in component_totals(grade):
        problem = first[: width - 32] + ("…" if len(first) > width - 32 else "")
        lines.append(f"{component:<16}{score:>6.1f} / {maximum:<4.0f}  {problem}")
    lines.append("-" * min(width, 100))
    lines.append(f"{'total':<16}{grade.score:>6.1f} / {grade.max_score:<4.0f}  ({grade.seconds:.0f} s)")
    training = grade.context.training
    if training.get("informational"):
        lines.append(f"note: --epochs {training['epochs']} shortened the timed training; it gives no points")
    if grade.context.sandbox_strength and not grade.context.sandbox_strength.get("confined"):
        lines.append("note: Landlock was not available; the sandbox was weaker (limits and process isolation only)")
    return "\n".join(lines)
