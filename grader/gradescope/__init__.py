"""``python -m grader gradescope``: the Gradescope autograder zip (build.py); run.py is what it runs there."""

from __future__ import annotations

from pathlib import Path

from .build import build_autograder_zip


def main(out: Path = Path("autograder.zip"), source: Path = Path(".")) -> int:
    built = build_autograder_zip(out, source)
    print(f"wrote {built}: upload it as the Gradescope assignment's autograder")
    return 0
