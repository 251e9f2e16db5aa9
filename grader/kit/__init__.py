"""``python -m grader kit``: the student kit, built from the instructor's repository (build.py)."""

from __future__ import annotations

from pathlib import Path

from grader.contract import check_min_score

from .build import build_kit


def main(out: Path, source: Path = Path("."), min_score: float = 60.0, notebook: bool = False) -> int:
    check_min_score(min_score)
    built = build_kit(out, source, min_score, notebook)
    print(f"wrote the student kit to {built} (checked: no line of the solution blocks inside)")
    return 0
