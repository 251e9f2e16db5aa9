"""``python -m grader gradescope``: the Gradescope autograder zip (build.py); run.py is what it runs there."""

from __future__ import annotations

from pathlib import Path

from grader.errors import UsageError

from .build import DEFAULT_DEADLINE, DEFAULT_MEMORY_MB, build_autograder_zip


def main(out: Path = Path("autograder.zip"), source: Path = Path("."), deadline: float = DEFAULT_DEADLINE,
         memory_mb: int = DEFAULT_MEMORY_MB, leaderboard: bool = False) -> int:
    if deadline < 60:
        raise UsageError("--deadline must leave at least 60 seconds")
    if memory_mb < 256:
        raise UsageError("--memory-mb must be at least 256")
    built = build_autograder_zip(out, source, deadline, memory_mb, leaderboard)
    print(f"wrote {built}: upload it as the Gradescope assignment's autograder")
    return 0
