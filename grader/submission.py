"""Where a submission's mlp.py is (CONTRACT §1): at its top level, or at student_template/mlp.py."""

from __future__ import annotations

from pathlib import Path


class UnusableSubmission(ValueError):
    """The path cannot be graded; the message is the one line the command prints."""


def module_dir(submission: Path) -> Path:
    """The directory holding the submission's ``mlp.py``."""
    if not submission.exists():
        raise UnusableSubmission(f"{submission}: no such file or directory")
    if not submission.is_dir():
        raise UnusableSubmission(f"{submission}: not a directory (give the folder that holds mlp.py)")
    for candidate in (submission, submission / "student_template"):
        if (candidate / "mlp.py").is_file():
            return candidate.resolve()
    raise UnusableSubmission(f"{submission}: no mlp.py at its top level or in student_template/")
