"""Is a timed training run physically plausible? (CONTRACT §2: implausible runs go to instructor review.)

Three signs that the weights were not learned by ``train`` as it ran: weights that no longer carry
the start the grader gave (a network trained 20 epochs keeps a correlation of about 0.8 with its
initial weights, any other network about 0), accuracy above what SGD from these weights reaches
at that epoch (pretrained weights loaded, test labels used), or a run faster than this machine can
compute the epochs. The limits come from the calibration: the lowest correlation over the
reference and oracle runs, the reference's per-epoch accuracy band (mean and spread over seeds,
reference and oracle) and its training time scaled to this machine by the speed probe. The margins
are wide on purpose: a correct variant (float32, another shuffle, He-uniform, einsum, ...) must
never be flagged; the corpus proves it.
"""

from __future__ import annotations

from grader.calibration import Calibration

# Above the band: an epoch's accuracy is implausible past mean + max(SPREADS x std, FLOOR_MARGIN).
# Epoch 1 of the reference is 0.948 +- 0.004 and its 20th 0.980: the ceiling (about 0.970 at
# epoch 1) sits midway, above every calibrated run and below any pretrained model.
SPREADS = 5.0
FLOOR_MARGIN = 0.015
# Too fast: below this fraction of the reference's time on this machine. The fastest correct
# variants measured (float32 arithmetic, no input gradient in layer 1) take about 0.45x; 0.1x
# leaves more than 4x of room for a faster BLAS path or a lighter machine load at grade time.
TIME_FLOOR_FACTOR = 0.1
# Weights trained from the start keep at least this share of the lowest correlation calibrated
# (about 0.8 after 20 epochs): 0.75 of it sits near 0.6, far below any correct run and far above
# the |r| < 0.1 of weights from any other initialisation.
PROVENANCE_SHARE = 0.75


def accuracy_ceiling(calibration: Calibration, epoch: int) -> float | None:
    """The highest plausible test accuracy after ``epoch`` (0-based) epochs, or None past the band."""
    band = calibration.raw["accuracy"]["reference"]["per_epoch"]
    if epoch >= len(band["mean"]):
        return None
    return band["mean"][epoch] + max(SPREADS * band["std"][epoch], FLOOR_MARGIN)


def time_floor(scaled_reference_seconds: float) -> float:
    """Seconds below which the epochs cannot have been computed on this machine."""
    return TIME_FLOOR_FACTOR * scaled_reference_seconds


def correlation_floor(calibration: Calibration) -> float:
    """The lowest correlation with the start that trained weights keep: a share of the calibrated lowest."""
    return round(PROVENANCE_SHARE * calibration.raw["provenance"]["lowest_correlation"], 2)


def provenance_reason(calibration: Calibration, correlations: list[dict[str, float]], epochs: int) -> str | None:
    """Why weights handed over (each epoch's, then the final ones) cannot have been trained from the start."""
    floor = correlation_floor(calibration)
    for number, layers in enumerate(correlations, 1):
        for key, value in layers.items():
            if not value >= floor:
                when = f"after epoch {number}" if number <= epochs else "after train returned"
                return (f"the weights {when} are unrelated to the ones train was given ({key}: correlation "
                        f"{value:.2f}; trained weights keep at least {floor:.2f}): were they loaded from elsewhere?")
    return None


def review_reason(calibration: Calibration, accuracies: list[float], seconds: float, finished: bool, epochs: int,
                  scaled_reference_seconds: float, ignores_given_weights: bool = False,
                  correlations: list[dict[str, float]] = ()) -> str | None:
    """One sentence saying why the run needs an instructor's review, or None when it is plausible.

    ``accuracies`` are the per-epoch test accuracies handed over (epoch 1 first); ``seconds`` the
    training time, judged when the run ``finished`` its ``epochs``; ``ignores_given_weights`` is the
    exact-step check's finding that train does not start from the model's weights; ``correlations``
    each handed-over weight matrix's correlation with the start (``training.layer_correlations``).
    """
    if ignores_given_weights:
        return ("train does not start from the weights in model.params (the exact-step check): the accuracy "
                "may come from weights loaded or initialised elsewhere")
    unrelated = provenance_reason(calibration, list(correlations), epochs)
    if unrelated is not None:
        return unrelated
    for epoch, accuracy in enumerate(accuracies):
        ceiling = accuracy_ceiling(calibration, epoch)
        if ceiling is not None and accuracy > ceiling:
            return (f"test accuracy {accuracy:.4f} after epoch {epoch + 1} is above anything SGD from these "
                    f"weights reaches by then (at most {ceiling:.4f}): were weights loaded or learned elsewhere?")
    floor = time_floor(scaled_reference_seconds)
    if finished and seconds < floor:
        return (f"{epochs} epochs took {seconds:.2f} s, faster than this machine can compute them "
                f"(at least {floor:.2f} s): were the epochs really trained?")
    return None
