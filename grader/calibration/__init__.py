"""The calibration the grader grades against: thresholds, golden fixtures, the time baseline.

Written by the instructor's ``python -m grader calibrate`` (grader/calibrate/) into
``calibration.json`` and ``golden.npz`` beside this file; read here at grade time.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import GraderError

HERE = Path(__file__).resolve().parent
CALIBRATION_FILE = HERE / "calibration.json"
GOLDEN_FILE = HERE / "golden.npz"
FORMAT_VERSION = 1


class CalibrationError(GraderError):
    """The calibration files are missing, of another version, or do not match their checksum."""


@dataclass(frozen=True)
class Calibration:
    """The parsed ``calibration.json`` (its fields are documented in the file itself)."""

    raw: dict

    @property
    def id(self) -> str:
        return self.raw["id"]

    @property
    def full_credit(self) -> float:
        return self.raw["thresholds"]["full_credit"]

    @property
    def zero_credit(self) -> float:
        return self.raw["thresholds"]["zero_credit"]

    def accuracy_credit(self, accuracy: float) -> float:
        """Fraction of the training points for a final test accuracy: 1 at or above full credit, 0 below the
        floor, linear in between."""
        if not math.isfinite(accuracy) or accuracy < self.zero_credit:
            return 0.0
        return min(1.0, (accuracy - self.zero_credit) / (self.full_credit - self.zero_credit))

    def time_budget(self, probe_now: float, epochs: int) -> float:
        """Seconds a submission's ``epochs`` of training may take on a machine whose probe took ``probe_now``.

        ``budget_factor`` × the calibrated reference time, scaled by machine speed and by epochs.
        """
        timing = self.raw["timing"]
        scaled = timing["reference_seconds"] * probe_now / timing["probe_seconds"] * epochs / timing["epochs"]
        return timing["budget_factor"] * scaled

    def scaled_reference_seconds(self, probe_now: float, epochs: int) -> float:
        """The reference's training time, scaled to this machine and to ``epochs``."""
        timing = self.raw["timing"]
        return timing["reference_seconds"] * probe_now / timing["probe_seconds"] * epochs / timing["epochs"]


def load(path: Path = CALIBRATION_FILE) -> Calibration:
    """Read and check the calibration file."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: cannot be read ({exc}); run `python -m grader calibrate`") from None
    if raw.get("version") != FORMAT_VERSION:
        raise CalibrationError(f"{path}: format version {raw.get('version')}, this grader reads {FORMAT_VERSION}")
    return Calibration(raw)


def golden(calibration: Calibration, path: Path = GOLDEN_FILE) -> dict[str, np.ndarray]:
    """The golden fixtures (oracle inputs and outputs), checked against the calibration's checksum."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot be read ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != calibration.raw["golden_sha256"]:
        raise CalibrationError(f"{path}: does not match the checksum in calibration.json")
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
