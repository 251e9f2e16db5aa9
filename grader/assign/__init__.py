"""``python -m grader assign``: regenerate ``student_template/mlp.py`` from ``reference/mlp.py`` (see template.py)."""

from __future__ import annotations

from pathlib import Path

from grader.data import DataError

from .template import write_template


def main(reference: Path = Path("reference/mlp.py"), out: Path = Path("student_template/mlp.py")) -> int:
    if not reference.is_file():
        raise DataError(f"{reference}: no such file (run from the repository root or pass --reference)")
    changed = write_template(reference, out)
    print(f"{out}: {'written' if changed else 'already up to date'} (from {reference})")
    return 0
