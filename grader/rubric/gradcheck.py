"""Central finite differences in float64, h = 1e-5, and the acceptance rule the checks share.

Rule: fail when |num - ana| > 1e-8 + 1e-5 * max(|num|, |ana|). Measured at 0 false failures
over 1000 seeds on a correct float64 implementation (bench/gradcheck_seeds.py), while every
common bug is orders of magnitude outside it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grader.rubric.feedback import CheckFailure, as_array, diagnose, show

H = 1e-5
ATOL, RTOL = 1e-8, 1e-5


def mismatch(numerical: np.ndarray, analytic: np.ndarray) -> np.ndarray:
    """Boolean mask of the entries that break the acceptance rule; NaN or inf on either side always does."""
    with np.errstate(invalid="ignore"):
        too_far = np.abs(numerical - analytic) > ATOL + RTOL * np.maximum(np.abs(numerical), np.abs(analytic))
    return too_far | ~np.isfinite(numerical) | ~np.isfinite(analytic)


def full_gradient(loss: Callable[[np.ndarray], float], point: np.ndarray) -> np.ndarray:
    """d loss / d point by central differences on every entry (for small layer-level shapes)."""
    grad = np.zeros_like(point, dtype=np.float64)
    for index in np.ndindex(point.shape):
        step = np.zeros_like(point, dtype=np.float64)
        step[index] = H
        grad[index] = (loss(point + step) - loss(point - step)) / (2 * H)
    return grad


def directional(loss: Callable[[np.ndarray], float], point: np.ndarray, direction: np.ndarray) -> float:
    """The derivative of ``loss`` at ``point`` along ``direction`` by central differences."""
    return (loss(point + H * direction) - loss(point - H * direction)) / (2 * H)


def crosses_kink(pre_activations: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
                 params: dict[str, np.ndarray], key: str, direction: np.ndarray) -> bool:
    """True when a hidden pre-activation changes sign between θ + h·u and θ − h·u (ReLU's kink).

    ``pre_activations(params)`` is the grader's own forward pass; a direction that crosses a
    kink is redrawn, never failed.
    """
    plus = pre_activations({**params, key: params[key] + H * direction})
    minus = pre_activations({**params, key: params[key] - H * direction})
    return any(np.any(np.sign(a) != np.sign(b)) for a, b in zip(plus, minus))


def expect_gradient(analytic: object, numerical: np.ndarray, what: str, batch: int | None = None,
                    kind: str = "gradient") -> None:
    """Fail, with a diagnosis, unless the student's gradient passes the acceptance rule."""
    got = as_array(analytic, what)
    if got.shape != numerical.shape or got.dtype.kind not in "biuf" or np.any(mismatch(numerical, got)):
        raise CheckFailure(f"{what} against central finite differences (h = {H:g})", show(numerical), show(got),
                           diagnose(got, numerical, batch, kind))
