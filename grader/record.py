"""The typed records of one grade: what the checks produce and every writer and reader uses.

One definition each. ``report/results_json.py`` writes a ``GradeRecord`` to results.json and
reads it back; the reports, the batch, the class page and the exports all take the record,
never a dict read by key. Adding a field is: the field here, its line in results_json, the
template that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.contract import COMPONENTS, EPOCHS


@dataclass
class CheckResult:
    """One check's verdict. ``status`` is "passed" or "failed"; ``seconds`` is the check's own time."""

    name: str
    component: str
    max_score: float
    score: float
    status: str
    output: str
    seconds: float = 0.0


@dataclass
class SandboxStrength:
    """How strongly the submission's child process was confined (the report's sandbox line)."""

    landlock_abi: int = 0  # 0: no Landlock (the child could read and write more)
    landlock_error: str | None = None
    sessions_locked: bool = False  # seccomp refuses setsid(), so killing the session kills everything
    restarts: list[str] = field(default_factory=list)  # why each child before the last one ended
    child_uid: int | None = None  # the user the child ran as (0: root, when the grader ran as root and could not drop)
    processes_cap: int | None = None  # RLIMIT_NPROC of the child's own user; None: not capped
    disk_cap: str = ""  # how its writes were capped in all: "tmpfs" (a private mount) or "watchdog" (polled)
    disk_bytes: int = 0

    @property
    def confined(self) -> bool:
        return self.landlock_abi > 0

    def description(self) -> str:
        """One line for reports: which protections were active."""
        parts = [f"Landlock ABI {self.landlock_abi}" if self.confined else
                 f"weaker: no Landlock ({self.landlock_error or 'unavailable'})"]
        if self.sessions_locked:
            parts.append("sessions locked")
        if self.child_uid is not None:
            parts.append("ran as root" if self.child_uid == 0 else f"unprivileged uid {self.child_uid}")
        parts.append(f"at most {self.processes_cap} processes" if self.processes_cap else "processes not capped")
        if self.disk_cap:
            parts.append(f"writes capped at {self.disk_bytes >> 20} MiB by {self.disk_cap}")
        return ", ".join(parts)


@dataclass
class TrainingRecord:
    """The timed training run. Seconds are wall-clock training time, the grader's evaluation excluded."""

    epochs: int = EPOCHS  # asked for (``--epochs``)
    informational: bool = False  # shortened by --epochs: no points
    probe_seconds: float = 0.0  # the machine speed probe
    budget_seconds: float = 0.0  # what train may take on this machine
    scaled_reference_seconds: float = 0.0  # the reference's time, scaled to this machine and these epochs
    seconds: float = 0.0
    accuracies: list[float] = field(default_factory=list)  # test accuracy after each epoch handed over
    losses: list[float] = field(default_factory=list)  # the mean loss each on_epoch reported
    epoch_seconds: list[float] = field(default_factory=list)
    stopped: str | None = None  # why train did not finish (over budget, crashed)
    final_accuracy: float | None = None  # graded: of model.params after train returned, else the last epoch's
    review: str | None = None  # why the run is implausible: accuracy points withheld for an instructor
    review_overridden: bool = False  # an instructor looked and granted the points (grade --override-review)
    ignores_given_weights: bool = False  # the exact-step check saw train start from other weights
    # Per epoch handed over (then the final weights): each weight matrix's correlation with the start.
    start_correlations: list[dict[str, float]] = field(default_factory=list)
    deadline_limited: bool = False  # the budget was shrunk to what the grade's --deadline left


@dataclass
class GradeRecord:
    """One grade: every check's result and what the reports show besides.

    ``failure`` is set (and ``results`` empty) when the grader could not grade at all; such a
    record has no score to import anywhere.
    """

    results: list[CheckResult] = field(default_factory=list)
    seed: int = 0  # draws this grade's random inputs
    replay: str = ""  # the command that grades again with the same random inputs
    epochs: int = EPOCHS
    only: list[str] | None = None  # --only components, in contract order
    calibration_id: str = ""
    seconds: float = 0.0  # the whole grade
    grader_version: str = ""
    training: TrainingRecord | None = None  # None when train was not selected
    sandbox: SandboxStrength | None = None  # None when no child was started
    summary: str = ""  # the terminal summary (results.json's ``output``)
    notes: list[str] = field(default_factory=list)  # how the submission was read (a notebook: what was left out)
    stand_ins: list[str] = field(default_factory=list)  # one line per library graded code imported as a stand-in
    import_failure: str = ""  # why mlp.py could not be imported, with its traceback (shown once, not per check)
    stdout: str = ""  # head and tail of what the submission printed (report.html only)
    stderr: str = ""
    failure: str | None = None
    incomplete: bool = False  # written while grading still ran (a grade killed there keeps what it had)
    leaderboard: bool = False  # results.json carries Gradescope's leaderboard (test accuracy, seconds)

    @property
    def review(self) -> str | None:
        """Why this grade waits for an instructor's review (None: it does not)."""
        if self.training is None or self.training.review_overridden:
            return None
        return self.training.review

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 3)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.results), 3)

    def component_points(self) -> dict[str, tuple[float, float]]:
        """(score, max) per graded component, in contract order."""
        totals = {c: (sum(r.score for r in self.results if r.component == c),
                      sum(r.max_score for r in self.results if r.component == c))
                  for c in COMPONENTS if any(r.component == c for r in self.results)}
        return {c: (round(s, 3), round(m, 3)) for c, (s, m) in totals.items()}
