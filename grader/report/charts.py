"""Inline SVG charts for the reports, built from numbers only (no student text ever reaches them)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """One panel's SVG geometry: ``paths`` of (points attribute, css class), axis ticks and labels."""

    width: int
    height: int
    lines: list[tuple[str, str]]  # (polyline points, class)
    areas: list[tuple[str, str]]  # (polygon points, class)
    y_ticks: list[tuple[float, str]]  # (y pixel, label)
    x_ticks: list[tuple[float, str]]
    title: str


_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 440, 220, 48, 12, 24, 30


def _scale(lo: float, hi: float, epochs: int):
    def x(epoch: float) -> float:
        return _LEFT + (epoch - 1) / max(epochs - 1, 1) * (_W - _LEFT - _RIGHT)

    def y(value: float) -> float:
        clipped = min(max(value, lo), hi)
        return _TOP + (hi - clipped) / (hi - lo) * (_H - _TOP - _BOTTOM)

    return x, y


def _points(values: list[float], x, y) -> str:
    return " ".join(f"{x(i + 1):.1f},{y(v):.1f}" for i, v in enumerate(values) if math.isfinite(v))


def accuracy_chart(accuracies: list[float], band: dict[str, list[float]], epochs: int) -> Chart:
    """Test accuracy per epoch against the calibrated reference band (per-epoch min to mean + std)."""
    low_band = band["min"][:epochs]
    high_band = [min(m + s, 1.0) for m, s in zip(band["mean"][:epochs], band["std"][:epochs])]
    finite = [a for a in accuracies if math.isfinite(a)]
    lo = math.floor(min([0.9, *finite, *low_band]) * 20) / 20
    x, y = _scale(lo, 1.0, epochs)
    area = _points(high_band, x, y) + " " + " ".join(
        f"{x(i + 1):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(low_band))))
    ticks = [(y(lo + k * (1 - lo) / 4), f"{lo + k * (1 - lo) / 4:.3f}") for k in range(5)]
    return Chart(_W, _H, [(_points(band["mean"][:epochs], x, y), "reference"), (_points(accuracies, x, y), "student")],
                 [(area, "band")], ticks, _epoch_ticks(x, epochs), "test accuracy per epoch")


def loss_chart(losses: list[float], epochs: int) -> Chart:
    """Mean training loss per epoch as train reported it."""
    finite = [v for v in losses if math.isfinite(v)] or [1.0]
    hi = max(finite) * 1.1 or 1.0
    x, y = _scale(0.0, hi, epochs)
    ticks = [(y(k * hi / 4), f"{k * hi / 4:.3g}") for k in range(5)]
    return Chart(_W, _H, [(_points(losses, x, y), "student")], [], ticks, _epoch_ticks(x, epochs),
                 "training loss per epoch")


def _epoch_ticks(x, epochs: int) -> list[tuple[float, str]]:
    step = max(1, epochs // 5)
    return [(x(e), str(e)) for e in range(1, epochs + 1) if e == 1 or e % step == 0]


def histogram(scores: list[float], maximum: float, bins: int = 10) -> list[tuple[str, int, float]]:
    """(label, count, bar height fraction) per score bin of width maximum / bins."""
    counts = [0] * bins
    for score in scores:
        counts[min(int(score / maximum * bins), bins - 1) if maximum else 0] += 1
    tallest = max(counts) or 1
    width = maximum / bins
    return [(f"{i * width:.0f}-{(i + 1) * width:.0f}", c, c / tallest) for i, c in enumerate(counts)]
