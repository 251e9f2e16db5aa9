"""Imports that do not compute never cost a point: plotting, progress, display and data-loading
libraries import in the child, for real where they load, else as inert stand-ins (CONTRACT §1).

Students' modules import matplotlib, tqdm, IPython, pandas or keras at the top although the graded
functions never use them. Before ``import mlp`` the agent tries each such library the submission's
sources name; one that is missing or cannot load under the sandbox becomes a stand-in module:
- plotting and display (``NO_OP``): every call does nothing and returns another stand-in, so
  ``plt.plot(losses)`` or ``clear_output()`` inside ``train`` is harmless;
- progress bars (``PROGRESS``): ``tqdm(iterable)`` passes the iterable through unchanged;
- data loading and other libraries (``FAIL_ON_USE``): the import succeeds, a call fails that one
  call with a one-line message naming the module;
- deep-learning frameworks (``FRAMEWORKS``) are always stood in, installed or not: the graded
  functions must compute with NumPy, and a grade must not depend on what the machine has.
Copied into the child, so it imports only the standard library.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Iterable, Iterator

NO_OP = ("matplotlib", "seaborn", "plotly", "IPython", "ipywidgets", "google.colab")
PROGRESS = ("tqdm",)
FAIL_ON_USE = ("pandas", "sklearn", "PIL", "requests", "cv2", "tensorflow_datasets", "torchvision", "mnist",
               "emnist", "h5py", "wandb")
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "jaxlib", "flax")
KNOWN = NO_OP + PROGRESS + FAIL_ON_USE + FRAMEWORKS


def _key(fullname: str) -> str | None:
    """The listed library ``fullname`` belongs to (``matplotlib`` for ``matplotlib.pyplot``), or None.

    A listed dotted name also covers its parents (``google`` for ``google.colab``).
    """
    for key in KNOWN:
        if fullname == key or fullname.startswith(key + ".") or key.startswith(fullname + "."):
            return key
    return None


def note(key: str) -> str:
    """The report's one line for a library that was stood in."""
    if key in NO_OP:
        return f"{key} is not available to graded code; its calls (plotting, display) did nothing"
    if key in PROGRESS:
        return f"{key} is not available to graded code; its progress bars passed each loop through unchanged"
    if key in FRAMEWORKS:
        return (f"{key} is not used for grading: the graded functions must compute with NumPy, and a call "
                f"of {key} fails with a message naming it")
    return f"{key} is not available to graded code; a graded function that calls it fails with a message naming it"


class ModuleNotAvailable(ImportError):
    """A stand-in was used where only the real library would do."""


class Inert:
    """Whatever a stand-in module hands out: attributes, items and calls give more of the same."""

    def __init__(self, name: str, key: str) -> None:
        self._name, self._key = name, key

    def __getattr__(self, name: str) -> Inert:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Inert(f"{self._name}.{name}", self._key)

    def __call__(self, *args: object, **kwargs: object) -> object:
        if self._key in FRAMEWORKS:
            raise ModuleNotAvailable(f"{self._key} is not available to graded code: compute the graded "
                                     f"functions with NumPy ({self._name} was called)")
        if self._key not in NO_OP + PROGRESS:
            raise ModuleNotAvailable(f"{self._key} is not available to graded code ({self._name} was called): "
                                     "graded functions may use NumPy only; load and plot data outside them")
        if self._name.endswith(".subplots"):  # fig, ax = plt.subplots(...)
            return Inert(f"{self._name}()[0]", self._key), Inert(f"{self._name}()[1]", self._key)
        return Inert(f"{self._name}()", self._key)

    def __getitem__(self, item: object) -> Inert:
        return Inert(f"{self._name}[]", self._key)

    def __setitem__(self, item: object, value: object) -> None:
        return None

    def __iter__(self) -> Iterator:
        return iter(())

    def __enter__(self) -> Inert:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    # Real libraries probe for optional ones (``if not get_ipython(): ...``,
    # ``IPython.version_info[:2] >= (8, 24)``): a stand-in answers "not there", never raises.
    def __bool__(self) -> bool:
        return False

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __repr__(self) -> str:
        return f"<stand-in {self._name}>"


class Progress:
    """tqdm's stand-in: iterates its iterable unchanged; its methods do nothing."""

    def __init__(self, iterable: Iterable | None = None, *args: object, **kwargs: object) -> None:
        self.iterable, self.total, self.n = iterable, kwargs.get("total"), 0

    def __iter__(self) -> Iterator:
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self) -> int:
        return len(self.iterable) if self.iterable is not None else int(self.total or 0)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __getattr__(self, name: str) -> object:  # update, set_description, set_postfix, close, refresh, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None

    @staticmethod
    def write(text: object, *args: object, **kwargs: object) -> None:
        print(text)


class StandInModule(types.ModuleType):
    def __init__(self, name: str, key: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package: its submodules are stand-ins too
        self._key = key
        if key in PROGRESS:
            self.tqdm = self.tqdm_notebook = Progress
            self.trange = lambda *args, **kwargs: Progress(range(*args), **kwargs)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Inert(f"{self.__name__}.{name}", self._key)

    def __bool__(self) -> bool:
        # Real libraries probe optional ones with ``if sys.modules.get("IPython"):``: not there.
        return False


class _Loader(importlib.abc.Loader):
    def __init__(self, key: str) -> None:
        self.key = key

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return StandInModule(spec.name, self.key)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class Finder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: hands out stand-ins for the listed libraries that cannot be had."""

    def __init__(self) -> None:
        self.real: set[str] = set()  # listed libraries that imported for real
        self.stood_in: list[str] = []  # in the order they were first stood in

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        key = _key(fullname)
        if key is None or key in self.real:
            return None
        if key not in FRAMEWORKS and key not in self.stood_in and self._really_there(fullname, path):
            return None
        if key not in self.stood_in:
            self.stood_in.append(key)
        return importlib.machinery.ModuleSpec(fullname, _Loader(key), is_package=True)

    @staticmethod
    def _really_there(fullname: str, path: object) -> bool:
        """Another finder has ``fullname`` (a library not tried beforehand: it is imported for real)."""
        parent = fullname.rpartition(".")[0]
        if parent and isinstance(sys.modules.get(parent), StandInModule):
            return False
        try:
            return importlib.machinery.PathFinder.find_spec(fullname, path) is not None
        except (ImportError, ValueError):
            return False

    def try_real(self, key: str) -> None:
        """Import ``key`` for real now; if it will not load here, forget every trace and stand it in."""
        if key in self.real or key in self.stood_in or key in FRAMEWORKS:
            return
        sys.meta_path.remove(self)
        try:
            importlib.import_module(key)
            self.real.add(key)
            if key == "matplotlib":
                _keep_agg()
        except Exception:  # noqa: BLE001  (missing, or an extension that cannot load in the sandbox: stand in)
            for name in [name for name in sys.modules if name == key or name.startswith(key + ".")]:
                del sys.modules[name]
            self.stood_in.append(key)
        finally:
            sys.meta_path.insert(0, self)


def _keep_agg() -> None:
    """Plotting renders off screen in the child: ``matplotlib.use("TkAgg")`` and the like keep Agg."""
    import matplotlib  # noqa: PLC0415  (only once it imported for real)

    matplotlib.use("Agg")
    matplotlib.use = lambda *args, **kwargs: None


def imported_libraries(folder: str) -> list[str]:
    """The listed libraries the ``.py`` files below ``folder`` import anywhere (module level or in a function)."""
    found: list[str] = []
    for directory, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as stream:
                    tree = ast.parse(stream.read())
            except (OSError, SyntaxError, ValueError, RecursionError):
                continue  # importing it reports the error, as it would without stand-ins
            for node in ast.walk(tree):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
                for module in names:
                    key = _key(module)
                    if key is not None and key not in found:
                        found.append(key)
    return found


def install(folder: str) -> Finder:
    """Put the finder first and try, for real, each listed library the submission in ``folder`` imports."""
    finder = Finder()
    sys.meta_path.insert(0, finder)
    for key in imported_libraries(folder):
        finder.try_real(key)
    return finder
