"""The assignment's vocabulary (CONTRACT.md), in one place: every other module imports it from here.

The component names are the tags of results.json (CONTRACT §3) in the order reports show them.
``POINTS`` is how the 100 points split over the components; the checks' own ``points`` markers
must add up to it (the rubric refuses to run otherwise), so the two can never drift apart.
"""

from __future__ import annotations

from grader.errors import UsageError

# Also the names mlp.py must define (CONTRACT §1): one function or class per component.
COMPONENTS: tuple[str, ...] = ("he_init", "linear_forward", "linear_backward", "relu_forward", "relu_backward",
                               "softmax", "cross_entropy", "sgd_step", "MLP", "train")

# The contract's default network and hyperparameters (train's defaults, MLP's default sizes).
SIZES: tuple[int, ...] = (784, 128, 64, 10)
EPOCHS = 20
BATCH_SIZE = 64
LR = 0.1
SEED = 0

POINTS: dict[str, float] = {
    "he_init": 7, "linear_forward": 6, "linear_backward": 10, "relu_forward": 4, "relu_backward": 6,
    "softmax": 8, "cross_entropy": 12, "sgd_step": 6, "MLP": 21, "train": 20,
}
TOTAL_POINTS = 100.0
assert sum(POINTS.values()) == TOTAL_POINTS and tuple(POINTS) == COMPONENTS


def check_min_score(value: float | None) -> None:
    """A ``--min-score`` is a total the grade can reach: 0 to TOTAL_POINTS."""
    if value is not None and not 0 <= value <= TOTAL_POINTS:
        raise UsageError(f"--min-score must be between 0 and {TOTAL_POINTS:g}")


def check_epochs(epochs: int | None) -> None:
    if epochs is not None and epochs < 1:
        raise UsageError("--epochs must be a positive integer")


def parse_components(only: str | None) -> frozenset[str] | None:
    """An ``--only`` value: comma-separated component names, None for all; a usage error names unknown ones."""
    if only is None:
        return None
    names = frozenset(part.strip() for part in only.split(",") if part.strip())
    unknown = sorted(names - set(COMPONENTS))
    if unknown or not names:
        raise UsageError(f"--only: unknown component {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(COMPONENTS)}")
    return names
