"""Calibration: reproducible thresholds, golden fixtures that match the oracle, a fair time budget."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from grader import calibration as calibration_files
from grader.calibrate import full_credit_of, golden_fixtures
from grader.calibration.speed_probe import probe_seconds
from helpers import ROOT
from reference import mlp


@pytest.fixture(scope="module")
def committed() -> calibration_files.Calibration:
    return calibration_files.load()


def test_committed_golden_fixtures_are_the_oracles_and_the_reference_agrees(committed):
    golden = calibration_files.golden(committed)
    regenerated = golden_fixtures()
    assert golden.keys() == regenerated.keys()
    for key in golden:
        np.testing.assert_allclose(golden[key], regenerated[key], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(mlp.softmax(golden["softmax.logits"]), golden["softmax.probs"], rtol=1e-12, atol=1e-300)
    loss, dlogits = mlp.cross_entropy(golden["softmax.logits"], golden["ce.y"])
    assert loss == pytest.approx(float(golden["ce.loss"]), rel=1e-12)


def test_tampered_golden_fixtures_are_refused(committed, tmp_path):
    tampered = tmp_path / "golden.npz"
    data = bytearray(calibration_files.GOLDEN_FILE.read_bytes())
    data[-100] ^= 1
    tampered.write_bytes(bytes(data))
    with pytest.raises(calibration_files.CalibrationError, match="checksum"):
        calibration_files.golden(committed, tampered)


def test_credit_and_budget_follow_the_written_rules(committed):
    assert committed.accuracy_credit(committed.full_credit) == 1.0
    assert committed.accuracy_credit(0.999) == 1.0
    assert committed.accuracy_credit(committed.zero_credit - 1e-6) == 0.0
    assert committed.accuracy_credit(float("nan")) == 0.0
    middle = (committed.full_credit + committed.zero_credit) / 2
    assert committed.accuracy_credit(middle) == pytest.approx(0.5)
    timing = committed.raw["timing"]
    # A machine 3x slower: its probe reads 3x, and the budget grows with it.
    slow = committed.time_budget(3 * timing["probe_seconds"], 20)
    assert slow == pytest.approx(3 * committed.time_budget(timing["probe_seconds"], 20))
    assert slow >= 3 * timing["reference_seconds"] * 2  # the reference there fits with room to spare
    assert committed.time_budget(timing["probe_seconds"], 10) == pytest.approx(
        committed.time_budget(timing["probe_seconds"], 20) / 2)


def test_any_late_epoch_of_a_calibration_run_would_have_full_credit(committed):
    """A correct run's last epoch is one draw from its late epochs: every one the reference and the
    oracle reached (from epoch 11 on) is a final accuracy a correct submission can end with."""
    epochs = committed.raw["hyperparameters"]["epochs"]
    bands = [committed.raw["accuracy"][run]["per_epoch"]["min"] for run in ("reference", "oracle")]
    assert committed.full_credit == full_credit_of(bands)
    assert all(committed.accuracy_credit(accuracy) == 1.0 for band in bands for accuracy in band[epochs // 2:])
    # The chance-level accuracies of a model that does not learn still earn nothing.
    assert committed.accuracy_credit(0.2) == 0.0


def test_the_speed_probe_measures_a_positive_time_of_the_same_order_each_run():
    """Generous on purpose: a loaded machine (CI, a parallel batch) slows a reading, never to 5x.

    How quick and how steady the probe is on an idle machine is measured by the bench, not asserted.
    """
    readings = [probe_seconds() for _ in range(3)]
    assert all(reading > 0 for reading in readings)
    assert max(readings) / min(readings) < 5


@pytest.mark.oracle
@pytest.mark.mnist
@pytest.mark.slow
@pytest.mark.timeout(1800)  # three seeds of the reference and the oracle: about 10 minutes on one loaded core
def test_calibration_is_reproducible_within_its_documented_margin(committed, tmp_path):
    seeds = ",".join(str(s) for s in committed.raw["hyperparameters"]["seeds"])
    done = subprocess.run([sys.executable, "-m", "grader", "calibrate", "--seeds", seeds, "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    rerun = json.loads((tmp_path / "calibration.json").read_text())
    margin = committed.raw["thresholds"]["reproducibility_margin"]
    for key in ("full_credit", "zero_credit"):
        assert abs(rerun["thresholds"][key] - committed.raw["thresholds"][key]) <= margin
    # The golden values agree to rounding: another CPU's matmul kernels may sum in another order, so
    # the bytes (and the checksum) can differ from machine to machine; a value cannot.
    with np.load(tmp_path / "golden.npz") as fresh, np.load(calibration_files.GOLDEN_FILE) as kept:
        assert sorted(fresh.files) == sorted(kept.files)
        for key in kept.files:
            assert fresh[key].dtype == kept[key].dtype and fresh[key].shape == kept[key].shape, key
            np.testing.assert_allclose(fresh[key], kept[key], rtol=1e-12, atol=1e-14, err_msg=key)
