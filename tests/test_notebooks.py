"""Notebook submissions: mlp.ipynb is graded as the module of its defining cells (CONTRACT §1)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import nbformat
import pytest

from grader.assign.template import as_notebook, make_template, solution_lines
from grader.handout.bundle import leaks
from grader.notebook import BUILTIN_NAMES, defines, graded_folder, notebook_module
from helpers import REFERENCE_SOURCE, grade, run_grader

# What a student's notebook holds besides the definitions: magics, display and data-loading imports
# (kept, and stood in where the grading environment lacks them), a loading cell, call-free transforms
# of the data, a training run and a plot (all left out).
WORK_CELLS = ["%matplotlib inline\n!pip install numpy",
              "from IPython.display import clear_output, display\nfrom keras.datasets import mnist\n"
              "import matplotlib.pyplot as plt",
              "(X_train, y_train), (X_test, y_test) = mnist.load_data()",
              "X_train = X_train.reshape(-1, 784).T\nm = X_train.shape[1]\nX_train = X_train / 255.",
              "X_train = np.load('mnist.npy')\nmodel = MLP()\nhistory = train(model, X_train, X_train)",
              "plt.plot(history)\nclear_output()"]
REFERENCE_CELLS = ["".join(c["source"]) for c in json.loads(as_notebook(REFERENCE_SOURCE, "# reference"))["cells"]
                   if c["cell_type"] == "code"]  # the preamble (docstring, imports), then one cell per definition


def notebook(folder, *sources: str, name: str = "mlp.ipynb", counts: list[int | None] | None = None):
    """``folder`` holding a notebook: a title, then ``sources`` as code cells, ``counts`` their In [n] (else none)."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = [*(counts or []), *[None] * len(sources)]
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell("# my MLP"),
                  *(nbformat.v4.new_code_cell(source, execution_count=n) for source, n in zip(sources, counts))]
    (folder / name).write_text(nbformat.writes(book))
    return folder


def read(tmp_path, *sources: str, counts: list[int | None] | None = None):
    """The module that a notebook of ``sources`` stands for."""
    return notebook_module(notebook(tmp_path / "nb", *sources, counts=counts) / "mlp.ipynb")


def test_only_definitions_are_kept():
    kept = [ast.parse(code).body[0] for code in ("import numpy as np", "EPS = 1e-12", "def f():\n    return 1",
                                                  "try:\n    import torch\nexcept ImportError:\n    torch = None")]
    dropped = [ast.parse(code).body[0] for code in ("train(model, X, y)", "rng = np.random.default_rng(0)",
                                                    "for i in range(3):\n    pass", "print('hi')")]
    assert all(defines(node) for node in kept) and not any(defines(node) for node in dropped)


KNOWN = BUILTIN_NAMES | {"np", "relu", "SIZES", "LR"}  # what kept cells define before: an import, a def, constants


@pytest.mark.parametrize("code", [
    "LR = 0.1", "SIZES = (784, 128, 10)", "EPS = 1e-12", "DTYPE = np.float32", "ACT = relu", "HIDDEN = SIZES[1:-1]",
    "NAME = f'mlp-{SIZES[1]}-{LR}'", "STEP = LR * 0.5 if SIZES else -LR", "LR *= 0.5",
    "FLAGS = {'bias': True, 1: None}", "IN, *REST = SIZES", "SHAPE: tuple = (28, 28)",
    "leaky = lambda z, slope=LR: np.maximum(z, slope * z)", "'''a docstring'''", "SIZES", "pass",
    "def f(x, act=relu):\n    return act(x) @ undefined_until_called",
    "class Net:\n    SIZES = SIZES\n    WIDTH = SIZES[1]\n    def forward(self, x):\n        return relu(x)",
    "try:\n    import cupy as xp\nexcept ImportError:\n    xp = np",
])
def test_a_constant_of_literals_and_kept_names_defines(code):
    assert defines(ast.parse(code).body[0], KNOWN)


@pytest.mark.parametrize("code", [
    "X_train = X_train.T", "m = X_train.shape[1]", "X = X / 255.", "X /= 255.", "X_train = X_train.reshape(-1, 784)",
    "DTYPE = np.dtype('float32')", "N = len(SIZES)", "SQUARES = [s * s for s in SIZES]", "X_train", "mean = X.mean()",
    "plt.rcParams['figure.figsize'] = (8, 6)", "def f(x, data=X_train):\n    return x",
    "class Net:\n    rng = np.random.default_rng(0)", "class Net(Base):\n    pass", "for i in range(3):\n    pass",
    "if SIZES:\n    LR = 1", "del LR", "assert LR > 0",
])
def test_data_calls_and_statements_are_work(code):
    assert not defines(ast.parse(code).body[0], KNOWN)


STUDENT_CELLS = [  # a notebook written the way students write them: (source, In [n], why it is left out or None)
    (REFERENCE_CELLS[0], 1, None),
    ("%matplotlib inline", 2, None),
    ("import matplotlib.pyplot as plt\nfrom IPython.display import clear_output", 3, None),
    ("from keras.datasets import mnist\n(X_train, y_train), (X_test, y_test) = mnist.load_data()", 4, "loads data"),
    ("X_train = X_train.reshape(-1, 784)\nX_test = X_test.reshape(-1, 784)", 5, "computes from data"),
    ("X_train = X_train / 255.\nX_test = X_test / 255.", 6, "computes from data"),
    ("X_train = X_train.T\nm = X_train.shape[1]", 7, "computes from data"),
    ("X_train /= 1.0", None, "computes from data"),
    ("plt.imshow(X_train[:, 0].reshape(28, 28), cmap='gray')\nplt.title(y_train[0])\nplt.show()", 9, "plots"),
    ("LR = 0.1\nSIZES = (784, 128, 64, 10)\nEPS = 1e-12\nDTYPE = np.float32\nHIDDEN = SIZES[1:-1]\n"
     "NAME = f'mlp-{SIZES[1]}-{LR}'", 10, None),
    *((cell, 11 + index, None) for index, cell in enumerate(REFERENCE_CELLS[1:])),
    ("ACT = relu_forward", 30, None),
    ("history = train(MLP(SIZES), X_train.T.astype(DTYPE), y_train, epochs=3)", 31, "trains"),
    ("plt.plot(history)\nplt.xlabel('epoch')\nplt.savefig('loss.png')", 32, "plots"),
    ("print(f'final loss {history[-1]:.3f}')", 33, "prints"),
]


def test_a_students_notebook_keeps_exactly_its_definition_cells(tmp_path):
    sources, counts, _ = zip(*STUDENT_CELLS)
    module = read(tmp_path, *sources, counts=list(counts))
    assert module.source == "\n\n\n".join("" if source.startswith("%") else source
                                          for source, _, why in STUDENT_CELLS if why is None) + "\n"
    compile(module.source, "mlp.py", "exec")
    left_out = [(f"code cell {number}" + (f" (In [{count}])" if count else ""), why)
                for number, (_, count, why) in enumerate(STUDENT_CELLS, 1) if why]
    notes = [note for note in module.notes if " left out: line " in note]
    assert len(notes) == len(left_out) and all(note.startswith(f"{label} left out: line ") and note.endswith(", " + why)
                                               for note, (label, why) in zip(notes, left_out)), notes
    assert notes[0] == ("code cell 4 (In [4]) left out: line 2, '(X_train, y_train), (X_test, y_test) = "
                        "mnist.load_data()', loads data")  # its work is line 2: the import alone would be kept
    assert "code cell 2 (In [2]): IPython magic or shell escape '%matplotlib inline', left out" in module.notes
    assert {"m", "X_train", "y_test", "mnist", "history"} <= module.left_out.keys()
    assert not {"LR", "softmax", "plt", "np", "ACT", "clear_output"} & module.left_out.keys()


def test_mlp_py_lines_are_told_as_the_cells_lines(tmp_path):
    module = read(tmp_path, "import numpy as np", "X = np.load('x.npy')",
                  "def softmax(z):\n    e = np.exp(z)\n    return e / m", "%time softmax(np.zeros(3))",
                  counts=[1, 2, 12, None])
    at = module.source.split("\n").index("    return e / m") + 1
    assert module.where(1) == "code cell 1 (In [1]), line 1" and module.where(at) == "code cell 3 (In [12]), line 3"
    assert module.where(2) is None and module.where(at + 3) == "code cell 4, line 1"  # between cells; no In [n]
    box = "/tmp/mlp-sandbox-4242-x/box/submission"
    traceback = (f'Traceback (most recent call last):\n  File "{box}/mlp.py", line {at}, in softmax\n'
                 f'    return e / m\n  File "{box}/helpers.py", line {at}, in helper\n  File "notmlp.py", line 1\n'
                 f"SyntaxError: invalid syntax (mlp.py, line {at})\n{box}/mlp.py:{at}: RuntimeWarning: overflow")
    assert module.translate(traceback) == (
        "Traceback (most recent call last):\n  code cell 3 (In [12]), line 3, in softmax\n    return e / m\n"
        f'  File "{box}/helpers.py", line {at}, in helper\n  File "notmlp.py", line 1\n'
        "SyntaxError: invalid syntax (code cell 3 (In [12]), line 3)\n"
        "code cell 3 (In [12]), line 3: RuntimeWarning: overflow")
    assert module.translate('File "mlp.py", line 2, in <module>') == 'File "mlp.py", line 2, in <module>'


def test_a_name_only_a_left_out_cell_sets_is_explained(tmp_path):
    module = read(tmp_path, "import numpy as np", "from keras.datasets import mnist\n(X, y), _ = mnist.load_data()",
                  "X = X / 255.\nm = X.shape[0]", "plt.plot(X[0])\nscale = 2",
                  "print(X.shape)\ndef softmax(z):\n    return z", "model.fit(X, y)\nlr = 0.1",
                  "n = 5\nfor i in range(n):\n    k = i", "k = 3", "def f():\n    global g\n    g = 1",
                  "g = np.zeros(2).sum()", "\n%%time\nhist = train(model, X, y)", counts=[1, 2, 7, None, 9, 10, 11, 12])
    error = ("raised NameError: name 'm' is not defined\nTraceback (most recent call last):\n"
             "NameError: name 'm' is not defined")
    hint = ("`m` is set only in code cell 3 (In [7]), which the grader leaves out because it computes from data: "
            "compute it inside the function (or pass it in).")
    told = module.translate(error)
    assert told.split("\n")[0] == "raised NameError: name 'm' is not defined. " + hint and told.count(hint) == 1
    assert module.translate(told) == told  # a text told twice is told once
    for name, where in [("X", "set only in code cell 2 (In [2]), which the grader leaves out because it loads data"),
                        ("scale", "set only in code cell 4, which the grader leaves out because it plots"),
                        ("lr", "set only in code cell 6 (In [10]), which the grader leaves out because it trains"),
                        ("n", "set only in code cell 7 (In [11]), which the grader leaves out because it does work"),
                        ("hist", "code cell 11, which the grader leaves out because it runs the cell magic %%time")]:
        assert where in module.translate(f"name '{name}' is not defined. Did you mean: 'np'?"), name
    assert ("`softmax` is defined only in code cell 5 (In [9]), which the grader leaves out because it prints: keep "
            "that cell to definitions only") in module.translate("raised AttributeError: module 'mlp' has no "
                                                                 "attribute 'softmax'")
    # No sentence without the evidence: k and g are also set by kept cells (g through a kept function's global),
    # np is kept, nothing sets q, and another module's missing attribute is not the notebook's.
    for text in ["name 'k' is not defined", "name 'g' is not defined", "name 'np' is not defined",
                 "name 'q' is not defined", "module 'numpy' has no attribute 'X'"]:
        assert module.translate(text) == text


def test_a_cell_python_cannot_read_is_kept_for_the_import_to_report(tmp_path):
    cells = ["import numpy as np", "def f(:\n    pass", "x = " + "-" * 900 + "1", "y = " + "1+" * 50000 + "1"]
    module = read(tmp_path, *cells)
    assert module.source == "\n\n\n".join(cells) + "\n" and not module.notes
    assert module.translate("invalid syntax (mlp.py, line 4)") == "invalid syntax (code cell 2, line 1)"


def test_a_plain_mlp_py_is_graded_as_it_is_and_a_notebook_through_its_module(tmp_path):
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "mlp.py").write_text("x = 1\n")
    with graded_folder(tmp_path / "py") as (folder, notes, translate):
        assert folder == tmp_path / "py" and notes == []
        assert translate('File "/x/mlp.py", line 1') == 'File "/x/mlp.py", line 1'
    with graded_folder(notebook(tmp_path / "nb", "import numpy as np", "Z = Q", counts=[5, 6])) as (folder, notes,
                                                                                                     translate):
        assert (folder / "mlp.py").read_text() == "import numpy as np\n"
        assert notes[1] == "code cell 2 (In [6]) left out: line 1, 'Z = Q', computes from data"
        assert translate('File "/x/mlp.py", line 1, in <module>') == "code cell 1 (In [5]), line 1, in <module>"


def test_a_function_using_what_only_a_left_out_cell_sets_is_told_in_cells(tmp_path):
    softmax = ("def softmax(logits):\n    shifted = logits - logits.max(axis=1, keepdims=True)\n"
               "    e = np.exp(shifted)\n    return e / e.sum(axis=1, keepdims=True){}")
    cells = [*REFERENCE_CELLS, "X_train = np.load('mnist_train.npy')", "m = X_train.shape[0]", softmax]
    counts = list(range(1, len(cells) + 1))
    wrong = notebook(tmp_path / "wrong", *cells[:-1], softmax.format(" * m / m"), counts=counts)
    right = notebook(tmp_path / "right", *cells[:-1], softmax.format(""), counts=counts)
    _, record = grade(wrong, tmp_path / "out-wrong", "--only", "softmax")
    texts, number = [r.output for r in record.results], len(cells)
    hint = (f"`m` is set only in code cell {number - 1} (In [{number - 1}]), which the grader leaves out because it "
            "computes from data: compute it inside the function (or pass it in)")
    assert record.score == 0 and texts and all(
        f"code cell {number} (In [{number}]), line 4, in softmax" in text and hint in text
        and "mlp.py, line" not in text and 'mlp.py", line' not in text for text in texts), texts
    _, record = grade(right, tmp_path / "out-right", "--only", "softmax")
    assert record.score == record.max_score > 0, [r.output for r in record.results]
    assert any("X_train = np.load" in note and note.endswith("loads data") for note in record.notes)


@pytest.mark.mnist
@pytest.mark.slow
def test_the_reference_as_a_notebook_gets_full_marks(tmp_path):
    folder = notebook(tmp_path / "s", *REFERENCE_CELLS, *WORK_CELLS)
    done, record = grade(folder, tmp_path / "out")
    assert record.score == record.max_score == 100, [r.output for r in record.results if r.score < r.max_score]
    notes = " ".join(record.notes)
    assert "'%matplotlib inline' and 1 more" in notes and "X_train = np.load" in notes and "plt.plot" in notes
    assert "mnist.load_data()" in notes and "X_train.reshape" in notes
    assert any("keras" in stood_in for stood_in in record.stand_ins), record.stand_ins
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
    # What a kept cell runs at import: a default value (a call in a cell's own statements leaves the cell out).
    ("import os\n\ndef trap(exit=os._exit(3)):\n    pass", "exited with status 3"),
    ("def softmax(logits):\n    while True:\n        pass", "did not finish within 5.0 s"),
])
def test_a_hostile_or_broken_notebook_is_contained(tmp_path, cell, kind):
    folder = notebook(tmp_path / "s", *REFERENCE_CELLS, cell)
    # --call-timeout: the default 30 s would make the hang cost a minute (a function that hangs costs two limits).
    _, record = grade(folder, tmp_path / "out", "--only", "softmax,relu_forward", "--call-timeout", "5")
    assert record.component_points()["softmax"][0] == 0
    told = " ".join([record.import_failure, *(r.output for r in record.results)])  # an import failure is told once
    assert kind in told and "mlp.py, line" not in told and 'mlp.py", line' not in told
    assert record.replay.endswith("--call-timeout 5")  # a replay keeps the limit the grade was given


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


def test_grading_an_mlp_py_does_not_load_the_notebook_reader():
    """nbformat and jsonschema take a tenth of a grade's start: only a notebook needs them."""
    done = subprocess.run([sys.executable, "-c", "import sys, grader.cli, grader.grade, grader.rubric.run\n"
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nbformat', 'jsonschema')))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
