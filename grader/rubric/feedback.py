"""Feedback that teaches: what was checked, expected vs got, and the likely mistake.

Checks raise ``CheckFailure``; its text is what the student reads. Arrays are shown in full
when small and summarised when big. ``diagnose`` names a common mistake from how the student's
value relates to the expected one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SHOW_IN_FULL = 24
_CLOSE = {"rtol": 1e-6, "atol": 1e-9}


@dataclass
class CheckFailure(AssertionError):
    """A check's verdict: ``what`` was checked, the values, and the likely mistake."""

    what: str
    expected: str = ""
    got: str = ""
    diagnosis: str = ""

    def __str__(self) -> str:
        lines = [self.what]
        if self.expected or self.got:
            lines += [f"expected: {self.expected}", f"got:      {self.got}"]
        if self.diagnosis:
            lines.append(f"likely mistake: {self.diagnosis}")
        return "\n".join(lines)


def show(value: object) -> str:
    """A readable rendering: small arrays in full, big ones as shape, dtype and range."""
    if isinstance(value, np.ndarray):
        if value.size <= _SHOW_IN_FULL:
            body = np.array2string(value, precision=6, separator=", ", threshold=_SHOW_IN_FULL)
            return f"{body} (shape {value.shape}, {value.dtype})"
        finite = value[np.isfinite(value)] if value.dtype.kind == "f" else value
        summary = (f"min {finite.min():.6g}, max {finite.max():.6g}, mean {finite.mean():.6g}"
                   if finite.size else "no finite values")
        bad = int(np.size(value) - np.size(finite))
        return f"array of shape {value.shape}, {value.dtype}: {summary}" + (f", {bad} NaN/inf" if bad else "")
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "…"


def as_array(value: object, what: str) -> np.ndarray:
    """The student's value as an array, or a CheckFailure saying what came back instead."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (float, int, np.generic)) and not isinstance(value, bool):
        return np.asarray(value)
    raise CheckFailure(f"{what} must be a NumPy array", "a numpy.ndarray", f"{type(value).__name__}: {show(value)}")


def close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def diagnose(got: np.ndarray, expected: np.ndarray, batch: int | None = None, kind: str = "value",
             alternatives: tuple[tuple[np.ndarray, str], ...] = ()) -> str:
    """The likely mistake behind ``got`` where ``expected`` was right ("" when no pattern fits).

    ``batch`` is N when the value is a batch mean's gradient (for the 1/N patterns); ``kind``
    is "gradient", "bias_gradient", "probabilities" or "value"; ``alternatives`` are
    (what a known mistake computes, its name) pairs particular to a check.
    """
    got = np.asarray(got, dtype=np.float64) if got.dtype.kind in "biuf" else got
    if got.dtype.kind == "f" and not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
        return ("the result has NaN or inf: exp() overflowed. Subtract each row's maximum before exponentiating "
                "(log-sum-exp)")
    for wrong, name in alternatives:
        if got.shape == np.shape(wrong) and np.allclose(got, wrong, **_CLOSE):
            return name
    if got.shape != expected.shape:
        if got.shape == expected.shape[::-1] and got.ndim == 2:
            return "the result is transposed (check which side of the matrix product each factor goes)"
        return f"the shape is {got.shape}, expected {expected.shape}"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, expected.T, **_CLOSE):
        return "the gradient has the right shape but is the transpose: dW should be x.T @ dout"
    if np.allclose(got, -expected, **_CLOSE):
        return "the sign is flipped (that would be gradient ascent)"
    if batch and batch > 1:
        if np.allclose(got, expected * batch, **_CLOSE):
            return (f"the result is exactly N = {batch} times too large: the 1/N of the batch mean is missing"
                    if kind != "bias_gradient" else
                    f"the bias gradient is {batch} times too large: sum dout over the batch, without dividing again")
        if np.allclose(got, expected / batch, **_CLOSE):
            return ("the bias gradient is the mean over the batch; it should be the sum (dout already holds the 1/N)"
                    if kind == "bias_gradient" else f"the result is N = {batch} times too small: divided by N twice")
    if kind == "probabilities" and got.ndim == 2 and np.allclose(got.sum(axis=0), 1.0, **_CLOSE):
        return "the columns sum to 1, not the rows: normalise over axis=1 (each sample's classes)"
    return ""


def expect_close(value: object, expected: np.ndarray, what: str, *, rtol: float = 1e-6, atol: float = 1e-9,
                 batch: int | None = None, kind: str = "value",
                 alternatives: tuple[tuple[np.ndarray, str], ...] = ()) -> np.ndarray:
    """Fail unless ``value`` is an array of ``expected``'s shape and values; return it."""
    got = as_array(value, what)
    expected = np.asarray(expected)
    if got.dtype.kind not in "biuf":
        raise CheckFailure(f"{what} must hold numbers", show(expected), show(got))
    if not close(got, expected, rtol, atol):
        raise CheckFailure(what, show(expected), show(got) + _largest_difference(got, expected),
                           diagnose(got, expected, batch, kind, alternatives))
    return got


def _largest_difference(got: np.ndarray, expected: np.ndarray) -> str:
    """Where two same-shaped arrays differ most (summaries alone can look identical, e.g. a transpose)."""
    if got.shape != expected.shape or got.size <= 1:
        return ""
    with np.errstate(invalid="ignore"):
        difference = np.abs(got.astype(np.float64) - expected)
    if not np.any(np.isfinite(difference)):
        return ""
    index = np.unravel_index(np.nanargmax(difference), difference.shape)
    where = tuple(int(i) for i in index)
    return (f"\nlargest difference: {difference[index]:.6g} at index {where} "
            f"(expected {expected[index]:.6g}, got {float(got[index]):.6g})")


def expect_float64(value: np.ndarray, what: str) -> None:
    """Float64 in, float64 out: the contract's precision rule."""
    if value.dtype != np.float64:
        raise CheckFailure(f"{what} must be float64 when its inputs are float64", "float64", str(value.dtype),
                           "a cast to float32 (or to an integer type) inside the function")


def expect_unmodified(before: list[object], after: list[object], names: list[str], function: str) -> None:
    """Fail when the call changed any of its array arguments."""
    for name, old, new in zip(names, before, after):
        if isinstance(old, np.ndarray) and not (isinstance(new, np.ndarray) and new.shape == old.shape
                                                 and np.array_equal(new, old, equal_nan=True)):
            raise CheckFailure(f"{function} must not modify its inputs, but it changed {name}",
                               show(old), show(new) if isinstance(new, np.ndarray) else repr(new)[:200],
                               "an in-place operation on an input (such as x -= ..., x[...] = ..., out=x); "
                               "work on a copy or build a new array")
