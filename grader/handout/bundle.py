"""The pieces every handout shares: the instructor's tree, the grader package, the leak check.

A handout is built from the instructor's repository (``reference/mlp.py``, ``grader/``,
``pyproject.toml``). It ships the grader and the repository's own ``pyproject.toml`` (one list
of dependencies for every install), and is refused if any line of the solution blocks of
``reference/mlp.py`` appears in any of its text files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.assign.template import SolutionBlockError, solution_lines
from grader.errors import GraderError

FILES = Path(__file__).resolve().parent / "files"
_NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


class HandoutError(GraderError):
    """A handout cannot be built; the message is one line naming the problem."""


@dataclass(frozen=True)
class InstructorTree:
    """The instructor's repository a handout is built from."""

    root: Path

    @property
    def reference(self) -> Path:
        return self.root / "reference" / "mlp.py"

    def check(self) -> InstructorTree:
        for needed in (self.reference, self.root / "grader" / "__init__.py", self.root / "pyproject.toml"):
            if not needed.is_file():
                raise HandoutError(f"{self.root}: not the grader's repository (no {needed.relative_to(self.root)}); "
                                   "run from its root or pass --source")
        return self

    def secret(self) -> set[str]:
        """The solution's own lines (stripped), which no handout may contain."""
        try:
            return solution_lines(self.reference.read_text(encoding="utf-8"))
        except SolutionBlockError as exc:
            raise HandoutError(f"{self.reference}: {exc}") from None


def copy_grader(tree: InstructorTree, target: Path) -> None:
    """The grader package and the pyproject.toml that installs it, into ``target``."""
    shutil.copytree(tree.root / "grader", target / "grader", ignore=_NOT_SHIPPED)
    shutil.copyfile(tree.root / "pyproject.toml", target / "pyproject.toml")


def leaks(folder: Path, secret: set[str]) -> list[str]:
    """``path: line`` for every line of ``secret`` found as a whole (stripped) line under ``folder``."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (golden.npz): numbers, not code
        lines = text.splitlines() + (_notebook_lines(text) if path.suffix == ".ipynb" else [])
        found += [f"{path.relative_to(folder)}: {line.strip()}" for line in lines if line.strip() in secret]
    return found


def _notebook_lines(text: str) -> list[str]:
    """The lines of a notebook's cells (in its JSON they are quoted strings, so never whole lines)."""
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return []
    sources = ["".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else str(cell.get("source", ""))
               for cell in cells if isinstance(cell, dict)]
    return [line for source in sources for line in source.splitlines()]


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` that becomes ``out`` only if the block succeeds (nothing half-built)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HandoutError(f"{out}: already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield stage
        if out.exists():
            out.rmdir()
        stage.rename(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def refuse_leaks(folder: Path, tree: InstructorTree) -> None:
    found = leaks(folder, tree.secret())
    if found:
        raise HandoutError(f"refused: {len(found)} solution line(s) would ship, first {found[0]!r}")
