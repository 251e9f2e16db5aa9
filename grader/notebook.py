"""A notebook submission, ``mlp.ipynb``, as the module ``mlp.py`` it stands for (CONTRACT §1).

The module is the notebook's code cells that define things (imports, functions, classes,
constants), in order. Read with ``nbformat`` (in the grader's process: the file is data, never
run here). IPython magics and shell escapes (``%``, ``%%``, ``!`` lines) are dropped, and a cell
with any top-level statement that does work (training, plotting, downloads, any call) is left
out whole, its imports too: importing the module must only define. Each thing left out becomes
a note the report shows.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.submission import MAX_SUBMISSION_BYTES, UnusableSubmission, submission_files

_MAGIC = re.compile(r"^\s*[%!]")
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class NotebookModule:
    source: str  # the text of mlp.py
    notes: list[str] = field(default_factory=list)  # what was left out, one line each


def defines(node: ast.stmt) -> bool:
    """A top-level statement that only defines: imports, def, class, docstrings, constants without calls."""
    if isinstance(node, _DEFINITIONS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return node.value is None or not any(isinstance(part, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom))
                                             for part in ast.walk(node.value))
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)  # a docstring or a bare literal
    if isinstance(node, ast.Try):  # try: import fast except ImportError: import slow
        return all(defines(inner) for inner in [*node.body, *node.orelse, *node.finalbody,
                                               *(s for handler in node.handlers for s in handler.body)])
    return isinstance(node, ast.Pass)


def _first_line(text: str, node: ast.stmt) -> str:
    line = text.splitlines()[node.lineno - 1].strip()
    return line if len(line) <= 60 else line[:59] + "…"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, or UnusableSubmission with one line saying what is wrong with it."""
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        raise UnusableSubmission(f"{path.name}: larger than {MAX_SUBMISSION_BYTES >> 20} MB")
    try:
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except RecursionError:
        raise UnusableSubmission(f"{path.name}: not a notebook (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001  (nbformat raises many kinds for bad input; each is one line here)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UnusableSubmission(f"{path.name}: not a readable notebook ({reason})") from None
    if notebook.get("nbformat", 0) < 4:
        raise UnusableSubmission(f"{path.name}: nbformat {notebook.get('nbformat')} notebooks are not read; "
                                 "open and save it with a current Jupyter (nbformat 4)")
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise UnusableSubmission(f"{path.name}: not a valid nbformat 4 notebook ({exc.message[:200]})") from None
    return notebook


def notebook_module(path: Path) -> NotebookModule:
    """The module ``mlp.ipynb`` at ``path`` stands for, with notes on what was left out."""
    cells = [cell for cell in read_notebook(path).cells if cell.cell_type == "code"]
    if not any(cell.source.strip() for cell in cells):
        raise UnusableSubmission(f"{path.name}: the notebook has no code cells")
    module = NotebookModule("")
    parts = []
    for number, cell in enumerate(cells, 1):
        if cell.source.lstrip().startswith("%%"):
            module.notes.append(f"code cell {number}: a cell magic ({cell.source.split()[0]}), left out")
            continue
        lines = cell.source.splitlines()
        magics = [line.strip() for line in lines if _MAGIC.match(line)]
        if magics:
            module.notes.append(f"code cell {number}: IPython magic or shell escape {magics[0][:60]!r}"
                                + (f" and {len(magics) - 1} more" if len(magics) > 1 else "") + ", left out")
        text = "\n".join("" if _MAGIC.match(line) else line for line in lines)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            parts.append(text)  # importing the module then reports the syntax error, as for mlp.py
            continue
        work = [node for node in tree.body if not defines(node)]
        if not work:
            parts.append(text)
            continue
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        module.notes.append(f"code cell {number} left out: line {work[0].lineno}, {_first_line(text, work[0])!r}, "
                            "does work at import" + (f"; it also defines {', '.join(defined)}: move the work to a "
                                                    "cell of its own" if defined else ""))
    module.source = "\n\n\n".join(parts) + "\n"
    return module


@contextmanager
def graded_folder(folder: Path) -> Iterator[tuple[Path, list[str]]]:
    """The folder to grade and the notes on it: ``folder`` itself when it has ``mlp.py``, else a copy
    whose ``mlp.py`` is its notebook's module."""
    if (folder / "mlp.py").is_file():
        yield folder, []
        return
    module = notebook_module(folder / "mlp.ipynb")
    with tempfile.TemporaryDirectory(prefix="mlp-notebook-") as scratch:
        copy = Path(scratch) / folder.name
        for relative, path in submission_files(folder):
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy / relative)
        (copy / "mlp.py").write_text(module.source, encoding="utf-8")
        yield copy, ["mlp.ipynb was graded as the module of its code cells that define things", *module.notes]
