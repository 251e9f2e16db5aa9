"""Notebook submissions: mlp.ipynb is graded as the module of its defining cells (CONTRACT §1)."""

from __future__ import annotations

import ast
import json

import nbformat
import pytest

from grader.assign.template import as_notebook, make_template, solution_lines
from grader.handout.bundle import leaks
from grader.notebook import defines, notebook_module
from helpers import REFERENCE_SOURCE, grade, run_grader

WORK_CELLS = ["%matplotlib inline\n!pip install numpy", "X_train = np.load('mnist.npy')\nmodel = MLP()\n"
              "history = train(model, X_train, X_train)", "import matplotlib.pyplot as plt\nplt.plot(history)"]


def notebook(folder, *sources: str, name: str = "mlp.ipynb"):
    folder.mkdir(parents=True, exist_ok=True)
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell("# my MLP"), *(nbformat.v4.new_code_cell(s) for s in sources)]
    (folder / name).write_text(nbformat.writes(book))
    return folder


def test_only_definitions_are_kept():
    kept = [ast.parse(code).body[0] for code in ("import numpy as np", "EPS = 1e-12", "def f():\n    return 1",
                                                  "try:\n    import torch\nexcept ImportError:\n    torch = None")]
    dropped = [ast.parse(code).body[0] for code in ("train(model, X, y)", "rng = np.random.default_rng(0)",
                                                    "for i in range(3):\n    pass", "print('hi')")]
    assert all(defines(node) for node in kept) and not any(defines(node) for node in dropped)


@pytest.mark.mnist
def test_the_reference_as_a_notebook_gets_full_marks(tmp_path):
    book = json.loads(as_notebook(REFERENCE_SOURCE, "# reference"))
    folder = notebook(tmp_path / "s", *("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code"),
                      *WORK_CELLS)
    done, record = grade(folder, tmp_path / "out")
    assert record.score == record.max_score == 100, [r.output for r in record.results if r.score < r.max_score]
    notes = " ".join(record.notes)
    assert "'%matplotlib inline' and 1 more" in notes and "X_train = np.load" in notes and "plt.plot" in notes
    assert "notebook:" in done.stdout and "How your notebook was read" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.mnist
def test_the_template_as_a_notebook_gets_zero(tmp_path):
    folder = tmp_path / "kit" / "student_template"
    folder.mkdir(parents=True)
    (folder / "mlp.ipynb").write_text(as_notebook(make_template(REFERENCE_SOURCE), "# template"))
    _, record = grade(tmp_path / "kit", tmp_path / "out", "--epochs", "1")
    assert record.score == 0 and all("not implemented yet" in r.output for r in record.results)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a readable notebook"),
    (json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}), "nbformat 3"),
    (nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("only words")])), "no code cells"),
    ("[" * 100000 + "]" * 100000, "not a"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": "many"}), "not a"),
])
def test_a_bad_notebook_is_one_line_and_exit_2(tmp_path, content, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mlp.ipynb").write_text(content)
    done = run_grader("grade", str(tmp_path / "s"), "--out", str(tmp_path / "out"), "--only", "softmax")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(("cell", "kind"), [
    ("import does_not_exist", "importing mlp.py failed: raised ModuleNotFoundError"),
    ("class Trap:\n    import os\n    os._exit(3)", "exited with status 3"),
    ("def softmax(logits):\n    while True:\n        pass", "did not finish"),
])
def test_a_hostile_or_broken_notebook_is_contained(tmp_path, cell, kind):
    book = json.loads(as_notebook(REFERENCE_SOURCE, "# reference"))
    folder = notebook(tmp_path / "s", *("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code"), cell)
    _, record = grade(folder, tmp_path / "out", "--only", "softmax,relu_forward")
    assert record.component_points()["softmax"][0] == 0
    assert kind in " ".join(r.output for r in record.results)


def test_a_notebook_is_searched_for_solution_lines(tmp_path):
    secret = solution_lines(REFERENCE_SOURCE)
    notebook(tmp_path / "kit", REFERENCE_SOURCE)
    found = leaks(tmp_path / "kit", secret)
    assert found and all(entry.startswith("mlp.ipynb: ") for entry in found)
    assert notebook_module(tmp_path / "kit" / "mlp.ipynb").source.strip()


@pytest.mark.mnist
def test_the_kit_can_hand_out_a_notebook(tmp_path):
    done = run_grader("kit", "--out", str(tmp_path / "kit"), "--notebook")
    assert done.returncode == 0, done.stderr
    template = tmp_path / "kit" / "student_template"
    assert (template / "mlp.ipynb").is_file() and not (template / "mlp.py").exists()
    assert not leaks(tmp_path / "kit", solution_lines(REFERENCE_SOURCE))
    _, record = grade(tmp_path / "kit", tmp_path / "out", "--only", "softmax,MLP")
    assert record.score == 0 and record.notes
