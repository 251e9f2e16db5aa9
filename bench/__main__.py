"""``python -m bench``: one table of numbers measured in one run on this machine.

Per-epoch training time of the reference (float64 and float32) and of PyTorch on the same
net, batch and data, both as a loop as lean as the NumPy one and as PyTorch is usually written
(DataLoader, nn.Sequential, optim.SGD); achieved GFLOP/s against this machine's measured matmul peak; the time
of each grading phase; batch throughput for 1, 2, ... workers. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.similarity import similarity_rows
from grader.contract import COMPONENTS
from grader.data import load_mnist
from grader.report.html import render_report
from grader.rubric.run import grade
from grader.training import BATCH_SIZE, LR, SIZES
from reference.mlp import MLP, train

ROOT = Path(__file__).resolve().parents[1]
# Multiply-adds of one sample through the net, forward once and backward twice (dx and dW).
MACS_PER_SAMPLE = 3 * sum(a * b for a, b in zip(SIZES, SIZES[1:]))
SETTLE_SECONDS = 5.0


def best_epoch_seconds(run_epoch, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run_epoch()
        best = min(best, time.perf_counter() - started)
    return best


def numpy_epoch(data, dtype) -> float:
    model = MLP(seed=0)
    for key in model.params:
        model.params[key] = model.params[key].astype(dtype)
    X = data.x_train.astype(dtype)
    return best_epoch_seconds(lambda: train(model, X, data.y_train, epochs=1, lr=dtype(LR)))


def torch_epoch(data, dtype_name: str) -> float:
    import torch  # noqa: PLC0415  (torch only for its rows: its thread pool would slow the grading phases)

    from reference import oracle  # noqa: PLC0415  (it imports torch)

    dtype = getattr(torch, dtype_name)
    twin = oracle.OracleMLP(MLP(seed=0).params)
    twin.tensors = {k: t.detach().to(dtype).requires_grad_() for k, t in twin.tensors.items()}
    X = torch.as_tensor(data.x_train).to(dtype)
    y = torch.as_tensor(data.y_train)

    def run() -> None:
        for batch in next(oracle.batch_order(len(X), 1, BATCH_SIZE, 0)):
            index = torch.as_tensor(batch)
            a = X[index]
            for k in range(1, twin.layers + 1):
                a = a @ twin.tensors[f"W{k}"] + twin.tensors[f"b{k}"]
                a = torch.relu(a) if k < twin.layers else a
            loss = torch.nn.functional.cross_entropy(a, y[index])
            for t in twin.tensors.values():
                t.grad = None
            loss.backward()
            with torch.no_grad():
                for t in twin.tensors.values():
                    t -= LR * t.grad

    return best_epoch_seconds(run)


def torch_idiomatic_epoch(data, dtype_name: str) -> float:
    """PyTorch as it is usually written: nn.Sequential, DataLoader over a TensorDataset, optim.SGD.

    The loop the origin analysis timed (there with torchvision's per-image transforms on top).
    """
    import torch  # noqa: PLC0415  (as above)
    from torch.utils.data import DataLoader, TensorDataset  # noqa: PLC0415  (as above)

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    layers: list[torch.nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:]), start=1):
        layers.append(torch.nn.Linear(fan_in, fan_out, dtype=dtype))
        if k < len(SIZES) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loader = DataLoader(TensorDataset(torch.as_tensor(data.x_train).to(dtype), torch.as_tensor(data.y_train)),
                        batch_size=BATCH_SIZE, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_function = torch.nn.CrossEntropyLoss()

    def run() -> None:
        for images, labels in loader:
            optimizer.zero_grad()
            loss_function(model(images), labels).backward()
            optimizer.step()

    return best_epoch_seconds(run)


def matmul_peak(dtype) -> float:
    """GFLOP/s of a large square matmul (the best of a few)."""
    a = np.random.default_rng(0).random((2048, 2048)).astype(dtype)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * 2048**3 / best / 1e9


def phases() -> list[tuple[str, str]]:

    checks = grade(ROOT / "reference", only=frozenset(COMPONENTS) - {"train"})
    full = grade(ROOT / "reference")
    started = time.perf_counter()
    render_report(full, "bench")
    report = time.perf_counter() - started
    training = full.training.seconds
    overhead = (full.seconds - training) / training
    return [("checks without training (in-process)", f"{checks.seconds:.2f} s"),
            ("timed training of the reference (20 epochs, sandbox)", f"{training:.2f} s"),
            ("whole grade (in-process)", f"{full.seconds:.2f} s"),
            ("report rendering", f"{report * 1e3:.0f} ms"),
            ("grading overhead on top of the training", f"{overhead * 100:.1f} %")]


def throughput(workers_list: list[int], submissions: int, epochs: int) -> list[tuple[str, str]]:
    """Submissions per minute of ``python -m grader batch`` over copies of the reference."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        klass = Path(scratch) / "class"
        for i in range(submissions):
            (klass / f"student{i:02d}").mkdir(parents=True)
            shutil.copy(ROOT / "reference" / "mlp.py", klass / f"student{i:02d}" / "mlp.py")
        for workers in workers_list:
            out = Path(scratch) / f"out{workers}"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "grader", "batch", str(klass), "--out", str(out), "--jobs",
                            str(workers), "--epochs", str(epochs)], check=True, capture_output=True, cwd=ROOT)
            per_minute = submissions / (time.perf_counter() - started) * 60
            rows.append((f"batch --jobs {workers}, {submissions} submissions, --epochs {epochs}",
                         f"{per_minute:.1f} per minute"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput rows")
    parser.add_argument("--submissions", type=int, default=4)
    args = parser.parse_args(argv)
    data = load_mnist()
    rows: list[tuple[str, str]] = []
    epoch = {"numpy float64": numpy_epoch(data, np.float64), "numpy float32": numpy_epoch(data, np.float32)}
    # The grading phases before torch is imported (a grade never imports it, and its idle thread pool
    # slows what runs after it); then a pause, as freeing a killed sandbox slows what runs right after it.
    grading = phases()
    time.sleep(SETTLE_SECONDS)
    epoch |= {"pytorch float64": torch_epoch(data, "float64"), "pytorch float32": torch_epoch(data, "float32"),
             "pytorch float64, idiomatic": torch_idiomatic_epoch(data, "float64"),
             "pytorch float32, idiomatic": torch_idiomatic_epoch(data, "float32")}
    macs = MACS_PER_SAMPLE * len(data.x_train)
    peak = {"float64": matmul_peak(np.float64), "float32": matmul_peak(np.float32)}
    for name, seconds in epoch.items():
        precision = name.split()[1].rstrip(",")
        achieved = 2 * macs / seconds / 1e9
        share = achieved / peak[precision] * 100
        rows.append((f"epoch, {name}", f"{seconds:.3f} s  ({achieved:.1f} GFLOP/s, {share:.0f}%"
                                       f" of the {peak[precision]:.0f} GFLOP/s matmul peak)"))
    for precision in ("float64", "float32"):
        for loop in ("", ", idiomatic"):
            ratio = epoch[f"numpy {precision}"] / epoch[f"pytorch {precision}{loop}"]
            rows.append((f"numpy / pytorch{loop} per-epoch time, {precision}", f"{ratio:.2f}x"))
    rows += grading
    rows += throughput([int(w) for w in args.workers.split(",")], args.submissions, epochs=2)
    rows += similarity_rows(200)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"BLAS threads: default for the epoch rows, 1 per grade")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
