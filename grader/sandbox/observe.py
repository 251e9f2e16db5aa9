"""The child side of an observed call: what ``train`` does on the full data, recorded as it happens.

The contract fixes how train works (CONTRACT §1): mini-batches through ``model.loss_and_grads``
and ``sgd_step`` with the given ``lr``. For the timed run the agent wraps exactly those two, for
the duration of the call (every call of either function, by any name), and keeps per step
(a ``loss_and_grads`` call no step follows is an evaluation, not a batch): the batch's size and a
fingerprint of each row (a projection of a few pixels the parent chose, so the parent can tell which
of its rows were used), the ``lr`` that reached ``sgd_step``, whether its gradients were the ones ``loss_and_grads`` had
just returned, their running sum over rows the parent drew (summing every coordinate of every
step would cost several per cent of the training; whole rows are copied in contiguous runs), and
the first batch's gradients and a print of all its rows' pixels (rows alike in the fingerprint's
pixels are told apart by it). Each ``on_epoch`` carries what was recorded since the last one. The
parent believes none of it: it checks the sum against the change of the weights it was handed and
recomputes the first batch's gradients itself. The recorder's cost is a row of
``bench.observation_seeds``. Copied into the child, so it imports only the standard library and NumPy.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

ROUTE = "__mlp_grader_observed_{}__"  # the global (per contract name) a routed function's calls go through
FOLDED_BATCHES = 64  # batches whose pixels wait to be projected together (64 x 64 x 32 float64: 1 MB)
WHOLE_PRINT_ROWS = 4096  # rows cast to float64 at a time for a whole-row print (an evaluation may pass all rows)


class Recorder:
    """What train did since the last ``take()``; installed by ``recording``."""

    def __init__(self, columns: np.ndarray, projection: np.ndarray, whole_projection: np.ndarray,
                 summed_rows: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
        self.columns, self.projection, self.whole_projection, self.shapes = columns, projection, whole_projection, \
            shapes
        # Only parameters whose shape is known (the weights the grader wrote into model.params) are summed;
        # None where every row is summed (the small parameters: no copy of them per step).
        self.summed_rows = {key: None if len(rows) == shapes[key][0] else rows
                            for key, rows in summed_rows.items() if len(shapes.get(key, ())) >= 1}
        self._reset()

    def _reset(self) -> None:
        self.sizes: list[int] = []
        self.fingerprints: list[np.ndarray] = []
        self._blocks: list[np.ndarray] = []  # each batch's fingerprint pixels, not yet projected
        self.lrs: list[float] = []
        self.foreign = 0  # steps whose gradients were not those loss_and_grads had just returned
        # The ``summed_rows`` of each key, in float64 from the start: a key no step carried sums to zero,
        # which is what the parent reads for a key that is absent.
        self.grad_sum = {key: np.zeros((self.shapes[key][0] if rows is None else len(rows),) + self.shapes[key][1:])
                         for key, rows in self.summed_rows.items()}
        self._sums = [(key, self.shapes[key], rows, self.grad_sum[key]) for key, rows in self.summed_rows.items()]
        self.first_grads: dict[str, np.ndarray] | None = None
        self.first_rows: np.ndarray | None = None
        self.first_whole: np.ndarray | None = None
        self._last: object = None
        # The last loss_and_grads call's (size, fingerprint pixels, whole-row prints until the epoch's first
        # step), a batch once a step follows it: a call whose gradients no step takes is an evaluation (the
        # loss of the whole training set, printed each epoch), not a batch.
        self._pending: tuple[int, np.ndarray, np.ndarray | None] | None = None

    def saw_batch(self, X: object) -> None:
        try:
            rows = np.asarray(X)
            block = rows.take(self.columns, axis=1)
            size = int(rows.shape[0])
            if block.ndim != 2 or block.dtype.kind not in "fiub":
                raise TypeError(block.dtype)
        except (IndexError, TypeError, ValueError):
            block, size = np.full((1, len(self.columns)), np.nan), -1
        whole = self._whole_prints(X) if self.first_grads is None else None  # a whole row: 25 fingerprints
        self._pending = (size, block, whole)
        self._last = None

    def _whole_prints(self, X: object) -> np.ndarray:
        """The print of every pixel of each row of ``X``, in chunks: the call may be an evaluation on all rows."""
        try:
            rows = np.asarray(X)
            return np.concatenate([np.asarray(rows[at:at + WHOLE_PRINT_ROWS], dtype=np.float64) @ self.whole_projection
                                   for at in range(0, max(len(rows), 1), WHOLE_PRINT_ROWS)])
        except (IndexError, TypeError, ValueError):
            return np.full(1, np.nan)

    def saw_grads(self, grads: object) -> None:
        self._last = grads

    def _fold(self) -> None:
        """Project the pending batches' pixels at once: per batch, the float64 cast and the product cost
        more than the copy of the pixels."""
        if self._blocks:
            self.fingerprints.append(self._project(np.concatenate(self._blocks)))
            self._blocks = []

    def _project(self, block: np.ndarray) -> np.ndarray:
        """The fingerprints of ``block`` (rows, FINGERPRINT_PIXELS), as the parent's ``observation.fingerprints``."""
        return block.astype(np.float64) @ self.projection

    def saw_step(self, grads: object, lr: object) -> None:
        try:
            self.lrs.append(float(lr))
        except (TypeError, ValueError):
            self.lrs.append(float("nan"))
        batch, self._pending = self._pending, None
        if batch is not None:
            self.sizes.append(batch[0])
            self._blocks.append(batch[1])
            if len(self._blocks) == FOLDED_BATCHES:
                self._fold()
        last = self._last
        if grads is not last and not (isinstance(grads, dict) and isinstance(last, dict) and grads.keys() == last.keys()
                                      and all(grads[k] is last[k] or np.array_equal(grads[k], last[k]) for k in grads)):
            self.foreign += 1
        if not isinstance(grads, dict):
            return
        if self.first_grads is None:
            self._first_step(grads, batch)
        # One lookup and one in-place add per parameter, cast on the way: this runs once per batch.
        for key, shape, rows, total in self._sums:
            try:
                value = grads[key]
                if getattr(value, "shape", None) != shape:  # a list, or a (1, M) bias gradient: the same numbers
                    value = np.reshape(value, shape)
                np.add(total, value if rows is None else value.take(rows, axis=0), out=total)
            except (AttributeError, KeyError, IndexError, TypeError, ValueError):
                continue

    def _first_step(self, grads: dict, batch: tuple[int, np.ndarray, np.ndarray | None] | None) -> None:
        """Keep the first batch's gradients whole and its rows' prints: the parent recomputes both. ``batch``
        is the step's own (None: a step with no loss_and_grads call before it)."""
        self.first_grads = {}
        missing = np.full(1, np.nan)
        self.first_rows = self._project(batch[1]) if batch is not None else missing
        self.first_whole = batch[2] if batch is not None and batch[2] is not None and batch[2].ndim == 1 else missing
        for key, shape, _, _ in self._sums:
            try:
                self.first_grads[key] = np.array(np.reshape(grads[key], shape), dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                continue

    def take(self) -> dict:
        """What was recorded since the last take (wire-format values only), and start afresh."""
        self._fold()
        taken = {"sizes": np.array(self.sizes, dtype=np.int64),
                 "fingerprints": np.concatenate(self.fingerprints) if self.fingerprints else np.zeros(0),
                 "lrs": np.array(self.lrs, dtype=np.float64), "foreign": self.foreign,
                 "grad_sum": {str(k): v.reshape(-1) for k, v in self.grad_sum.items()},
                 "first_grads": {str(k): v for k, v in (self.first_grads or {}).items()},
                 "first_rows": self.first_rows if self.first_rows is not None else np.zeros(0),
                 "first_whole": self.first_whole if self.first_whole is not None else np.zeros(0)}
        self._reset()
        return taken


def _submission_modules(module_dir: str) -> list[object]:
    """The modules loaded from the submission's folder (train may live beside mlp.py)."""
    inside = os.path.realpath(module_dir) + os.sep
    folders: dict[str, bool] = {}  # a module's folder -> inside the submission's (one realpath per folder)
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        folder = os.path.dirname(path)
        if folder not in folders:
            folders[folder] = (os.path.realpath(folder) + os.sep).startswith(inside)
        if folders[folder] and os.path.realpath(path).startswith(inside):
            found.append(module)
    return found


def _argument(function: object, position: int) -> Callable[[tuple, dict], object]:
    """What finds the argument at ``position`` of a call to ``function``: passed positionally, or by the
    name ``function`` gives that parameter (None where it has no such parameter or it was not passed)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # not callable, or no signature to read (a builtin)
        parameters = []
    named = len(parameters) > position and parameters[position].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    name = parameters[position].name if named else None

    def find(args: tuple, kwargs: dict) -> object:
        return args[position] if len(args) > position else kwargs.get(name) if name is not None else None
    return find


@functools.cache
def _trampoline(free: int, route: str) -> types.CodeType:
    """The code of a function that hands every call to its module's global ``route``, with ``free`` free
    variables (a function's code can only be replaced by code with as many as its closure has cells). Its
    frames carry this file's name, which the agent leaves out of the tracebacks it shows."""
    cells = [f"cell{number}" for number in range(free)]
    source = "def outer():\n" + "".join(f"    {cell} = None\n" for cell in cells) + \
        "    def routed(*args, **kwargs):\n" + (f"        ({', '.join(cells)},)\n" if cells else "") + \
        f"        return {route}(*args, **kwargs)\n    return routed\n"
    namespace: dict = {}
    exec(compile(source, __file__, "exec"), namespace)
    return namespace["outer"]().__code__


def own_copy(function: types.FunctionType) -> types.FunctionType:
    """A function running ``function``'s own code (defaults and closure too): what still runs it once its code is
    swapped for a trampoline."""
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


def _rerouted(function: object, route: Callable[[Callable], Callable], key: str) -> Callable[[], None] | None:
    """Send every call of the plain Python ``function``, whatever reaches it (its module's name, an alias, a
    default argument, a partial or a dict made at import), to ``route(own)``, where ``own`` runs the function's
    own code; returns what undoes it, or None where ``function`` is no plain function (or is routed already).
    ``key`` (the contract's name, an identifier) names the global: the function's own name may be none (a lambda)."""
    if type(function) is not types.FunctionType:
        return None
    name = ROUTE.format(key)
    if name in function.__globals__:
        return None
    code = function.__code__
    function.__globals__[name] = route(own_copy(function))
    try:
        function.__code__ = _trampoline(len(code.co_freevars), name)
    except ValueError:  # code that cannot stand in for this function's (CPython's own checks)
        function.__globals__.pop(name, None)
        return None

    def undo() -> None:
        function.__code__ = code
        function.__globals__.pop(name, None)
    return undo


def _class_function(instance: object, name: str) -> object:
    """What ``type(instance)`` resolves ``name`` to, as it sits in the class (a plain function for a method)."""
    for klass in type(instance).__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


@contextmanager
def recording(module: object, model: object, module_dir: str, columns: np.ndarray, projection: np.ndarray,
              whole_projection: np.ndarray, summed_rows: dict[str, np.ndarray]) -> Iterator[Recorder]:
    """Route every call of ``model.loss_and_grads`` on this model (through the model, ``self`` or the class) and
    every call of ``sgd_step`` (by any name) through the recorder while the block runs; where one is no plain
    function (an attribute of the instance, a callable object), the names it is reached by are wrapped."""
    params = getattr(model, "params", None)
    shapes = {key: value.shape for key, value in params.items() if isinstance(value, np.ndarray)} \
        if isinstance(params, dict) else {}
    recorder = Recorder(columns, projection, whole_projection, summed_rows, shapes)
    original_loss = getattr(model, "loss_and_grads", None)
    original_step = getattr(module, "sgd_step", None)
    own = "loss_and_grads" in getattr(model, "__dict__", {})
    method = None if own else _class_function(model, "loss_and_grads")

    # The submission's own parameter names: its train may pass the batch or the lr by keyword.
    grads_of, lr_of = _argument(original_step, 1), _argument(original_step, 2)

    def observed_loss(loss: Callable, through_class: bool) -> Callable:
        """``loss`` recorded: the class's function (self first: calls on another instance, a copy kept for
        validation, are not the timed run's) or the model's own attribute."""
        batch_of = _argument(loss, 1 if through_class else 0)

        def loss_and_grads(*args, **kwargs):
            if through_class and not (args and args[0] is model):
                return loss(*args, **kwargs)
            recorder.saw_batch(batch_of(args, kwargs))  # before the call: after it, the rows have left the caches
            result = loss(*args, **kwargs)
            recorder.saw_grads(result[1] if isinstance(result, tuple) and len(result) == 2 else None)
            return result
        return loss_and_grads

    def observed_step(step: Callable) -> Callable:
        def sgd_step(*args, **kwargs):
            recorder.saw_step(grads_of(args, kwargs), lr_of(args, kwargs))
            return step(*args, **kwargs)
        return sgd_step

    patched, undos, wrapped = [], [], False
    try:  # set up inside: whatever was routed or wrapped before a failure is put back too
        undos.append(_rerouted(original_step, observed_step, "sgd_step"))
        if undos[-1] is None and callable(original_step):  # a callable object: wrapped where the modules name it
            for owner in _submission_modules(module_dir):
                if getattr(owner, "sgd_step", None) is original_step:
                    owner.sgd_step = observed_step(original_step)
                    patched.append(owner)
        undos.append(_rerouted(method, lambda function: observed_loss(function, through_class=True),
                               "loss_and_grads"))
        if undos[-1] is None and callable(original_loss):
            try:
                model.loss_and_grads = observed_loss(original_loss, through_class=False)
                wrapped = True
            except (AttributeError, TypeError):
                pass  # a model that takes no attributes (__slots__): its batches go unrecorded; the parent says so
        yield recorder
    finally:
        for undo in undos:
            if undo is not None:
                undo()
        for owner in patched:
            owner.sgd_step = original_step
        try:
            if wrapped and own:
                model.loss_and_grads = original_loss
            elif wrapped:
                del model.loss_and_grads
        except (AttributeError, TypeError):
            pass
