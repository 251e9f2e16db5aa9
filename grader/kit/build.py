"""The student kit: the template, the grader with its calibration, tox.ini, a README, a CI workflow.

Layout of the kit (a folder a course can publish as a GitHub Classroom template repository)::

    README.md                      for students: how to grade, what is graded
    tox.ini, pyproject.toml        `tox -e grade` installs the grader and grades student_template/
    student_template/mlp.py        generated from reference/mlp.py, solution blocks replaced by hints
    grader/                        the grader, its checks, calibration.json and golden.npz
    .github/workflows/grade.yml    grades every push; report artifact, job summary, minimum score
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2

from grader import __version__
from grader.assign.template import as_notebook, make_template
from grader.calibration import CALIBRATION_FILE
from grader.calibration import load as load_calibration
from grader.contract import BATCH_SIZE, COMPONENTS, EPOCHS, LR, POINTS
from grader.handout.bundle import FILES, InstructorTree, copy_grader, refuse_leaks, staged

NOTEBOOK_TITLE = ("# MLP from scratch\n\nReplace every `raise NotImplementedError(...)`. Only cells that define "
                  "things (imports, functions, classes, constants) are graded: cells that train or plot are left out.")
# Markdown and YAML, from the grader's own data only: no autoescaping (it would be HTML's).
_TEXT = jinja2.Environment(loader=jinja2.FileSystemLoader(FILES), undefined=jinja2.StrictUndefined,
                           keep_trailing_newline=True, autoescape=False)


def student_readme(min_score: float) -> str:
    calibration = load_calibration(CALIBRATION_FILE)
    return _TEXT.get_template("README.md.j2").render(
        components=", ".join(f"`{c}`" for c in COMPONENTS if c != "train"), train_points=f"{POINTS['train']:g}",
        points_table=[(name, f"{points:g}") for name, points in POINTS.items()],
        epochs=EPOCHS, batch=BATCH_SIZE, lr=LR, full_credit=f"{100 * calibration.full_credit:.1f}",
        zero_credit=f"{100 * calibration.zero_credit:.1f}", factor=f"{calibration.raw['timing']['budget_factor']:g}",
        min_score=f"{min_score:g}", version=__version__, calibration_id=calibration.id)


def build_kit(out: Path, source: Path, min_score: float, notebook: bool = False) -> Path:
    """Build the kit into ``out`` (a new or empty folder) from the instructor's repository ``source``.

    With ``notebook`` the students get ``student_template/mlp.ipynb`` (the same template, a cell per
    definition) instead of ``mlp.py``.
    """
    tree = InstructorTree(source).check()
    with staged(out) as kit:
        copy_grader(tree, kit)
        (kit / "student_template").mkdir()
        template = make_template(tree.reference.read_text(encoding="utf-8"))
        if notebook:
            (kit / "student_template" / "mlp.ipynb").write_text(as_notebook(template, NOTEBOOK_TITLE), encoding="utf-8")
        else:
            (kit / "student_template" / "mlp.py").write_text(template, encoding="utf-8")
        shutil.copyfile(FILES / "tox.ini", kit / "tox.ini")
        shutil.copyfile(FILES / "gitignore", kit / ".gitignore")
        (kit / "README.md").write_text(student_readme(min_score), encoding="utf-8")
        workflows = kit / ".github" / "workflows"
        workflows.mkdir(parents=True)
        workflow = (FILES / "grade.yml").read_text(encoding="utf-8").replace("@MIN_SCORE@", f"{min_score:g}")
        (workflows / "grade.yml").write_text(workflow, encoding="utf-8")
        refuse_leaks(kit, tree)
    return out
