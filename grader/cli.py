"""``python -m grader``: parses the command line and forwards it to the verb's package.

Each verb's work lives in the package named for it (``grader/<verb>/``, its ``main``); this module
only declares the options. A ``GraderError`` ends the command with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from grader.calibration import CALIBRATION_FILE, HERE
from grader.errors import GraderError
from grader.text import clean_text

Add = Callable[..., object]  # a parser's add_argument


def _selection(add: Add) -> None:
    add("--only", help="comma-separated components to check alone, e.g. softmax,cross_entropy")
    add("--epochs", type=int, help="shorten the timed training (it then gives no points)")


def _grade(add: Add) -> None:
    add("submission", type=Path, help="folder with mlp.py (or mlp.ipynb) at its top level or in student_template/")
    add("--out", type=Path, help="output folder (default: reports/<submission name>/)")
    _selection(add)
    add("--mnist-dir", help="folder with the four MNIST IDX files (default: the cache)")
    add("--calibration", type=Path, default=CALIBRATION_FILE,
        help="calibration.json to grade against (golden.npz beside it; default: the grader's own)")
    add("--summary-md", type=Path, help="also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    add("--junitxml", type=Path, help="also write the checks as JUnit XML here (one testcase per check)")
    add("--min-score", type=float, help="exit with status 1 when the total is below this (for CI)")
    add("--seed", type=int, help="replay a grade: the seed its report states (default: a fresh one)")
    add("--deadline", type=float, help="seconds the whole grade may take; the timed training gets what is "
                                       "left (default: $MLP_GRADER_DEADLINE, else none)")
    add("--memory-mb", type=float, help="the submission's address space in MiB (default: $MLP_GRADER_MEMORY_MB, "
                                        "else 3072)")
    add("--call-timeout", type=float, help="seconds one call of the submission may take in a check before it "
                                           "counts as hung (default: $MLP_GRADER_CALL_TIMEOUT, else 30)")
    add("--leaderboard", action="store_true", help="add Gradescope's leaderboard (test accuracy, training "
                                                   "seconds) to results.json")
    add("--override-review", action="store_true",
        help="(instructor) grant the accuracy points of a run flagged for review, after looking at it")


def _batch(add: Add) -> None:
    add("submissions", type=Path, help="folder with one sub-folder per student, or a .zip of such folders")
    add("--out", type=Path, required=True, help="where each student's results, grades.csv and index.html go")
    add("--jobs", type=int, help="parallel grades (default: one per core)")
    add("--scheduler", help="grade on this Dask cluster instead (tcp://host:8786)")
    add("--force", action="store_true", help="grade again students already graded")
    add("--similarity", action="store_true", help="also screen the class for similar submissions "
                                                  "(similarity.csv and a section of index.html)")
    _selection(add)


def _summary(add: Add) -> None:
    add("folder", type=Path, help="folder holding one sub-folder of results per student")
    add("--summary-md", type=Path, help="also write a Markdown summary here")


def _data(add: Add) -> None:
    add("--mnist-dir", help="verify this folder of IDX files instead of the cache")
    add("--cache-dir", help="cache folder (default: $MLP_GRADER_CACHE or ~/.cache/mlp-grader)")


def _assign(add: Add) -> None:
    add("--reference", type=Path, default=Path("reference/mlp.py"))
    add("--out", type=Path, default=Path("student_template/mlp.py"))


def _source(add: Add) -> None:
    add("--source", type=Path, default=Path("."), help="the grader's repository holding reference/ (default: .)")


def _kit(add: Add) -> None:
    add("--out", type=Path, required=True, help="a new (or empty) folder for the kit")
    add("--min-score", type=float, default=60.0,
        help="the kit's CI workflow fails below this total (default 60; MLP_MIN_SCORE overrides)")
    add("--notebook", action="store_true", help="hand out student_template/mlp.ipynb instead of mlp.py")
    _source(add)


def _gradescope(add: Add) -> None:
    add("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")
    add("--deadline", type=float, default=argparse.SUPPRESS,
        help="seconds a grade may take in all (default: Gradescope's 10-minute limit less a margin)")
    add("--memory-mb", type=int, default=argparse.SUPPRESS,
        help="the submission's address space in MiB (default: with the grader, within Gradescope's 768 MB)")
    add("--leaderboard", action="store_true", help="show Gradescope's leaderboard (accuracy, seconds)")
    _source(add)


def _calibrate(add: Add) -> None:
    add("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    add("--out-dir", type=Path, default=HERE, help="where to write (default: the grader package)")


def _classroom(add: Add) -> None:
    add("results", type=Path, help="a grade's results.json")
    add("--github-output", type=Path, help="append result=<base64> to this file ($GITHUB_OUTPUT)")
    add("--runner", default="mlp", help="the runner id the reporter step names (default: mlp)")


def _export(add: Add) -> None:
    add("folder", type=Path, help="folder holding one sub-folder of results per student (a batch's --out)")
    add("--format", dest="lms", choices=("canvas", "moodle"), required=True, help="the LMS to import into")
    add("--roster", type=Path, help="CSV with a 'folder' column and the LMS's identifiers "
                                    "(name, id, sis_user_id, sis_login_id, section, email, username, idnumber)")
    add("--assignment", default="MLP assignment", help="the grade column's name (default: MLP assignment)")
    add("--out", type=Path, help="the file to write (default: FOLDER/<format>.csv)")


def _similarity(add: Add) -> None:
    add("submissions", type=Path, help="folder with one sub-folder per student")
    add("--out", type=Path, help="where similarity.csv and similarity.json go (default: SUBMISSIONS)")
    add("--threshold", type=float, default=argparse.SUPPRESS, help="score from which a pair is listed (0-1)")
    add("--template", type=Path, help="the students' starting code, subtracted as boilerplate "
                                      "(default: student_template/mlp.py)")


# verb -> (what it does, its options); each option's dest is a keyword argument of grader.<verb>.main.
VERBS: dict[str, tuple[str, Callable[[Add], None]]] = {
    "grade": ("grade a submission: results.json, report.html (CONTRACT §2)", _grade),
    "batch": ("grade a class: a folder of student folders, or a .zip of them", _batch),
    "summary": ("the class page index.html from DIR/<student>/results.json", _summary),
    "similarity": ("which submissions of a class are suspiciously alike (advisory)", _similarity),
    "export": ("a class's grades as a CSV that Canvas or Moodle imports", _export),
    "classroom": ("results.json as a GitHub Classroom runner result (base64 JSON for its reporter)", _classroom),
    "data": ("provision real MNIST (or verify a folder of it) and print where it is", _data),
    "assign": ("regenerate student_template/mlp.py from reference/mlp.py", _assign),
    "kit": ("(instructor) build the student kit, without the solution", _kit),
    "gradescope": ("(instructor) build the Gradescope autograder zip", _gradescope),
    "calibrate": ("(instructor) train reference and oracle: thresholds, golden fixtures, timing", _calibrate),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description="The MLP assignment's autograder.")
    commands = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for verb, (summary, declare) in VERBS.items():
        declare(commands.add_parser(verb, help=summary, description=summary).add_argument)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Explicit handlers: a process started in the background inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt; a batch stops its grades with SIGINT and expects them to stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    options = vars(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    verb = options.pop("verb")
    try:
        # Imported here, so a light verb (data, assign) never loads pytest, Jinja2 or torch.
        return importlib.import_module(f"grader.{verb}").main(**options)
    except GraderError as exc:
        print(f"error: {clean_text(str(exc))}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
