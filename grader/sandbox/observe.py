"""The child side of an observed call: what ``train`` does on the full data, recorded as it happens.

The contract fixes how train works (CONTRACT §1): mini-batches through ``model.loss_and_grads``
and ``sgd_step`` with the given ``lr``. For the timed run the agent wraps exactly those two, for
the duration of the call, and keeps per step: the batch's size and a fingerprint of each row (a
projection of a few pixels the parent chose, so the parent can tell which of its rows were used),
the ``lr`` that reached ``sgd_step``, whether its gradients were the ones ``loss_and_grads`` had
just returned, their running sum at coordinates the parent drew (summing every coordinate of every
step would cost several per cent of the training), and the first batch's gradients. Each ``on_epoch`` carries what
was recorded since the last one. The parent believes none of it: it checks the sum against the
change of the weights it was handed and recomputes the first batch's gradients itself.
Copied into the child, so it imports only the standard library and NumPy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class Recorder:
    """What train did since the last ``take()``; installed by ``recording``."""

    def __init__(self, columns: np.ndarray, projection: np.ndarray, coordinates: dict[str, np.ndarray]) -> None:
        self.columns, self.projection, self.coordinates = columns, projection, coordinates
        self._reset()

    def _reset(self) -> None:
        self.sizes: list[int] = []
        self.fingerprints: list[np.ndarray] = []
        self.lrs: list[float] = []
        self.foreign = 0  # steps whose gradients were not those loss_and_grads had just returned
        self.grad_sum: dict[str, np.ndarray] = {}  # at ``coordinates`` (flat indices) of each key
        self.first_grads: dict[str, np.ndarray] | None = None
        self.first_rows: np.ndarray | None = None
        self._last: object = None

    def saw_batch(self, X: object, grads: object) -> None:
        try:
            rows = np.asarray(X)
            fingerprint = rows[:, self.columns].astype(np.float64) @ self.projection
            size = int(rows.shape[0])
        except (IndexError, TypeError, ValueError):
            fingerprint, size = np.full(1, np.nan), -1
        self.sizes.append(size)
        self.fingerprints.append(fingerprint)
        self._last = grads

    def saw_step(self, grads: object, lr: object) -> None:
        try:
            self.lrs.append(float(lr))
        except (TypeError, ValueError):
            self.lrs.append(float("nan"))
        last = self._last
        if not (grads is last or (isinstance(grads, dict) and isinstance(last, dict) and grads.keys() == last.keys()
                                  and all(grads[k] is last[k] or np.array_equal(grads[k], last[k]) for k in grads))):
            self.foreign += 1
        if not isinstance(grads, dict):
            return
        first = self.first_grads is None
        if first:
            self.first_grads = {}
            self.first_rows = self.fingerprints[-1] if self.fingerprints else np.full(1, np.nan)
        for key, where in self.coordinates.items():
            try:
                value = grads[key]
                picked = np.take(value, where).astype(np.float64)
                if first:
                    self.first_grads[key] = np.array(value, dtype=np.float64)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if key in self.grad_sum:
                self.grad_sum[key] += picked
            else:
                self.grad_sum[key] = picked

    def take(self) -> dict:
        """What was recorded since the last take (wire-format values only), and start afresh."""
        taken = {"sizes": np.array(self.sizes, dtype=np.int64),
                 "fingerprints": np.concatenate(self.fingerprints) if self.fingerprints else np.zeros(0),
                 "lrs": np.array(self.lrs, dtype=np.float64), "foreign": self.foreign,
                 "grad_sum": {str(k): v for k, v in self.grad_sum.items()},
                 "first_grads": {str(k): v for k, v in (self.first_grads or {}).items()},
                 "first_rows": self.first_rows if self.first_rows is not None else np.zeros(0)}
        self._reset()
        return taken


def _submission_modules(module_dir: str) -> list[object]:
    """The modules loaded from the submission's folder (train may live beside mlp.py)."""
    inside = os.path.realpath(module_dir) + os.sep
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.realpath(path).startswith(inside):
            found.append(module)
    return found


@contextmanager
def recording(module: object, model: object, module_dir: str, columns: np.ndarray, projection: np.ndarray,
              coordinates: dict[str, np.ndarray]) -> Iterator[Recorder]:
    """Wrap ``model.loss_and_grads`` and every submission module's ``sgd_step`` while the block runs."""
    recorder = Recorder(columns, projection, coordinates)
    original_loss = getattr(model, "loss_and_grads", None)
    original_step = getattr(module, "sgd_step", None)

    def loss_and_grads(X, y, *args, **kwargs):
        result = original_loss(X, y, *args, **kwargs)
        grads = result[1] if isinstance(result, tuple) and len(result) == 2 else None
        recorder.saw_batch(X, grads)
        return result

    def sgd_step(params, grads, lr, *args, **kwargs):
        recorder.saw_step(grads, lr)
        return original_step(params, grads, lr, *args, **kwargs)

    patched, own = [], "loss_and_grads" in getattr(model, "__dict__", {})
    if callable(original_step):
        for owner in _submission_modules(module_dir):
            if getattr(owner, "sgd_step", None) is original_step:
                owner.sgd_step = sgd_step
                patched.append(owner)
    try:
        if callable(original_loss):
            model.loss_and_grads = loss_and_grads
    except (AttributeError, TypeError):
        pass  # a model that takes no attributes (__slots__): its batches go unrecorded, and the parent says so
    try:
        yield recorder
    finally:
        for owner in patched:
            owner.sgd_step = original_step
        try:
            if own:
                model.loss_and_grads = original_loss
            elif "loss_and_grads" in getattr(model, "__dict__", {}):
                del model.loss_and_grads
        except (AttributeError, TypeError):
            pass
