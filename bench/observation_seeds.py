"""Run the timed run's observation and provenance checks on the reference over many seeds; count false flags.

    python -m bench.observation_seeds [--seeds 1000] [--rows 6400] [--full 2]

Each seed draws what a grade draws: the starting weights, the row fingerprints' pixels and
projection. The reference trains (in this process, recorded by the child's own recorder) one epoch
on ``--rows`` real MNIST rows per seed, its row checks read two shuffles of all rows against the
fingerprints it draws, and ``--full`` seeds train the whole 20 epochs on all rows
(where the correlation with the start is lowest). A correct implementation must never be flagged;
the script prints the counts, the lowest correlation seen and the floor it is held to.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from grader.calibration import load as load_calibration
from grader.contract import BATCH_SIZE, EPOCHS, LR
from grader.data import load_mnist
from grader.observation import EpochRecord, Observation, RowIndex, fingerprints, judge, read_record, rows_findings
from grader.plausibility import correlation_floor
from grader.sandbox.observe import recording
from grader.training import layer_correlations, row_index, start_weights
from reference import mlp

REFERENCE_DIR = str(Path(mlp.__file__).resolve().parent)


def observed_run(X: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> tuple[list[str], float]:
    """The reference trained from ``start_weights(seed)``, observed: (findings, lowest correlation with the start)."""
    start = start_weights(seed)
    shapes = {key: value.shape for key, value in start.items()}
    index = row_index(X, seed, start)
    model = mlp.MLP(seed=0)
    for key, value in start.items():
        model.params[key][...] = value
    observation, handed = Observation(), []
    with recording(mlp, model, REFERENCE_DIR, index.columns, index.projection, index.summed_rows) as recorder:
        def on_epoch(epoch: int, loss: float) -> None:
            observation.epochs.append(read_record(recorder.take(), shapes, index))
            handed.append({key: value.astype(np.float64) for key, value in model.params.items()})

        mlp.train(model, X, y, epochs=epochs, batch_size=BATCH_SIZE, lr=LR, seed=seed, on_epoch=on_epoch)
        observation.after_last = read_record(recorder.take(), shapes, index)
    verdict = judge(observation, index, handed, start, epochs, BATCH_SIZE, LR, finished=True)
    lowest = min(value for weights in handed for value in layer_correlations(weights, start).values())
    return [finding.text for finding in verdict.findings], lowest


def record_of(X: np.ndarray, index: RowIndex, rows: np.ndarray) -> EpochRecord:
    """The row part of the record a loop leaves that takes ``rows`` of ``X`` in batches of BATCH_SIZE."""
    sizes = np.diff(np.append(np.arange(0, len(rows), BATCH_SIZE), len(rows)))
    return EpochRecord(sizes, fingerprints(X[rows], index.columns, index.projection), np.zeros(len(sizes)), 0,
                       {}, {}, np.zeros(0))


def full_rows_findings(X: np.ndarray, seed: int) -> list[str]:
    """The row checks of two shuffled epochs over all of ``X``, read against the fingerprints ``seed`` draws.

    No training: which rows share a fingerprint depends on the pixels a seed draws, over the whole set.
    """
    index = row_index(X, seed, start_weights(seed))
    rng, previous, texts = np.random.default_rng(seed), None, []
    for epoch in (1, 2):
        findings, previous = rows_findings(epoch, record_of(X, index, rng.permutation(len(X))), index, BATCH_SIZE,
                                           previous)
        texts += [finding.text for finding in findings]
    return texts


def overhead_row(X: np.ndarray, y: np.ndarray, epochs: int = 3, repeats: int = 7) -> tuple[str, str]:
    """The benchmark's row: the reference's ``train`` for ``epochs`` on ``X`` with the recorder against without
    it, on one BLAS thread and with the recorder installed once per call, as in the timed run."""
    def run(observed: bool) -> float:
        model = mlp.MLP(seed=0)
        index = row_index(X, 0, model.params)
        started = time.process_time()
        if observed:
            with recording(mlp, model, REFERENCE_DIR, index.columns, index.projection, index.summed_rows) as recorder:
                mlp.train(model, X, y, epochs=epochs, on_epoch=lambda epoch, loss: recorder.take())
        else:
            mlp.train(model, X, y, epochs=epochs, on_epoch=lambda epoch, loss: None)
        return time.process_time() - started

    # Interleaved pairs, the median of their ratios: a drift of the machine (another process, the CPU's
    # clock) between a block of plain runs and a block of watched ones would read as the recorder's cost,
    # and one disturbed run moves a median little. One BLAS thread, as the sandbox gives train: with more,
    # CPU time counts their spinning while the recorder runs.
    with threadpool_limits(limits=1, user_api="blas"):
        pairs = [(run(False), run(True)) for _ in range(repeats)]
    ratios = sorted(watched / plain - 1 for plain, watched in pairs)
    plain = float(np.median([p for p, _ in pairs]))
    return (f"observation of the timed run (recorder on, {epochs} epochs, 1 BLAS thread, median of {repeats})",
            f"{np.median(ratios) * 100:+.1f} % (pairs from {ratios[0] * 100:+.1f} to {ratios[-1] * 100:+.1f} %; "
            f"{plain:.3f} CPU s without)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observation_seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=6400)
    parser.add_argument("--full", type=int, default=2, help="seeds that also train all rows for 20 epochs")
    args = parser.parse_args(argv)
    data = load_mnist()
    floor = correlation_floor(load_calibration())
    started = time.perf_counter()
    flagged, lowest = [], 1.0
    for seed in range(args.seeds):
        rows = np.random.default_rng([seed, 7]).choice(len(data.y_train), size=args.rows, replace=False)
        findings, low = observed_run(data.x_train[rows], data.y_train[rows], seed, epochs=1)
        lowest = min(lowest, low)
        flagged += [(seed, text) for text in findings] + ([(seed, f"correlation {low:.3f}")] if low < floor else [])
        flagged += [(seed, text) for text in full_rows_findings(data.x_train, seed)]
    short = time.perf_counter() - started
    for seed in range(args.full):
        findings, low = observed_run(data.x_train, data.y_train, 10_000 + seed, epochs=EPOCHS)
        lowest = min(lowest, low)
        flagged += [(seed, text) for text in findings] + ([(seed, f"correlation {low:.3f}")] if low < floor else [])
    print(f"{args.seeds} seeds x 1 epoch on {args.rows} rows and the row checks of 2 shuffles of all rows "
          f"({short / args.seeds * 1e3:.0f} ms per seed), {args.full} seeds x {EPOCHS} epochs on all rows")
    print(f"false flags: {len(flagged)}; lowest correlation with the start {lowest:.3f} (review floor {floor:.2f})")
    print("{}: {}".format(*overhead_row(data.x_train, data.y_train)))
    for seed, text in flagged[:5]:
        print(f"    seed {seed}: {text}")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
