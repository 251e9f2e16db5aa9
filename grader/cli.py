"""``python -m grader``: the command line of the grader.

Subcommands:
    grade      grade a submission: results.json and report.html (CONTRACT §2)
    batch      grade a class in parallel: grades.csv, index.html, one report per student
    summary    the class summary index.html from a folder of graded submissions
    data       provision real MNIST into the cache (or check a given folder) and print where it is
    assign     regenerate student_template/mlp.py from reference/mlp.py
    kit        (instructor) build the student kit: template, grader, tox.ini, README, CI workflow
    gradescope (instructor) build the Gradescope autograder zip
    calibrate  (instructor) train reference and oracle, write thresholds, golden fixtures, timing
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from grader.calibration import CALIBRATION_FILE, CalibrationError
from grader.calibration import load as load_calibration
from grader.dataset import DataError
from grader.dataset.mnist import find_idx_dir, provision, read_verified
from grader.handout.bundle import HandoutError
from grader.submission import UnusableSubmission, module_dir
from grader.template import SolutionBlockError, write_template


def _check_min_score(value: float | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise UnusableSubmission("--min-score must be between 0 and 100")


def _grade(args: argparse.Namespace) -> int:
    from grader.report.html import write_report  # noqa: PLC0415  (keeps `data` and `assign` light)
    from grader.report.results_json import write_failure, write_results  # noqa: PLC0415
    from grader.report.summary import summary_text  # noqa: PLC0415
    from grader.rubric.run import grade, parse_components  # noqa: PLC0415

    submission = Path(args.submission)
    folder = module_dir(submission)
    try:
        only = parse_components(args.only) if args.only else None
    except ValueError as exc:
        raise UnusableSubmission(f"--only: {exc}") from None
    if args.epochs is not None and args.epochs < 1:
        raise UnusableSubmission("--epochs must be a positive integer")
    _check_min_score(args.min_score)
    name = submission.resolve().name
    out = Path(args.out) if args.out else Path("reports") / name
    out.mkdir(parents=True, exist_ok=True)
    print(f"grading {folder} ...", flush=True)
    calibration = Path(args.calibration) if args.calibration else CALIBRATION_FILE
    try:
        result = grade(folder, epochs=args.epochs or 20, only=only, mnist_dir=args.mnist_dir,
                       calibration_path=calibration)
        summary = summary_text(result)
        write_results(out / "results.json", result, summary)
    except (DataError, CalibrationError):
        raise
    except Exception as exc:  # noqa: BLE001  (a grader bug must still leave a valid results.json)
        write_failure(out / "results.json", f"the grader itself failed: {type(exc).__name__}: {exc}")
        raise
    band = load_calibration(calibration).raw["accuracy"]["reference"]["per_epoch"]
    write_report(out / "report.html", result, f"MLP assignment: {name}", band)
    if args.summary_md:
        from grader.report.markdown import grade_markdown  # noqa: PLC0415

        Path(args.summary_md).write_text(grade_markdown(result, f"MLP assignment: {name}"), encoding="utf-8")
    if args.junitxml:
        from grader.report.junit import write_junit  # noqa: PLC0415

        write_junit(Path(args.junitxml), result, name)
    print(summary)
    print(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    if args.min_score is not None and result.score < args.min_score:
        # Exit 1, distinct from 2 (unusable input): CI fails the job, the reports are already written.
        print(f"score {result.score:.1f} is below the minimum {args.min_score:g}", file=sys.stderr)
        return 1
    return 0


def _data(args: argparse.Namespace) -> int:
    if args.mnist_dir:
        folder = find_idx_dir(Path(args.mnist_dir))
        read_verified(folder)
    else:
        folder = provision(Path(args.cache_dir) if args.cache_dir else None)
    print(f"MNIST verified in {folder}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    reference, template = Path(args.reference), Path(args.out)
    if not reference.is_file():
        raise DataError(f"{reference}: no such file (run from the repository root or pass --reference)")
    changed = write_template(reference, template)
    print(f"{template}: {'written' if changed else 'already up to date'} (from {reference})")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from grader.report.class_summary import read_results, write_index  # noqa: PLC0415
    from grader.report.markdown import class_markdown  # noqa: PLC0415

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UnusableSubmission(f"{folder}: no such directory")
    rows = read_results(folder)
    if not rows:
        raise UnusableSubmission(f"{folder}: no <student>/results.json below it")
    print(f"wrote {write_index(folder)} ({len(rows)} submissions)")
    if args.summary_md:
        Path(args.summary_md).write_text(class_markdown(rows, "MLP assignment: class summary"), encoding="utf-8")
    return 0


def _batch(args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    from grader.batch.dask_cluster import BatchError, DaskGrades  # noqa: PLC0415
    from grader.batch.runner import Batch, LocalGrades, students_of  # noqa: PLC0415
    from grader.batch.safe_zip import UnsafeArchive, extract  # noqa: PLC0415

    source = Path(args.submissions)
    if not source.exists():
        raise UnusableSubmission(f"{source}: no such file or directory")
    if args.jobs is not None and args.jobs < 1:
        raise UnusableSubmission("--jobs must be a positive integer")
    if args.jobs is not None and args.scheduler:
        raise UnusableSubmission("--jobs does not apply with --scheduler (the cluster's threads set the parallelism)")
    with tempfile.TemporaryDirectory(prefix="mlp-batch-") as scratch:
        if source.is_file():
            try:
                source = extract(source, Path(scratch))
            except UnsafeArchive as exc:
                raise UnusableSubmission(f"{args.submissions}: refused: {exc}") from None
        if not students_of(source):
            raise UnusableSubmission(f"{args.submissions}: holds no student folders")
        grade_args = [*(["--epochs", str(args.epochs)] if args.epochs else []),
                      *(["--only", args.only] if args.only else [])]
        try:
            grades = DaskGrades(args.scheduler, grade_args) if args.scheduler else \
                LocalGrades(args.jobs or os.cpu_count() or 1, grade_args)
        except BatchError as exc:
            raise UnusableSubmission(str(exc)) from None
        try:
            rows = Batch(source, Path(args.out), grades, force=args.force).run()
        finally:
            grades.close()
    graded = sum(row.status in ("graded", "skipped") for row in rows)
    print(f"{graded} of {len(rows)} graded; {Path(args.out) / 'grades.csv'} and {Path(args.out) / 'index.html'}")
    return 0


def _kit(args: argparse.Namespace) -> int:
    from grader.handout.kit import build_kit  # noqa: PLC0415

    _check_min_score(args.min_score)
    out = build_kit(Path(args.out), Path(args.source), args.min_score)
    print(f"wrote the student kit to {out} (checked: no line of the solution blocks inside)")
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from grader.handout.gradescope import build_autograder_zip  # noqa: PLC0415

    out = build_autograder_zip(Path(args.out), Path(args.source))
    print(f"wrote {out}: upload it as the Gradescope assignment's autograder")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    try:
        from reference import calibrate  # noqa: PLC0415  (instructor side: the kit has no reference/)
    except ImportError as exc:
        raise DataError(f"calibrate needs the instructor's reference/ folder and the 'oracle' extra ({exc})") \
            from None
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return calibrate.main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser("grade", help="grade a submission (a folder holding mlp.py)")
    grade.add_argument("submission", help="folder with mlp.py at its top level or in student_template/")
    grade.add_argument("--out", help="output folder (default: reports/<submission name>/)")
    grade.add_argument("--only", help="comma-separated components to check alone, e.g. softmax,cross_entropy")
    grade.add_argument("--epochs", type=int, help="shorten the timed training (it then gives no points)")
    grade.add_argument("--mnist-dir", help="folder with the four MNIST IDX files (default: the cache)")
    grade.add_argument("--calibration", help="calibration.json to grade against (golden.npz beside it; "
                                             "default: the grader's own)")
    grade.add_argument("--summary-md", help="also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    grade.add_argument("--junitxml", help="also write the checks as JUnit XML here (one testcase per check)")
    grade.add_argument("--min-score", type=float, help="exit with status 1 when the total is below this (for CI)")
    grade.set_defaults(run=_grade)

    batch = commands.add_parser("batch", help="grade a class: a folder of student folders, or a .zip of them")
    batch.add_argument("submissions", help="folder with one sub-folder per student, or a .zip of such folders")
    batch.add_argument("--out", required=True, help="where each student's results, grades.csv and index.html go")
    batch.add_argument("--jobs", type=int, help="parallel grades (default: one per core)")
    batch.add_argument("--scheduler", help="grade on this Dask cluster instead (tcp://host:8786; its workers "
                                           "have the grader installed)")
    batch.add_argument("--force", action="store_true", help="grade again students already graded")
    batch.add_argument("--epochs", type=int, help="passed to each grade")
    batch.add_argument("--only", help="passed to each grade")
    batch.set_defaults(run=_batch)

    summary = commands.add_parser("summary", help="class summary index.html from DIR/<student>/results.json")
    summary.add_argument("folder", help="folder holding one sub-folder of results per student")
    summary.add_argument("--summary-md", help="also write a Markdown summary here")
    summary.set_defaults(run=_summary)

    data = commands.add_parser("data", help="provision real MNIST and print where it is")
    data.add_argument("--mnist-dir", help="verify this folder of IDX files instead of the cache")
    data.add_argument("--cache-dir", help="cache folder (default: $MLP_GRADER_CACHE or ~/.cache/mlp-grader)")
    data.set_defaults(run=_data)

    assign = commands.add_parser("assign", help="generate the student template from the reference")
    assign.add_argument("--reference", default="reference/mlp.py")
    assign.add_argument("--out", default="student_template/mlp.py")
    assign.set_defaults(run=_assign)

    kit = commands.add_parser("kit", help="(instructor) build the student kit, without the solution")
    kit.add_argument("--out", required=True, help="a new (or empty) folder for the kit")
    kit.add_argument("--source", default=".", help="the grader's repository holding reference/ (default: .)")
    kit.add_argument("--min-score", type=float, default=60.0,
                     help="the kit's CI workflow fails below this total (default 60; MLP_MIN_SCORE overrides)")
    kit.set_defaults(run=_kit)

    gradescope = commands.add_parser("gradescope", help="(instructor) build the Gradescope autograder zip")
    gradescope.add_argument("--out", default="autograder.zip", help="the zip to write (default: autograder.zip)")
    gradescope.add_argument("--source", default=".", help="the grader's repository holding reference/ (default: .)")
    gradescope.set_defaults(run=_gradescope)

    calibrate = commands.add_parser("calibrate", help="(instructor) calibrate thresholds and time budget",
                                    add_help=False)
    calibrate.add_argument("rest", nargs=argparse.REMAINDER)
    calibrate.set_defaults(run=_calibrate)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Explicit handlers: a process started in the background inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt; a batch stops its grades with SIGINT and expects them to stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["calibrate"]:
        # Its options belong to reference/calibrate.py: hand them over untouched.
        argv = ["calibrate", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, SolutionBlockError, UnusableSubmission, CalibrationError, HandoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
