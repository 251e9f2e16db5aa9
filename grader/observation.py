"""The timed run observed, not inferred: what ``train`` did with the full data, checked against the contract.

The child records each epoch's batches and steps (``sandbox/observe.py``); this module, in the
parent, reads that record as untrusted data and checks it against what the parent knows itself:
- the rows: each batch's row fingerprints must be rows of the X the parent sent; each epoch uses
  every row at most once and all but at most one partial batch of them, in a fresh shuffle (not
  the data order, not the previous epoch's order);
- the steps: batches of ``batch_size`` (one shorter last batch allowed), each step with the given
  ``lr`` and the gradients ``loss_and_grads`` had just returned, ``epochs`` epochs and no steps
  after the last one;
- the weights: over an epoch they moved by exactly ``-lr`` times the sum of the recorded gradients
  at coordinates drawn for the grade (``weights_moved_as_recorded``), and the first batch's
  gradients are what the submission's own ``loss_and_grads`` gives at the epoch's starting weights
  (recomputed by the check, from ``Verdict.first_batches``), so a forged record has to be as
  consistent as real training. The first batch's rows are named by a print of all their pixels
  too: a few rows in 60,000 agree on the fingerprint's pixels and differ elsewhere, and one of them
  standing in for another would change that batch's gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

FINGERPRINT_PIXELS = 32  # pixels per row in a fingerprint, drawn from the most varying ones
LR_RTOL = 1e-6  # an lr given as a float and used as float32 is the same lr
# The weights' change over an epoch against -lr x the recorded gradients: float32 training rounds
# each of ~940 steps, far below this; any other update rule (momentum, decay, clipping) is far above.
MOVE_RTOL, MOVE_ATOL_OF_WEIGHTS = 1e-3, 1e-5
FIRST_BATCH_RTOL = 1e-3
FIRST_BATCHES_RECOMPUTED = 3  # epochs whose first batch the check recomputes (a call each)
# Per parameter, about this many coordinates where the child sums every step's gradient: whole rows
# (along the first axis), so that it copies a few contiguous runs per step, never scattered elements.
SUMMED_COORDINATES = 1024
# |correlation| of batch position with row number above which an epoch is "in the data order" (or
# reversed): a shuffle of 60,000 rows stays within 0.02; rows alike in the fingerprint map to one of
# them, so data order reads as slightly below 1, never as exactly sorted. Two rows always correlate
# fully, so an epoch needs three to be judged.
ORDER_CORRELATION = 0.5


@dataclass(frozen=True)
class RowIndex:
    """What the record is read against: the parent's fingerprints of the rows it sends (which row, or
    group of identical rows, a print is) and the coordinates of each parameter the child sums."""

    columns: np.ndarray  # (FINGERPRINT_PIXELS,) int64 pixel indices
    projection: np.ndarray  # (FINGERPRINT_PIXELS,) float64
    whole_projection: np.ndarray  # (D,) float64: the whole-row print of each epoch's first batch
    X: np.ndarray  # (N, D) the rows sent (not a copy): the whole prints of rows alike in the fingerprint
    summed_rows: dict[str, np.ndarray]  # parameter -> sorted indices along its first axis (what the child sums)
    coordinates: dict[str, np.ndarray]  # parameter -> the flat indices of those rows, sorted
    order: np.ndarray  # (N,) the rows in the order of their fingerprints
    sorted_prints: np.ndarray  # (N,) ascending
    group_of_sorted: np.ndarray  # (N,) group number of each sorted print (rows alike in the pixels share one)
    group_sizes: np.ndarray  # (groups,)

    @property
    def rows(self) -> int:
        return len(self.order)

    @classmethod
    def of(cls, X: np.ndarray, rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]) -> RowIndex:
        """Fingerprints of ``X (N, D)`` and coordinates of parameters of ``shapes``, drawn from ``rng``."""
        varying = np.argsort(X[: min(len(X), 5000)].var(axis=0))[-4 * FINGERPRINT_PIXELS:]
        columns = np.sort(rng.choice(varying, size=FINGERPRINT_PIXELS, replace=False)).astype(np.int64)
        projection = rng.uniform(0.5, 1.5, size=FINGERPRINT_PIXELS)
        summed_rows, coordinates = {}, {}
        for key, shape in shapes.items():
            length, width = (shape[0], int(np.prod(shape[1:]))) if shape else (1, 1)
            count = min(length, max(1, SUMMED_COORDINATES // width))
            summed_rows[key] = np.sort(rng.choice(length, size=count, replace=False)).astype(np.int64)
            coordinates[key] = (summed_rows[key][:, None] * width + np.arange(width)).ravel()
        prints = fingerprints(X, columns, projection)
        order = np.argsort(prints, kind="stable")
        ordered = prints[order]
        starts = np.concatenate([[True], np.diff(ordered) > _tolerance(ordered[1:])])
        groups = np.cumsum(starts) - 1
        # Drawn last, so that every draw above is what it was before the whole print existed.
        whole_projection = rng.uniform(0.5, 1.5, size=X.shape[1])
        return cls(columns, projection, whole_projection, X, summed_rows, coordinates, order, ordered, groups,
                   np.bincount(groups))

    def observed(self) -> dict[str, object]:
        """What the child's recorder is given (``sandbox.observe.recording``'s keyword arguments)."""
        return {"columns": self.columns, "projection": self.projection, "whole_projection": self.whole_projection,
                "summed_rows": self.summed_rows}

    def _nearest(self, prints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in the sorted prints, whether it is the same print) for each of ``prints``."""
        at = np.clip(np.searchsorted(self.sorted_prints, prints), 1, len(self.sorted_prints) - 1)
        below, above = self.sorted_prints[at - 1], self.sorted_prints[at]
        nearest = np.where(np.abs(prints - below) <= np.abs(above - prints), at - 1, at)
        return nearest, np.isfinite(prints) & (np.abs(self.sorted_prints[nearest] - prints) <= _tolerance(prints))

    def groups(self, prints: np.ndarray) -> np.ndarray:
        """The row group of each fingerprint, -1 where it is no row the parent sent."""
        nearest, found = self._nearest(prints)
        return np.where(found, self.group_of_sorted[nearest], -1)

    def row_numbers(self, prints: np.ndarray) -> np.ndarray | None:
        """Row indices with these fingerprints (any one of identical rows); None if one is no row sent."""
        nearest, found = self._nearest(prints)
        return self.order[nearest] if np.all(found) else None

    def first_rows(self, prints: np.ndarray, whole: np.ndarray) -> np.ndarray | None:
        """The row indices of a batch with these fingerprints and whole-row prints: among rows alike in the
        fingerprint's pixels, the one whose print of every pixel is ``whole``; None if one is no row sent."""
        nearest, found = self._nearest(prints)
        if len(whole) != len(prints) or not np.all(found):
            return None
        rows = self.order[nearest]
        groups = self.group_of_sorted[nearest]
        for at in np.nonzero(self.group_sizes[groups] > 1)[0]:
            # group_of_sorted ascends: a group's members sit in one run of the sorted prints
            run = np.searchsorted(self.group_of_sorted, groups[at], side="left"), \
                np.searchsorted(self.group_of_sorted, groups[at], side="right")
            members = self.order[slice(*run)]
            rows[at] = members[np.argmax(np.abs(self.whole_prints(members) - whole[at]) <= _tolerance(whole[at]))]
        return rows if np.all(np.abs(self.whole_prints(rows) - whole) <= _tolerance(whole)) else None

    def whole_prints(self, rows: np.ndarray) -> np.ndarray:
        """The print of every pixel of ``rows`` of X, as the child computes it for a first batch."""
        return self.X[rows].astype(np.float64) @ self.whole_projection


def fingerprints(X: np.ndarray, columns: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """One float64 per row of ``X``: the projection of its ``columns`` (what the child computes per batch)."""
    return np.dot(np.asarray(X).take(columns, axis=1), projection)


def _tolerance(prints: np.ndarray) -> np.ndarray:
    return 1e-9 * (1.0 + np.abs(prints))


@dataclass
class EpochRecord:
    """One epoch as the child recorded it, after the parent's type checks."""

    sizes: np.ndarray  # (steps,) batch sizes
    prints: np.ndarray  # (rows,) fingerprints in batch order
    lrs: np.ndarray  # (steps,) the lr each sgd_step got
    foreign: int
    grad_sum: dict[str, np.ndarray]
    first_grads: dict[str, np.ndarray]
    first_prints: np.ndarray  # the fingerprints of the first batch's rows
    first_whole: np.ndarray  # and their whole-row prints

    @property
    def steps(self) -> int:
        return len(self.lrs)


def read_record(value: object, shapes: dict[str, tuple[int, ...]], index: RowIndex) -> EpochRecord | None:
    """An ``EpochRecord`` from what the child sent, or None where it is not of the recorder's form."""
    if not isinstance(value, dict):
        return None

    def array(name: str, kind: str) -> np.ndarray | None:
        item = value.get(name)
        # A copy: a view would keep the whole frame it came in (the epoch's weights too) for the rest of the run.
        return item.copy() if isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype.kind == kind else None

    def arrays(name: str, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
        item = value.get(name)
        if not isinstance(item, dict) or not all(isinstance(v, np.ndarray) for v in item.values()):
            return None
        return {k: v.astype(np.float64) for k, v in item.items() if k in expected and v.shape == expected[k]}

    summed = {key: where.shape for key, where in index.coordinates.items()}
    sizes, prints, lrs = array("sizes", "i"), array("fingerprints", "f"), array("lrs", "f")
    grad_sum, first_grads = arrays("grad_sum", summed), arrays("first_grads", shapes)
    first_prints, first_whole = array("first_rows", "f"), array("first_whole", "f")
    foreign = value.get("foreign")
    if any(part is None for part in (sizes, prints, lrs, grad_sum, first_grads, first_prints, first_whole)) or \
            type(foreign) is not int:
        return None
    return EpochRecord(sizes, prints, lrs, foreign, grad_sum, first_grads, first_prints, first_whole)


@dataclass
class Finding:
    """One deviation from the contract, in the words the student reads."""

    epoch: int  # 1-based; 0: the run as a whole
    text: str


@dataclass
class Observation:
    """The whole observed run: one record per on_epoch, and what came after the last one."""

    epochs: list[EpochRecord | None] = field(default_factory=list)
    after_last: EpochRecord | None = None


def rows_findings(epoch: int, record: EpochRecord, index: RowIndex, batch_size: int,
                  previous: np.ndarray | None) -> tuple[list[Finding], np.ndarray | None]:
    """The rows and batch sizes of one epoch; returns the findings and this epoch's group order."""
    findings = []
    groups = index.groups(record.prints)
    if np.any(groups < 0) or record.sizes.sum() != len(record.prints):
        findings.append(Finding(epoch, f"epoch {epoch} trained on rows that are not rows of the X given to train: "
                                       "take each batch from X as it is (X[batch], y[batch])"))
        return findings, None
    used = np.bincount(groups, minlength=len(index.group_sizes))
    if np.any(used > index.group_sizes):
        findings.append(Finding(epoch, f"epoch {epoch} used some rows more than once: each epoch goes through a "
                                       "permutation of the rows, every row once"))
    if len(groups) < index.rows - batch_size + 1:
        findings.append(Finding(epoch, f"epoch {epoch} used {len(groups)} of the {index.rows} rows: each epoch "
                                       "goes through all of them (at most a last partial batch may be left out)"))
    sizes = record.sizes
    if np.any(sizes[:-1] != batch_size) or (len(sizes) and not 0 < sizes[-1] <= batch_size):
        values, counts = np.unique(sizes, return_counts=True)
        seen = ", ".join(str(v) for v in values[np.argsort(-counts, kind="stable")][:4])
        # Sizes one apart around batch_size: the rows were spread evenly over the batches (np.array_split).
        cause = "the rows were spread evenly over the batches (np.array_split?): take batch_size rows per batch" \
            if values.max() - values.min() <= 1 and values.min() <= batch_size <= values.max() else \
            "is batch_size used?"
        findings.append(Finding(epoch, f"epoch {epoch} ran batches of {seen} rows, not batch_size={batch_size} "
                                       f"(only the last batch may be shorter): {cause}"))
    rows = index.row_numbers(record.prints)
    if len(groups) > 2 and rows is not None and \
            abs(np.corrcoef(np.arange(len(rows)), rows)[0, 1]) > ORDER_CORRELATION:
        findings.append(Finding(epoch, f"epoch {epoch} took the rows in the data order: draw a fresh permutation "
                                       "each epoch (rng.permutation(n))"))
    elif previous is not None and len(previous) == len(groups) and np.array_equal(previous, groups):
        findings.append(Finding(epoch, f"epoch {epoch} used the same order as epoch {epoch - 1}: create one "
                                       "generator before the loop and draw a fresh permutation each epoch"))
    return findings, groups


def step_findings(epoch: int, record: EpochRecord, lr: float) -> list[Finding]:
    findings = []
    if record.steps == 0 or len(record.sizes) == 0:
        return [Finding(epoch, f"nothing was observed in epoch {epoch}: train must run its batches through "
                               "model.loss_and_grads and one sgd_step per batch, which the grader "
                               "watches")]
    if record.steps != len(record.sizes):
        findings.append(Finding(epoch, f"epoch {epoch} took {record.steps} sgd_step calls for {len(record.sizes)} "
                                       "batches from loss_and_grads: one step per batch"))
    wrong = record.lrs[~np.isclose(record.lrs, lr, rtol=LR_RTOL, atol=0)]
    if len(wrong):
        findings.append(Finding(epoch, f"lr was {wrong[0]:.4g} in epoch {epoch}: train keeps lr={lr:g} constant "
                                       "(no decay or schedule)"))
    if record.foreign:
        findings.append(Finding(epoch, f"{record.foreign} steps of epoch {epoch} gave sgd_step gradients other than "
                                       "those loss_and_grads had just returned for that batch"))
    return findings


def weights_moved_as_recorded(epoch: int, record: EpochRecord, before: dict[str, np.ndarray],
                              after: dict[str, np.ndarray], lr: float, index: RowIndex) -> list[Finding]:
    """SGD's bookkeeping: over the epoch, each parameter moved by -lr x the sum of its recorded gradients
    (at the coordinates the child summed)."""
    for key in sorted(before):
        where = index.coordinates[key]
        moved = np.take(after[key], where) - np.take(before[key], where)
        expected = -lr * record.grad_sum.get(key, np.zeros_like(moved))
        allowed = MOVE_RTOL * np.linalg.norm(expected) + MOVE_ATOL_OF_WEIGHTS * np.linalg.norm(np.take(before[key],
                                                                                                    where))
        if not np.linalg.norm(moved - expected) <= allowed:
            return [Finding(epoch, f"in epoch {epoch} model.params['{key}'] did not move by -lr times the gradients "
                                   "that reached sgd_step: the weights handed over are not the ones those steps "
                                   "produce (another update rule, or weights set from elsewhere)")]
    return []


@dataclass
class Verdict:
    findings: list[Finding]
    first_batches: list[tuple[int, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]]
    # (epoch, weights at its start, row indices of its first batch, recorded gradients) to recompute


def judge(observation: Observation, index: RowIndex, handed: list[dict[str, np.ndarray]],
          start: dict[str, np.ndarray], epochs: int, batch_size: int, lr: float, finished: bool) -> Verdict:
    """Every contract check that needs only the record and the weights; ``handed`` are the weights of each
    on_epoch (float64, the start's keys and shapes). A run stopped early (``finished`` false: over its
    budget) is judged on the epochs it handed over; its length is the time check's to report."""
    findings: list[Finding] = []
    first_batches = []
    shapes = {key: value.shape for key, value in start.items()}
    if not observation.epochs:
        return Verdict([Finding(0, "on_epoch was never called, so the grader could not observe train's epochs")], [])
    if finished and len(observation.epochs) != epochs:
        findings.append(Finding(0, f"train ran {len(observation.epochs)} epochs (on_epoch calls), not epochs={epochs}"))
    previous = None
    for number, record in enumerate(observation.epochs, 1):
        if record is None:
            findings.append(Finding(number, f"the record of epoch {number} is not of the grader's form"))
            continue
        more = step_findings(number, record, lr)
        if more and more[0].text.startswith("nothing was observed"):
            findings += more
            break
        rows, previous = rows_findings(number, record, index, batch_size, previous)
        findings += more + rows
        # The weights the epoch began with: none once an on_epoch handed over no usable weights (or past
        # the epochs the parent keeps).
        before = start if number == 1 else handed[number - 2] if number - 2 < len(handed) else None
        if before is not None and number <= len(handed):
            findings += weights_moved_as_recorded(number, record, before, handed[number - 1], lr, index)
        first = index.first_rows(record.first_prints, record.first_whole) if len(record.first_prints) else None
        if first is None and len(record.first_prints) and not rows:
            findings.append(Finding(number, f"the first batch of epoch {number} was recorded with rows that are not "
                                           "rows of the X given to train: take each batch from X as it is "
                                           "(X[batch], y[batch])"))
        if before is not None and first is not None and set(record.first_grads) == set(shapes):
            first_batches.append((number, before, first, record.first_grads))
    extra = observation.after_last
    if finished and extra is not None and (extra.steps or len(extra.sizes)):
        findings.append(Finding(0, f"train took {max(extra.steps, len(extra.sizes))} more steps after its last "
                                   "on_epoch: it ran more than the given epochs"))
    return Verdict(findings, first_batches)


def first_batch_findings(first_batches: list[tuple[int, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]],
                         recompute: Callable[[dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]]
                         ) -> list[Finding]:
    """The first batches of ``Verdict.first_batches`` (of the first few epochs) against ``recompute(weights,
    rows)``: the submission's own ``loss_and_grads`` gradients (float64, the weights' keys) for those rows
    of X at the weights the epoch began with."""
    for epoch, before, rows, recorded in first_batches[:FIRST_BATCHES_RECOMPUTED]:
        own = recompute(before, rows)
        for key in sorted(before):
            if not np.linalg.norm(own[key] - recorded[key]) <= FIRST_BATCH_RTOL * np.linalg.norm(own[key]) + 1e-12:
                return [Finding(epoch, f"the gradients that reached sgd_step in the first batch of epoch {epoch} are "
                                       "not what loss_and_grads gives for that batch at the weights the epoch "
                                       "started from")]
    return []
