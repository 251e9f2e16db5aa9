"""``python -m bench [--only SECTION,...]``: one table of numbers measured in one run on this machine.

Per-epoch training time of the reference (float64 and float32) and of PyTorch on the same
net, batch and data, both as a loop as lean as the NumPy one and as PyTorch is usually written
(DataLoader, nn.Sequential, optim.SGD); achieved GFLOP/s against this machine's measured matmul peak; the time
of each grading phase; batch throughput for 1, 2, ... workers. Numbers, not assertions. The header names
the BLAS each side ran (threadpoolctl's view of NumPy's, PyTorch's own build info). ``--only epochs``
measures the epoch and ratio rows alone, in well under a minute.
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
from threadpoolctl import threadpool_info

from bench import print_table
from bench.similarity import similarity_rows
from grader.contract import COMPONENTS
from grader.data import load_mnist
from grader.report.html import render_report
from grader.rubric.run import grade
from grader.training import BATCH_SIZE, LR, SIZES
from reference.mlp import MLP, train

ROOT = Path(__file__).resolve().parents[1]
# Multiply-adds of one sample through the net: forward once, backward twice (dx and dW) but for the
# first layer's dx, the gradient for the input, which neither the reference nor PyTorch computes.
MACS_PER_SAMPLE = 3 * sum(a * b for a, b in zip(SIZES, SIZES[1:])) - SIZES[0] * SIZES[1]
SETTLE_SECONDS = 5.0
SECTIONS = ("epochs", "grading", "batch", "similarity")
# OpenBLAS reads these at load time: set, they choose its kernel and blocking instead of its own detection.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
# Where the reference's weights start, in bytes past a 64-byte boundary. NumPy takes large arrays from malloc,
# which puts them 16 bytes past one (glibc's chunk header); PyTorch's allocator aligns every tensor to 64 bytes.
# It matters: an in-place update of a misaligned W1 splits every AVX-512 store across two cache lines.
NUMPY_PLACEMENT = 16
ALIGNED = 0


def best_epoch_seconds(run_epoch, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run_epoch()
        best = min(best, time.perf_counter() - started)
    return best


def placed(array: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``array`` whose data start ``offset`` bytes past a 64-byte boundary."""
    buffer = np.empty(array.nbytes + 64 + offset, dtype=np.uint8)
    start = -buffer.ctypes.data % 64 + offset
    copy = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy


def numpy_epoch(data, dtype, repeats: int = 3, offset: int = NUMPY_PLACEMENT) -> float:
    """The reference's epoch, its weights placed where NumPy puts them (or at another ``offset``, every run alike)."""
    model = MLP(seed=0)
    for key in model.params:
        model.params[key] = placed(model.params[key].astype(dtype), offset)
    X = data.x_train.astype(dtype)
    return best_epoch_seconds(lambda: train(model, X, data.y_train, epochs=1, lr=dtype(LR)), repeats)


def torch_epoch(data, dtype_name: str, repeats: int = 3) -> float:
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

    return best_epoch_seconds(run, repeats)


def torch_idiomatic_epoch(data, dtype_name: str, repeats: int = 3) -> float:
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

    return best_epoch_seconds(run, repeats)


def matmul_peak(dtype) -> float:
    """GFLOP/s of a large square matmul (the best of a few)."""
    a = np.random.default_rng(0).random((2048, 2048)).astype(dtype)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * 2048**3 / best / 1e9


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def numpy_blas() -> list[str]:
    """NumPy's BLAS as threadpoolctl sees it: library, version, threading layer, kernel, threads."""
    found = [f"{info.get('internal_api')} {info.get('version')}, {info.get('threading_layer')} threading, "
             f"{info.get('architecture')} kernel, {info.get('num_threads')} threads"
             for info in threadpool_info() if info.get("user_api") == "blas"]
    overrides = [f"{name}={os.environ[name]}" for name in OPENBLAS_OVERRIDES if name in os.environ]
    return [f"{line}; {', '.join(overrides) or 'no OPENBLAS_* override: its own detection'}"
            for line in found or ["none found by threadpoolctl"]]


def torch_blas() -> str:
    import torch  # noqa: PLC0415  (as in torch_epoch)

    blas = "MKL" if torch.backends.mkl.is_available() else "its own"
    return (f"torch {torch.__version__}, {blas} BLAS (linked in), {torch.backends.cpu.get_cpu_capability()} kernels, "
            f"{torch.get_num_threads()} threads")


def epoch_rows(data, epoch: dict[str, float]) -> list[tuple[str, str]]:
    """Seconds and GFLOP/s per epoch, then the numpy / pytorch ratios."""
    rows = []
    macs = MACS_PER_SAMPLE * len(data.x_train)
    peak = {"float64": matmul_peak(np.float64), "float32": matmul_peak(np.float32)}
    for name, seconds in epoch.items():
        precision = name.split()[1].rstrip(",")
        achieved = 2 * macs / seconds / 1e9
        share = achieved / peak[precision] * 100
        rows.append((f"epoch, {name}", f"{seconds:.3f} s  ({achieved:.1f} GFLOP/s, {share:.0f}%"
                                       f" of the {peak[precision]:.0f} GFLOP/s matmul peak)"))
    for precision in ("float64", "float32"):
        for numpy, loop in (("", ""), ("", ", idiomatic"), (", aligned weights", "")):
            ratio = epoch[f"numpy {precision}{numpy}"] / epoch[f"pytorch {precision}{loop}"]
            rows.append((f"numpy{numpy} / pytorch{loop} per-epoch time, {precision}", f"{ratio:.2f}x"))
    return rows


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
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to measure, of {', '.join(SECTIONS)} (default: all); "
                             "'--only epochs' is the per-epoch comparison alone")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per row, the best one counts")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"--only: unknown section {', '.join(sorted(only - set(SECTIONS)))} (of {', '.join(SECTIONS)})")
    load = os.getloadavg()[0]  # other work on the machine skews every row: say how much there was
    data = load_mnist() if "epochs" in only else None
    blas = numpy_blas()
    rows: list[tuple[str, str]] = []
    epoch: dict[str, float] = {}
    if data is not None:
        for dtype in (np.float64, np.float32):
            epoch[f"numpy {dtype.__name__}"] = numpy_epoch(data, dtype, args.repeats)
            epoch[f"numpy {dtype.__name__}, aligned weights"] = numpy_epoch(data, dtype, args.repeats, offset=ALIGNED)
    # The grading phases before torch is imported (a grade never imports it, and its idle thread pool
    # slows what runs after it); then a pause, as freeing a killed sandbox slows what runs right after it.
    grading = phases() if "grading" in only else []
    if data is not None:
        if grading:
            time.sleep(SETTLE_SECONDS)
        for loop, run in (("", torch_epoch), (", idiomatic", torch_idiomatic_epoch)):
            for name in ("float64", "float32"):
                epoch[f"pytorch {name}{loop}"] = run(data, name, args.repeats)
        rows += epoch_rows(data, epoch)
    rows += grading
    if "batch" in only:
        rows += throughput([int(w) for w in args.workers.split(",")], args.submissions, epochs=2)
    if "similarity" in only:
        rows += similarity_rows(200)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"BLAS threads: default for the epoch rows, 1 per grade; load average {load:.2f} at the start")
    for line in blas:
        print(f"numpy's BLAS: {line}")
    if data is not None:
        print(f"pytorch's BLAS: {torch_blas()}")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
