"""A notebook submission, ``mlp.ipynb``, as the module ``mlp.py`` it stands for (CONTRACT §1).

The module is the notebook's code cells that only define things, in order. Read with ``nbformat``
(in the grader's process: the file is data, never run here). IPython magics and shell escapes
(``%``, ``%%``, ``!`` lines) are dropped. A cell is kept when everything it does at top level defines:
imports, def, class, docstrings, ``pass``, try/except around imports, and constants built without a
call from literals and from names that kept cells define (``LR = 0.1``, ``DTYPE = np.float32``,
``HIDDEN = SIZES[1:-1]``). Any other statement (a call, a loop, a print, a value computed from data
that no kept cell defines, such as ``X = X / 255.``) leaves the cell out whole, its imports too:
importing the module must only define, and must not fail on a name that nothing kept defines. Each
thing left out becomes a note the report shows.

Texts about the generated module (tracebacks, one-line messages) are told in the notebook's terms by
``NotebookModule.translate``: a line of mlp.py becomes "code cell 7 (In [12]), line 3", and a name
that only a left-out cell sets is explained.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.submission import MAX_SUBMISSION_BYTES, UnusableSubmission, submission_files

if TYPE_CHECKING:
    import nbformat

_MAGIC = re.compile(r"^\s*[%!]")
_NEWLINE = re.compile(r"\r\n?|\n")  # Python's own line ends (str.splitlines also splits at \f, \u2028, ...)
BUILTIN_NAMES = frozenset(dir(builtins)) | {"__name__", "__doc__", "__file__", "__spec__", "__loader__",
                                            "__package__", "__builtins__"}  # what a module has before it runs
# Expressions that compute nothing beyond their parts: no call, no await, no comprehension.
_CONSTANT_PARTS = (ast.Constant, ast.Name, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BinOp, ast.UnaryOp,
                   ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Attribute, ast.JoinedStr,
                   ast.FormattedValue, ast.Starred, ast.Lambda)
_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)  # their names are their own
# Why a cell is left out, from the words of the names its first work statement calls; the first that matches
# wins. A word in the last set keeps the reason from applying (train_test_split prepares data, not a model).
_CALL_REASONS = (
    ("loads data", re.compile(r"(load|read|fetch|download|open|urlopen|urlretrieve|genfromtxt)\w*"), set()),
    ("plots", re.compile(r"(plot|subplot|imshow|savefig)\w*|show|figure|scatter|hist"), set()),
    ("prints", re.compile(r"p?print|display"), set()),
    ("trains", re.compile(r"fit|train|training"), {"split"}),
)
# Where a text names a line of the generated mlp.py: a traceback's frame, a SyntaxError's message, a warning.
_FILE_LINE = re.compile(r'File "(?:[^"\n]*[/\\])?mlp\.py", line (\d+)')
_MESSAGE_LINE = re.compile(r"\((?:[^()\n]*[/\\])?mlp\.py, line (\d+)\)")
_WARNING_LINE = re.compile(r"(?<![\w.-])(?:[^\s\"'()]*[/\\])?mlp\.py:(\d+):")
_MISSING = re.compile(r"name '(\w+)' is not defined|module 'mlp' has no attribute '(\w+)'")


@dataclass(frozen=True)
class LeftOut:
    """A name that only a left-out cell sets: which cell, and why the grader leaves it out."""

    cell: str  # "code cell 7 (In [12])"
    reason: str  # "loads data", as the notes say it
    definition: bool  # set by def, class or import: the cell mixes definitions with work

    def hint(self, name: str) -> str:
        """The sentence told after an error on ``name``."""
        if self.definition:
            return (f"`{name}` is defined only in {self.cell}, which the grader leaves out because it {self.reason}: "
                    "keep that cell to definitions only (move the work to a cell of its own).")
        return (f"`{name}` is set only in {self.cell}, which the grader leaves out because it {self.reason}: "
                "compute it inside the function (or pass it in).")


@dataclass
class NotebookModule:
    """The module a notebook stands for, what was left out of it, and how to tell its lines as the cells'."""

    source: str  # the text of mlp.py
    notes: list[str] = field(default_factory=list)  # what was left out, one line each
    cells: list[tuple[int, int, str]] = field(default_factory=list)  # each kept cell: first line in mlp.py,
    # its number of lines, "code cell K (In [n])"
    left_out: dict[str, LeftOut] = field(default_factory=dict)  # names set in left-out cells and in no kept cell

    def where(self, line: int) -> str | None:
        """Line ``line`` of mlp.py as "code cell K (In [n]), line L"; None between cells."""
        index = bisect.bisect_right([first for first, _, _ in self.cells], line) - 1
        if index < 0:
            return None
        first, count, cell = self.cells[index]
        return f"{cell}, line {line - first + 1}" if line < first + count else None

    def translate(self, text: str) -> str:
        """``text`` (a traceback or a message) in the notebook's terms: its cells' lines instead of mlp.py's, and
        a sentence after an error on a name that only a left-out cell sets. Translating twice changes nothing."""
        def at(template: str) -> Callable[[re.Match[str]], str]:
            def replace(match: re.Match[str]) -> str:
                place = self.where(int(match.group(1)))
                return match.group(0) if place is None else template.format(place)
            return replace

        text = _FILE_LINE.sub(at("{}"), text)
        text = _MESSAGE_LINE.sub(at("({})"), text)
        text = _WARNING_LINE.sub(at("{}:"), text)
        lines = text.split("\n")
        for index, line in enumerate(lines):
            names = dict.fromkeys(match.group(1) or match.group(2) for match in _MISSING.finditer(line))
            hints = [self.left_out[name].hint(name) for name in names if name in self.left_out]
            hints = [hint for hint in hints if hint not in "\n".join(lines)]
            if hints:  # once, on the first line that names the error (the line a summary shows)
                line = line.rstrip()
                lines[index] = " ".join([line if line.endswith((".", "?", "!")) else line + ".", *hints])
        return "\n".join(lines)


def defines(node: ast.stmt, known: frozenset[str] | set[str] = BUILTIN_NAMES) -> bool:
    """A top-level statement that only defines, given the names ``known`` before it: imports, def, class,
    docstrings, ``pass``, try/except around imports, constants from literals and known names without a call."""
    return _first_work([node], set(known)) is None


def _first_work(body: list[ast.stmt], known: set[str]) -> ast.stmt | None:
    """The first statement of ``body`` that does more than define, or None; ``known`` gains what the others bind."""
    for node in body:
        if not _defines(node, known):
            return node
        known |= _bound([node])
    return None


def _defines(node: ast.stmt, known: set[str]) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        # Its decorators and defaults run at import (its body when called); a call there (@lru_cache()) defines.
        return _free(_runs(node)) <= known
    if isinstance(node, ast.ClassDef):  # its header and its body run at import, the body in a scope of its own
        header = [*node.decorator_list, *node.bases, *node.keywords]
        return _free(header) <= known and _first_work(node.body, set(known)) is None
    if isinstance(node, ast.Assign):
        return _constant(node.value, known) and all(_target(target, known) for target in node.targets)
    if isinstance(node, ast.AnnAssign):
        return (_constant(node.annotation, known) and _target(node.target, known)
                and (node.value is None or _constant(node.value, known)))
    if isinstance(node, ast.AugAssign):  # LR *= 0.5 of a constant; X /= 255. of data is work
        return _constant(node.target, known) and _constant(node.value, known)
    if isinstance(node, ast.Expr):  # a docstring, or a constant shown
        return _constant(node.value, known)
    if isinstance(node, ast.Try):  # try: import fast  except ImportError: import slow
        return (all(handler.type is None or _constant(handler.type, known) for handler in node.handlers)
                and all(_first_work(block, known) is None
                        for block in [node.body, *(handler.body for handler in node.handlers), node.orelse,
                                      node.finalbody]))
    return False


def _constant(expr: ast.expr, known: set[str]) -> bool:
    """``expr`` computes nothing at import beyond literals and ``known`` names (a lambda's body runs when called)."""
    todo = [expr]  # a loop, not recursion: Python compiles expressions nested deeper than the recursion limit
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name):
            if node.id not in known:
                return False
        elif isinstance(node, ast.Lambda):
            todo.extend(default for default in [*node.args.defaults, *node.args.kw_defaults] if default is not None)
        elif isinstance(node, _CONSTANT_PARTS):
            todo.extend(part for part in ast.iter_child_nodes(node) if isinstance(part, ast.expr))
        else:
            return False
    return True


def _target(target: ast.expr, known: set[str]) -> bool:
    """An assignment target that binds names, or stores into a known object (``plt.rcParams["x"] = 1``)."""
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_target(part, known) for part in target.elts)
    if isinstance(target, ast.Starred):
        return _target(target.value, known)
    if isinstance(target, ast.Attribute):
        return _constant(target.value, known)
    return isinstance(target, ast.Subscript) and _constant(target.value, known) and _constant(target.slice, known)


def _runs(node: ast.stmt) -> list[ast.AST]:
    """What of a top-level statement runs at import: a def's decorators and defaults, a class's header and body."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords,
                *(part for inner in node.body for part in _runs(inner))]
    return [node]


def _free(parts: list[ast.AST]) -> set[str]:
    """The names ``parts`` read, less those their own lambdas and comprehensions bind."""
    read, own = set(), set()
    for part in parts:
        for node in ast.walk(part):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                read.add(node.id)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.comprehension):
                own |= {name.id for name in ast.walk(node.target) if isinstance(name, ast.Name)}
    return read - own


def _bound(body: list[ast.stmt]) -> set[str]:
    """The names statements bind in the module (not those local to their functions, classes or comprehensions)."""
    names: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        todo.extend(ast.iter_child_nodes(node))
    return names


def _reason(node: ast.stmt, known: set[str]) -> str:
    """Why the work statement ``node`` leaves its cell out, in a note's words: by what it calls, else by whether
    it computes from data (names no kept cell defines)."""
    runs = _runs(node)
    called = [_words(part.func) for root in runs for part in ast.walk(root) if isinstance(part, ast.Call)]
    for reason, pattern, unless in _CALL_REASONS:
        if any(not unless & words and any(pattern.fullmatch(word) for word in words) for words in called):
            return reason
    read = _free(runs) | (_bound([node]) if isinstance(node, ast.AugAssign) else set())  # X /= 255. reads X
    assigns = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return "computes from data" if isinstance(node, assigns) and not read <= known else "does work at import"


def _words(func: ast.expr) -> set[str]:
    """The lower-case words of a called name: ``mnist.load_data`` -> {load, data}, ``DataLoader`` -> {data, loader}."""
    while isinstance(func, ast.Call):
        func = func.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return {word.lower() for word in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)}


def _parse(text: str) -> ast.Module | None:
    """The syntax tree of a cell's text, or None when Python cannot read it."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # the last three: null bytes, deep nesting
        return None


def _first_line(text: str, node: ast.stmt) -> str:
    line = _NEWLINE.split(text)[node.lineno - 1].strip()
    return line if len(line) <= 60 else line[:59] + "…"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, or UnusableSubmission with one line saying what is wrong with it."""
    import nbformat  # noqa: PLC0415  (here, not at the top: it and jsonschema are a tenth of a grade of mlp.py)

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
    known = set(BUILTIN_NAMES)  # what the kept cells so far define: a constant may be built from these
    kept: set[str] = set()  # every name a kept cell may set, by its statements or its functions' globals
    parts: list[str] = []
    for number, cell in enumerate(cells, 1):
        count = cell.get("execution_count")
        label = f"code cell {number}" + (f" (In [{count}])" if count is not None else "")
        lines = _NEWLINE.split(cell.source)
        if cell.source.lstrip().startswith("%%"):
            magic = cell.source.split()[0]
            module.notes.append(f"{label}: a cell magic ({magic}), left out")
            start = next(index for index, line in enumerate(lines) if line.strip()) + 1
            _note_left_out(module, "\n".join([""] * start + lines[start:]), label, f"runs the cell magic {magic}")
            continue
        magics = [line.strip() for line in lines if _MAGIC.match(line)]
        if magics:
            module.notes.append(f"{label}: IPython magic or shell escape {magics[0][:60]!r}"
                                + (f" and {len(magics) - 1} more" if len(magics) > 1 else "") + ", left out")
        text = "\n".join("" if _MAGIC.match(line) else line for line in lines)  # the cell's line numbers kept
        tree = _parse(text)  # None: kept, importing the module then reports the syntax error, as for mlp.py
        cell_known = set(known)
        work = None if tree is None else _first_work(tree.body, cell_known)
        if work is None:
            first = sum(size + 2 for _, size, _ in module.cells) + 1  # cells are joined by two blank lines
            module.cells.append((first, text.count("\n") + 1, label))
            parts.append(text)
            known = cell_known
            if tree is not None:
                kept |= _bound(tree.body) | {name for node in ast.walk(tree) if isinstance(node, ast.Global)
                                             for name in node.names}
            continue
        reason = _reason(work, cell_known)
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        module.notes.append(f"{label} left out: line {work.lineno}, {_first_line(text, work)!r}, {reason}"
                            + (f"; it also defines {', '.join(defined)}: move the work to a cell of its own"
                               if defined else ""))
        _note_left_out(module, tree, label, reason)
    module.left_out = {name: where for name, where in module.left_out.items() if name not in kept}
    module.source = "\n\n\n".join(parts) + "\n"
    return module


def _note_left_out(module: NotebookModule, cell: ast.Module | str, label: str, reason: str) -> None:
    """Remember the names the left-out cell ``cell`` (its tree, or its text) sets, where no earlier one did."""
    cell = _parse(cell) if isinstance(cell, str) else cell
    if cell is None:
        return
    definitions = _bound([node for node in cell.body if isinstance(node, (
        ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))])
    for name in sorted(_bound(cell.body)):
        module.left_out.setdefault(name, LeftOut(label, reason, name in definitions))


@contextmanager
def graded_folder(folder: Path) -> Iterator[tuple[Path, list[str], Callable[[str], str]]]:
    """The folder to grade, the notes on it, and how to tell a text about its ``mlp.py`` in the student's terms:
    ``folder`` itself when it has ``mlp.py`` (texts as they are), else a copy whose ``mlp.py`` is its notebook's
    module (texts name the notebook's cells, see ``NotebookModule.translate``)."""
    if (folder / "mlp.py").is_file():
        yield folder, [], _as_is
        return
    module = notebook_module(folder / "mlp.ipynb")
    with tempfile.TemporaryDirectory(prefix="mlp-notebook-") as scratch:
        copy = Path(scratch) / folder.name
        for relative, path in submission_files(folder):
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy / relative)
        (copy / "mlp.py").write_text(module.source, encoding="utf-8")
        yield copy, ["mlp.ipynb was graded as the module of its code cells that define things", *module.notes], \
            module.translate


def _as_is(text: str) -> str:
    """A plain mlp.py's texts already name the student's own lines."""
    return text
