"""Handouts: the student kit and the Gradescope autograder, built and used as their users would.

The kit is graded with its own ``tox -e grade`` and its GitHub workflow's shell steps are run as a
runner runs them; the Gradescope zip is unpacked under a temporary root laid out like
``/autograder``, its ``setup.sh`` builds the environment and ``run_autograder`` grades.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from grader.assign.template import make_template, split_blocks
from grader.contract import COMPONENTS, TOTAL_POINTS
from grader.data.mnist import default_cache_dir
from grader.report.results_json import read_results
from helpers import ROOT
from submission_corpus import CORRECT

pytestmark = pytest.mark.mnist
REFERENCE = ROOT / "reference" / "mlp.py"


def solution_code() -> list[str]:
    """Every non-blank line inside the reference's solution blocks (read here, not by the grader's helper)."""
    return [line.strip() for kind, lines in split_blocks(REFERENCE.read_text()) if kind == "solution"
            for line in lines[1:-1] if line.strip() and not line.strip().startswith("#")]


def template_lines() -> set[str]:
    return {line.strip() for line in make_template(REFERENCE.read_text()).splitlines()}


def assert_no_solution_inside(files: dict[str, bytes]) -> None:
    # A solution line that the template also has (a signature, "return grads") is no secret.
    secret = set(solution_code()) - template_lines()
    assert len(secret) > 40
    for name, data in files.items():
        assert "reference" not in Path(name).parts, name
        text = data.decode("utf-8", errors="replace")
        assert not secret & {line.strip() for line in text.splitlines()}, name
        assert not [line for line in secret if len(line) >= 24 and line in text], name


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus the outer tox run's markers, so an inner tox or venv starts fresh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, **extra}


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("handout") / "kit"
    done = cli("kit", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_kit_has_what_a_student_needs_and_no_solution(kit):
    files = {p.relative_to(kit).as_posix(): p.read_bytes() for p in kit.rglob("*") if p.is_file()}
    for needed in ("README.md", "tox.ini", "pyproject.toml", ".github/workflows/grade.yml",
                   "grader/calibration/calibration.json", "grader/calibration/golden.npz", "grader/checks/rubric.ini"):
        assert needed in files
    assert files["student_template/mlp.py"].decode() == make_template(REFERENCE.read_text())
    assert files["grader/calibration/golden.npz"] == (ROOT / "grader/calibration/golden.npz").read_bytes()
    assert not [name for name in files if "__pycache__" in name]
    assert_no_solution_inside(files)


@pytest.mark.parametrize("broken", [False, True])
def test_kit_workflow_follows_the_github_actions_schema(kit, tmp_path, broken):
    workflow = (kit / ".github/workflows/grade.yml").read_text()
    if broken:  # the validator can fail: a job without runs-on is refused
        workflow = workflow.replace("runs-on:", "runs-onn:")
    (tmp_path / "grade.yml").write_text(workflow)
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(tmp_path / "grade.yml")], capture_output=True, text=True, timeout=120)
    assert (done.returncode != 0) == broken, done.stdout + done.stderr


JOB = "run-autograding-tests"  # the job id GitHub Classroom's generated workflow uses
REPORTER_ACTION = "classroom-resources/autograding-grading-reporter@v1"
VENDORED_REPORTER = ROOT.parent / "shared" / "vendor" / "autograding-grading-reporter"


@pytest.fixture(scope="session")
def reporter() -> Path:
    """The real GitHub Classroom reporter (vendored in shared/, MIT), its npm dependencies installed once."""
    if not (VENDORED_REPORTER / "src" / "main.js").is_file():
        pytest.skip(f"the vendored reporter is not at {VENDORED_REPORTER} (shared/vendor/ holds it)")
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed to run GitHub Classroom's reporter")
    commit = (VENDORED_REPORTER / "COMMIT").read_text().strip()[:12]
    copy = default_cache_dir() / f"autograding-grading-reporter-{commit}"
    if not (copy / "node_modules" / "@actions" / "core").is_dir():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(VENDORED_REPORTER, copy)  # shared/ is read-only where CI runs
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        done = subprocess.run(["npm", "install", "--omit=dev", "--no-audit", "--no-fund"], cwd=copy,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return copy


def run_workflow(kit: Path, summary: Path, variables: dict[str, str], reporter: Path | None = None) -> tuple[str, str]:
    """Run the workflow's steps in ``kit`` as a GitHub runner would; return the job's conclusion and the log.

    Shell steps run in bash; the Classroom reporter runs from its vendored copy (``reporter``) with
    the step's env and inputs; other ``uses:`` steps (checkout, setup-python, cache, artifact upload)
    are GitHub's own. After a failed step only ``if: always()`` steps run. ``${{ vars.X || 'd' }}``
    reads ``variables``; ``${{ steps.ID.outputs.NAME }}`` what earlier steps wrote to GITHUB_OUTPUT.
    """
    job = yaml.safe_load((kit / ".github/workflows/grade.yml").read_text())["jobs"][JOB]
    env = clean_env(GITHUB_STEP_SUMMARY=str(summary))
    for name, value in job.get("env", {}).items():
        match = re.fullmatch(r"\$\{\{ vars\.(\w+) \|\| '([^']*)' \}\}", value)
        env[name] = variables.get(match.group(1), match.group(2)) if match else value
    outputs: dict[str, dict[str, str]] = {}
    failed, log = False, ""
    for step in job["steps"]:
        if failed and step.get("if") != "always()":
            continue
        if "run" in step:
            output = summary.with_name(f"output-{len(outputs)}")
            output.write_text("")
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=kit,
                                  env={**env, "GITHUB_OUTPUT": str(output)}, capture_output=True, text=True,
                                  timeout=900)
            outputs[step.get("id", str(len(outputs)))] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        elif step.get("uses") == REPORTER_ACTION and reporter is not None:
            step_env = {name: re.sub(r"\$\{\{ steps\.([\w-]+)\.outputs\.(\w+) \}\}",
                                     lambda m: outputs.get(m.group(1), {}).get(m.group(2), ""), value)
                        for name, value in step["env"].items()}
            done = subprocess.run(["node", "src/main.js"], cwd=reporter, capture_output=True, text=True, timeout=120,
                                  env={**env, **step_env, "INPUT_RUNNERS": step["with"]["runners"]})
        else:
            continue
        log += done.stdout + done.stderr
        failed |= done.returncode != 0
    return ("failure" if failed else "success"), log


def classroom_points(log: str) -> dict:
    """The annotation GitHub Classroom's gradebook reads, as the reporter printed it."""
    (report,) = re.findall(r"::notice title=Autograding report::(\{.*\})", log)
    return json.loads(report)


def test_kit_workflow_follows_github_classrooms_conventions(kit):
    workflow = yaml.safe_load((kit / ".github/workflows/grade.yml").read_text())
    assert workflow["name"] == "Autograding Tests" and list(workflow["jobs"]) == [JOB]
    assert set(workflow[True]) == {"push", "workflow_dispatch", "repository_dispatch"}  # YAML 1.1 reads on: as True
    assert workflow["jobs"][JOB]["if"] == "github.actor != 'github-classroom[bot]'"
    steps = workflow["jobs"][JOB]["steps"]
    assert steps[-1]["uses"] == REPORTER_ACTION and steps[-1]["with"]["runners"] == "mlp"
    assert all(step.get("if") == "always()" for step in steps if step.get("name") in
               ("Job summary", "Upload the report", "Classroom result", "Autograding Reporter"))


@pytest.mark.slow  # its Grade step builds the kit's own tox environment: a fresh-environment build
def test_kit_workflow_fails_below_the_minimum_and_still_reports(kit, tmp_path, reporter):
    workflow = yaml.safe_load((kit / ".github/workflows/grade.yml").read_text())
    upload = next(s for s in workflow["jobs"][JOB]["steps"] if s.get("uses", "").startswith("actions/upload-art"))
    assert upload["if"] == "always()"

    conclusion, log = run_workflow(kit, tmp_path / "summary.md", {}, reporter)
    assert conclusion == "failure"  # the template scores 0 < 60
    assert classroom_points(log) == {"totalPoints": 0, "maxPoints": 100}  # Classroom's gradebook still gets it
    assert "0.0 / 100" in (tmp_path / "summary.md").read_text()
    assert (kit / upload["with"]["path"] / "student_template" / "report.html").is_file()
    junit = ET.parse(kit / "reports" / "junit.xml").getroot()
    assert len(junit.findall(".//testcase")) == len(junit.findall(".//failure")) > 10

    # The instructor's MLP_MIN_SCORE variable overrides the kit's default.
    assert run_workflow(kit, tmp_path / "again.md", {"MLP_MIN_SCORE": "0"})[0] == "success"
    assert "0.0 / 100" in (tmp_path / "again.md").read_text()


@pytest.mark.slow
def test_the_real_classroom_reporter_gives_the_reference_its_grade(kit, tmp_path, reporter):
    template = (kit / "student_template" / "mlp.py").read_text()
    shutil.copyfile(REFERENCE, kit / "student_template" / "mlp.py")
    try:
        conclusion, log = run_workflow(kit, tmp_path / "summary.md", {}, reporter)
    finally:
        (kit / "student_template" / "mlp.py").write_text(template)
    record = read_results(kit / "reports" / "student_template" / "results.json")
    assert conclusion == "success" and record.score == TOTAL_POINTS
    points = classroom_points(log)
    assert points["maxPoints"] == 100 and points["totalPoints"] == pytest.approx(record.score)
    assert f"Points {record.score:g}/100" in log


@pytest.mark.slow
def test_kit_tox_grade_gives_the_reference_full_marks(kit):
    solved = kit / "solved"
    solved.mkdir()
    shutil.copyfile(REFERENCE, solved / "mlp.py")
    done = subprocess.run([sys.executable, "-m", "tox", "-e", "grade", "--", "solved"], cwd=kit, env=clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    record = read_results(kit / "reports" / "solved" / "results.json")
    assert record.score == record.max_score == TOTAL_POINTS


def test_kit_is_refused_when_a_solution_line_would_ship(tmp_path):
    source = tmp_path / "repo"
    shutil.copytree(ROOT / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "reference", source / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "pyproject.toml", source / "pyproject.toml")
    leaked = sorted(set(solution_code()) - template_lines())[0]
    with open(source / "grader" / "evaluation.py", "a") as stream:
        stream.write(f"\n    {leaked}\n")
    done = cli("kit", "--out", str(tmp_path / "kit"), "--source", str(source))
    assert done.returncode == 2 and "refused" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "kit").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("kit", "--out", "{tmp}/k", "--source", "{tmp}"), "not the grader's repository"),
    (("kit", "--out", "{tmp}/taken"), "already exists"),
    (("kit", "--out", "{tmp}/k", "--min-score", "101"), "between 0 and 100"),
    (("gradescope", "--out", "{tmp}/autograder.tar"), "must be a .zip"),
])
def test_handout_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    done = cli(*(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "file").read_text() == "mine"


class _Group:
    """A ``preexec_fn`` entering a memory cgroup (or nothing, without one); ``peak()`` its max usage in MiB."""

    def __init__(self, group: Path | None) -> None:
        self.group = group

    def __call__(self) -> None:
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> str:
        if self.group is None:
            return "no memory cgroup here"
        return f"peak {int((self.group / 'memory.max_usage_in_bytes').read_text()) >> 20} MiB"


@contextlib.contextmanager
def memory_cgroup(limit: int, required: bool = False):
    """A ``preexec_fn`` that puts the process into a memory cgroup of ``limit`` bytes (v1, as root).

    Where no such cgroup can be made, the process runs without one (the grade is the same), unless the
    limit is what the test is about (``required``): then it is skipped with the reason.
    """
    group = Path(f"/sys/fs/cgroup/memory/mlp-grader-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit))
    except OSError as exc:
        if required:
            pytest.skip(f"no memory cgroup can be made here ({exc.strerror}: {group.parent}), so the container's "
                        "limit cannot be reproduced")
        yield _Group(None)
        return
    try:
        # Over the limit the kernel's OOM killer ends the grade: the test then fails on its results.
        yield _Group(group)
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def unpack_like_gradescope(archive: Path, root: Path) -> None:
    """Unzip into ROOT/source keeping the modes the zip records, and copy run_autograder to ROOT."""
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            target = root / "source" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bundle.read(info))
            target.chmod(stat.S_IMODE(info.external_attr >> 16))
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")


def gradescope_autograder(tmp_path: Path) -> tuple[dict[str, bytes], dict[str, int], Path, dict[str, str]]:
    """The zip built, unpacked under a root laid out like /autograder and set up by its setup.sh:
    its files, their modes, the root and the environment run_autograder runs with."""
    archive = tmp_path / "autograder.zip"
    done = cli("gradescope", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as bundle:
        files = {name: bundle.read(name) for name in bundle.namelist()}
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in bundle.infolist()}
    root = tmp_path / "autograder"
    unpack_like_gradescope(archive, root)
    # An existing unprivileged user, so that the test creates none on this machine (setup.sh would).
    env = clean_env(AUTOGRADER_ROOT=str(root), MLP_GRADER_CACHE=str(default_cache_dir()),
                    MLP_GRADER_SANDBOX_USER="nobody")
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    return files, modes, root, env


@pytest.mark.slow
def test_gradescope_autograder_grades_the_submission_layout(tmp_path):
    files, modes, root, env = gradescope_autograder(tmp_path)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert_no_solution_inside(files)

    (root / "submission").mkdir()
    shutil.copyfile(REFERENCE, root / "submission" / "mlp.py")
    with memory_cgroup(768 << 20) as enter:  # Gradescope's default memory
        run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                             timeout=900, preexec_fn=enter)
    assert run.returncode == 0, run.stderr[-2000:]
    record = read_results(root / "results" / "results.json")
    assert record.score == TOTAL_POINTS and {r.component for r in record.results} == set(COMPONENTS), enter.peak()
    assert (root / "results" / "report.html").is_file()
    if os.geteuid() == 0:
        assert record.sandbox.child_uid == 65534  # nobody: the user run_autograder was told to use
    results = json.loads((root / "results" / "results.json").read_text())
    assert "max_score" not in results and results["output_format"] == "md"  # Gradescope's spec, Markdown
    assert results["output"].startswith("```\n") and "total" in results["output"]
    assert all(test["output_format"] == "md" for test in results["tests"])

    # A submission that cannot be graded still leaves a results.json that says why.
    shutil.rmtree(root / "results")
    (root / "submission" / "mlp.py").rename(root / "submission" / "my_mlp.py")
    run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0
    record = read_results(root / "results" / "results.json")
    assert record.score == 0 and record.failure is not None and "mlp.py" in record.failure


@pytest.mark.slow
def test_gradescope_autograder_keeps_memory_hungry_trains_at_full_marks(tmp_path):
    """``X = X.astype(np.float64)`` at the top of train keeps full marks in Gradescope's default 768 MB;
    that and a shuffled float64 copy each epoch with one-hot labels, in 1.5 GB with the memory setting the
    zip's README gives for it."""
    files, _, root, env = gradescope_autograder(tmp_path)
    readme = files["README.md"].decode()
    assert "**1.5 GB**" in readme and "`--memory-mb 1100`" in readme
    for name, container_mib, memory_mb in (("float64_training_set", 768, None),
                                           ("float64_copies_each_epoch", 1536, "1100")):
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        CORRECT[name].write(root / "submission")
        run_env = env if memory_mb is None else {**env, "MLP_GRADER_MEMORY_MB": memory_mb}  # as --memory-mb would
        with memory_cgroup(container_mib << 20, required=True) as enter:
            run = subprocess.run([str(root / "run_autograder")], cwd=root, env=run_env, capture_output=True,
                                 text=True, timeout=900, preexec_fn=enter)
            peak = enter.peak()  # read while the cgroup exists: it is removed on leaving the block
        assert run.returncode == 0, run.stderr[-2000:]
        record = read_results(root / "results" / "results.json")
        lost = [f"{r.name}: {r.output}" for r in record.results if r.score < r.max_score]
        assert record.score == TOTAL_POINTS, (name, peak, lost)
