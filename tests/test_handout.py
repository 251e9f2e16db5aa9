"""Handouts: the student kit and the Gradescope autograder, built and used as their users would.

The kit is graded with its own ``tox -e grade`` and its GitHub workflow's shell steps are run as a
runner runs them; the Gradescope zip is unpacked under a temporary root laid out like
``/autograder``, its ``setup.sh`` builds the environment and ``run_autograder`` grades.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from grader.assign.template import make_template, split_blocks
from grader.contract import COMPONENTS, TOTAL_POINTS
from grader.data.mnist import default_cache_dir
from grader.report.results_json import read_results

pytestmark = pytest.mark.mnist
ROOT = Path(__file__).resolve().parents[1]
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


def run_workflow(kit: Path, summary: Path, variables: dict[str, str]) -> str:
    """Run the workflow's shell steps in ``kit`` as a GitHub runner would; return the job's conclusion.

    ``uses:`` steps (checkout, setup-python, cache, artifact upload) are GitHub's own; after a failed
    step only ``if: always()`` steps run. ``${{ vars.X || 'default' }}`` reads ``variables``.
    """
    job = yaml.safe_load((kit / ".github/workflows/grade.yml").read_text())["jobs"]["grade"]
    env = clean_env(GITHUB_STEP_SUMMARY=str(summary))
    for name, value in job.get("env", {}).items():
        match = re.fullmatch(r"\$\{\{ vars\.(\w+) \|\| '([^']*)' \}\}", value)
        env[name] = variables.get(match.group(1), match.group(2)) if match else value
    failed = False
    for step in job["steps"]:
        if "run" not in step or (failed and step.get("if") != "always()"):
            continue
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=kit,
                              env=env, capture_output=True, text=True, timeout=900)
        failed |= done.returncode != 0
    return "failure" if failed else "success"


def test_kit_workflow_fails_below_the_minimum_and_still_reports(kit, tmp_path):
    workflow = yaml.safe_load((kit / ".github/workflows/grade.yml").read_text())
    upload = next(s for s in workflow["jobs"]["grade"]["steps"] if s.get("uses", "").startswith("actions/upload-art"))
    assert upload["if"] == "always()"

    assert run_workflow(kit, tmp_path / "summary.md", {}) == "failure"  # the template scores 0 < 60
    assert "0.0 / 100" in (tmp_path / "summary.md").read_text()
    assert (kit / upload["with"]["path"] / "student_template" / "report.html").is_file()
    junit = ET.parse(kit / "reports" / "junit.xml").getroot()
    assert len(junit.findall(".//testcase")) == len(junit.findall(".//failure")) > 10

    # The instructor's MLP_MIN_SCORE variable overrides the kit's default.
    assert run_workflow(kit, tmp_path / "again.md", {"MLP_MIN_SCORE": "0"}) == "success"
    assert "0.0 / 100" in (tmp_path / "again.md").read_text()


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


def unpack_like_gradescope(archive: Path, root: Path) -> None:
    """Unzip into ROOT/source keeping the modes the zip records, and copy run_autograder to ROOT."""
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            target = root / "source" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bundle.read(info))
            target.chmod(stat.S_IMODE(info.external_attr >> 16))
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")


def test_gradescope_autograder_grades_the_submission_layout(tmp_path):
    archive = tmp_path / "autograder.zip"
    done = cli("gradescope", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as bundle:
        files = {name: bundle.read(name) for name in bundle.namelist()}
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in bundle.infolist()}
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert_no_solution_inside(files)

    root = tmp_path / "autograder"
    unpack_like_gradescope(archive, root)
    env = clean_env(AUTOGRADER_ROOT=str(root), MLP_GRADER_CACHE=str(default_cache_dir()))
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]

    (root / "submission").mkdir()
    shutil.copyfile(REFERENCE, root / "submission" / "mlp.py")
    run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    record = read_results(root / "results" / "results.json")
    assert record.score == TOTAL_POINTS and {r.component for r in record.results} == set(COMPONENTS)
    assert (root / "results" / "report.html").is_file()

    # A submission that cannot be graded still leaves a results.json that says why.
    shutil.rmtree(root / "results")
    (root / "submission" / "mlp.py").rename(root / "submission" / "my_mlp.py")
    run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0
    record = read_results(root / "results" / "results.json")
    assert record.score == 0 and record.failure is not None and "mlp.py" in record.failure
