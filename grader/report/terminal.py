"""The one-screen terminal summary: component, points, first failure line."""

from __future__ import annotations

from grader.record import GradeRecord
from grader.text import clean_text


def component_totals(grade: GradeRecord) -> list[tuple[str, float, float, str]]:
    """(component, score, max, first failure line) in contract order, for components that were graded."""
    rows = []
    for component, (score, maximum) in grade.component_points().items():
        failures = [r for r in grade.results if r.component == component and r.status == "failed"]
        first = ""
        if failures:
            lines = failures[0].output.strip().splitlines()
            first = f"{failures[0].name}: {lines[0] if lines else 'failed'}"
        rows.append((component, score, maximum, first))
    return rows


def summary_text(grade: GradeRecord, width: int = 100) -> str:
    lines = [f"{'component':<16}{'points':>12}  first problem", "-" * min(width, 100)]
    for component, score, maximum, first in component_totals(grade):
        problem = first[: width - 32] + ("…" if len(first) > width - 32 else "")
        lines.append(f"{component:<16}{score:>6.1f} / {maximum:<4.0f}  {problem}")
    lines.append("-" * min(width, 100))
    lines.append(f"{'total':<16}{grade.score:>6.1f} / {grade.max_score:<4.0f}  ({grade.seconds:.0f} s)")
    lines.append(f"inputs seed {grade.seed}" + (f"; replay: {grade.replay}" if grade.replay else ""))
    if grade.import_failure:
        lines.append(f"import failed: {grade.import_failure.splitlines()[0]} (no check could run; traceback in the "
                     "report)")
    for line in grade.stand_ins:
        lines.append(f"stand-in: {line}")
    if grade.notes:
        lines.append(f"notebook: {grade.notes[0]}; {len(grade.notes) - 1} thing(s) left out (see the report)")
    if grade.review is not None:
        lines.append(f"review: the training's accuracy points are withheld for an instructor: {grade.review}")
    if grade.training is not None and grade.training.informational:
        lines.append(f"note: --epochs {grade.training.epochs} shortened the timed training; it gives no points")
    if grade.sandbox is not None and not grade.sandbox.confined:
        lines.append("note: Landlock was not available; the sandbox was weaker (limits and process isolation only)")
    return clean_text("\n".join(lines))
