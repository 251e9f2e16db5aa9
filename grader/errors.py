"""The grader's one error family: every error a user can cause ends the command with one line and exit status 2.

``python -m grader`` catches ``GraderError`` alone and prints ``error: <message>``; anything else
is a bug of the grader and keeps its traceback.
"""

from __future__ import annotations


class GraderError(Exception):
    """A problem the user can fix; ``str(error)`` is the one line the command prints."""

    exit_status = 2


class UsageError(GraderError):
    """A command-line value out of its range (``--epochs 0``, ``--min-score 200``, ``--only bogus``)."""
