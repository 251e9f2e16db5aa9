"""Imports that do not compute never cost a point, and loosen nothing (CONTRACT §1, issue 18).

Real libraries load where the grading environment has them (matplotlib and tqdm in the test
environment, with the system libraries their extensions need made readable); the others are inert
stand-ins; deep-learning frameworks are always stand-ins. Both directions: a stand-in that is
used harmlessly costs nothing, one that is used to compute fails that one call with a message
naming the module.
"""

from __future__ import annotations

import importlib.util
import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from grader.sandbox import Callback, CallFailed, Limits, Sandbox
from grader.sandbox.native_libraries import allowed_extension_libraries, needed
from grader.sandbox.session import readable_paths
from grader.sandbox.stand_ins import FRAMEWORKS, KNOWN, imported_libraries
from helpers import ROOT, grade, reference_with

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
STUDENT_IMPORTS = """
import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns
import pandas as pd
from IPython.display import clear_output, display
from keras.datasets import mnist
from tensorflow.keras.utils import to_categorical
from sklearn.model_selection import train_test_split
from tqdm import tqdm, trange
from google.colab import drive
import torch
try:
    import cupy as xp  # a GPU if there is one: the fallback must still work
except ImportError:
    import numpy as xp
"""


def box_for(tmp_path, code: str) -> Sandbox:
    return Sandbox(reference_with(tmp_path / "s", STUDENT_IMPORTS + code), Limits(call_timeout=60))


def test_student_imports_load_and_plotting_inside_a_function_is_harmless(tmp_path):
    code = """
def plots(values):
    matplotlib.use("TkAgg")  # any backend call: the child renders off screen
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(values)
    ax[1].set_title("loss")
    plt.savefig("curve.png")
    plt.show()
    sns.lineplot(x=values)
    clear_output(wait=True)
    display(fig)
    total = 0.0
    for value in tqdm(values, desc="batches"):
        total += value
    for _ in trange(2):
        pass
    return xp.array([total, float(os.path.exists("curve.png"))])
import os
"""
    with box_for(tmp_path, code) as box:
        result = box.call("plots", np.array([1.0, 2.0, 3.0]))
        assert box.call("softmax", np.zeros((1, 2))).tolist() == [[0.5, 0.5]]
    assert result[0] == 6.0
    assert result[1] == float(HAS_MATPLOTLIB)  # a real figure was written where matplotlib is real
    stood_in = set(box.stand_ins)
    assert {"seaborn", "IPython", "keras", "tensorflow", "google.colab", "torch"} <= stood_in
    assert ("matplotlib" in stood_in) is not HAS_MATPLOTLIB
    assert "cupy" not in stood_in and set(stood_in) <= set(KNOWN)


@pytest.mark.parametrize(("call", "module"), [("torch.softmax(torch.tensor(logits), 1).numpy()", "torch"),
                                              ("pd.DataFrame(logits).to_numpy()", "pandas"),
                                              ("to_categorical(logits)", "tensorflow")])
def test_a_stand_in_used_to_compute_fails_that_call_with_one_line(tmp_path, call, module):
    with box_for(tmp_path, f"\ndef softmax(logits):\n    return {call}\n") as box:
        with pytest.raises(CallFailed) as failure:
            box.call("softmax", np.zeros((2, 3)))
        assert box.call("relu_forward", np.array([-1.0, 1.0])).tolist() == [0.0, 1.0]  # the rest still works
    message = failure.value.message
    assert failure.value.kind == "raised" and "\n" not in message
    assert f"{module} is not available to graded code" in message
    assert "agent.py" not in failure.value.detail and "stand_ins.py" not in failure.value.detail


def test_frameworks_are_stood_in_even_where_installed(tmp_path):
    """A grade must not depend on what the machine has: torch is installed here for the oracle."""
    with box_for(tmp_path, "\ndef is_real(x):\n    return np.array([float(hasattr(torch, '__version__'))])\n") as box:
        assert box.call("is_real", np.zeros(1)).tolist() == [0.0]
    assert set(FRAMEWORKS) & set(box.stand_ins) >= {"torch", "keras", "tensorflow"}


def test_imported_libraries_are_read_from_every_python_file(tmp_path):
    (tmp_path / "mlp.py").write_text("import numpy as np\nfrom helpers_mine import f\n"
                                     "def g():\n    import seaborn\n")
    (tmp_path / "helpers_mine.py").write_text("from tqdm.notebook import tqdm\nimport PIL.Image\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    assert imported_libraries(str(tmp_path)) == ["tqdm", "PIL", "seaborn"]


def test_only_the_system_libraries_extensions_need_become_readable():
    paths = readable_paths()
    system = [path for path in paths if not path.startswith(("/root", "/work", "/usr/local/lib/python"))
              and "site-packages" not in path and "python3" not in path]
    # Library files only: never a folder, never /etc, /home or another system file.
    assert all(".so" in os.path.basename(path) and os.path.isfile(path) for path in system), system
    if HAS_MATPLOTLIB:
        assert any(os.path.basename(path).startswith("libstdc++") for path in system), system


def test_elf_reader_finds_needed_libraries_and_ignores_other_files(tmp_path):
    import numpy.linalg  # noqa: PLC0415  (its extension module is the sample ELF file)

    extension = next(path for path in os.listdir(os.path.dirname(numpy.linalg.__file__))
                     if path.startswith("_umath_linalg") and ".so" in path)
    names, _ = needed(os.path.join(os.path.dirname(numpy.linalg.__file__), extension))
    assert names and all(name.startswith(("lib", "ld-")) and ".so" in name for name in names), names
    (tmp_path / "not_elf.so").write_bytes(b"\x7fELF" + bytes(10))
    (tmp_path / "text.so").write_text("hello")
    assert needed(str(tmp_path / "not_elf.so")) == needed(str(tmp_path / "text.so")) == ([], [])
    assert allowed_extension_libraries((str(tmp_path),)) == ()


def test_stand_ins_loosen_nothing(tmp_path):
    """With matplotlib loaded and its libraries readable, the rest of the system stays closed."""
    code = """
def softmax(logits):
    plt.plot([1, 2])
    for path in ("/etc/shadow", "/etc/hostname", "/root/.bashrc"):
        try:
            open(path).read()
        except OSError:
            continue
        raise RuntimeError("read " + path)
    return np.zeros_like(logits)
"""
    with box_for(tmp_path, code) as box:
        box.call("relu_forward", np.ones(1))
        if not box.strength.confined:
            pytest.skip("Landlock is not available on this kernel")
        assert box.call("softmax", np.zeros((1, 2))).tolist() == [[0.0, 0.0]]


def test_forged_stand_in_names_never_reach_the_report(tmp_path):
    code = """
import sys
_finder = next(f for f in sys.meta_path if type(f).__name__ == "Finder")
_finder.stood_in.extend(["<script>alert(1)</script>", "os"])
"""
    with box_for(tmp_path, code) as box:
        box.call("relu_forward", np.ones(1))
    assert all(name in KNOWN for name in box.stand_ins)


@pytest.mark.parametrize(("call", "accepted"), [("on_epoch(0, 1.5)", True), ("on_epoch(epoch=0, mean_loss=1.5)", True),
                                                ("on_epoch(0, mean_loss=np.float32(1.5))", True),
                                                ("on_epoch(epoch=0, loss=1.5)", False)])
def test_on_epoch_by_position_or_keyword(tmp_path, call, accepted):
    seen = []

    def on_epoch(epoch, mean_loss, params):
        seen.append((epoch, float(mean_loss), sorted(params)))

    code = f"\ndef train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):\n    {call}\n" \
           "    return [1.5]\n"
    with Sandbox(reference_with(tmp_path / "s", code)) as box:
        model = box.call("MLP", sizes=(4, 3, 2))
        if accepted:
            assert box.call("train", model, np.zeros((2, 4)), np.zeros(2, dtype=np.int64),
                            on_epoch=Callback(on_epoch, attach=(model, "params"))) == [1.5]
            assert seen == [(0, 1.5, ["W1", "W2", "b1", "b2"])]
        else:
            with pytest.raises(CallFailed) as failure:
                box.call("train", model, np.zeros((2, 4)), np.zeros(2, dtype=np.int64),
                         on_epoch=Callback(on_epoch, attach=(model, "params")))
            assert "TypeError: on_epoch() missing a required argument: 'mean_loss'" in failure.value.message
            assert not seen


@pytest.mark.mnist
def test_a_module_that_fails_to_import_says_so_once(tmp_path):
    folder = reference_with(tmp_path / "s", "\nimport my_missing_helpers\n")
    done, record = grade(folder, tmp_path / "out", "--only", "softmax,relu_forward,MLP")
    assert "No module named 'my_missing_helpers'" in record.import_failure
    assert "Traceback" in record.import_failure and "agent.py" not in record.import_failure
    assert all("my_missing_helpers" not in r.output and "could not be imported" in r.output for r in record.results)
    assert done.stdout.count("No module named 'my_missing_helpers'") == 1
    top, checks = (tmp_path / "out" / "report.html").read_text().split("<h2>Checks</h2>")
    assert "could not be imported" in top and "my_missing_helpers" in top and "my_missing_helpers" not in checks


@pytest.mark.mnist
def test_grade_prints_each_epoch_of_the_timed_run(tmp_path):
    done, record = grade(reference_with(tmp_path / "s", ""), tmp_path / "out", "--only", "train", "--epochs", "2")
    lines = [line for line in done.stdout.splitlines() if line.startswith("train: epoch")]
    assert [line.split()[2] for line in lines] == ["1/2", "2/2"], done.stdout
    assert all("test accuracy 0.9" in line and "budget" in line and "\r" not in line for line in lines)
    assert f"{record.training.accuracies[0]:.4f}" in lines[0]


@pytest.mark.mnist
def test_on_a_terminal_the_epoch_line_updates_in_place(tmp_path):
    """Under a real pseudo-terminal, as a student's shell runs it: one line rewritten per epoch."""
    folder = reference_with(tmp_path / "s", "")
    leader, follower = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(tmp_path / "out"),
                              "--only", "train", "--epochs", "2"], stdout=follower, stderr=subprocess.PIPE,
                             cwd=ROOT)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert child.wait(timeout=600) == 0, child.stderr.read()[-2000:]
    text = seen.decode()
    assert "\rtrain: epoch 1/2" in text and "\rtrain: epoch 2/2" in text
    # The first epoch's line is overwritten, not ended: no newline between the two updates.
    between = text[text.index("train: epoch 1/2"):text.index("\rtrain: epoch 2/2")]
    assert "\n" not in between and "\x1b[K" in between
