"""Memory in the sandbox: the training set exists once, the child's limit counts what it really uses,
and running out of memory is told in one line that names the allocation, the limit and whose side failed.

Submissions are the reference ``mlp.py`` with functions added or redefined after it, written the way
students write them (``X = X.astype(np.float64)`` at the top of train, a shuffled copy each epoch).
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from grader.data import load_mnist
from grader.sandbox import Callback, CallFailed, Limits, Sandbox
from grader.sandbox.memory import process_memory
from helpers import reference_with
from submission_corpus import CORRECT

GRADESCOPE = Limits(call_timeout=120.0, budget=600.0, memory_bytes=400 << 20)  # run_autograder's default
MIB = 1 << 20


@pytest.fixture(scope="module")
def shared_mnist():
    """MNIST as a grade loads it: the training images in sealed shared memory."""
    return load_mnist(shared=True)


@pytest.mark.mnist
def test_train_gets_a_normal_array_the_grader_shares_without_copying(tmp_path, shared_mnist):
    submission = reference_with(tmp_path / "s", '''
def look(X, y, report):
    report(X.dtype.str, list(X.shape), bool(X.flags.writeable), bool(X.flags.c_contiguous), y.dtype.str,
           float(X.sum(dtype=np.float64)))
    X[0] = 1.0  # a write lands in a page of the submission's own, never in the grader's
    return float(X[0].sum())
''')
    x_train, y_train = shared_mnist.x_train, shared_mnist.y_train
    seen, held = [], []
    with Sandbox(submission, GRADESCOPE) as box:

        def report(*values):
            seen.append(values)
            held.append(process_memory(box._child.process.pid))  # while the child holds X, every page read

        assert box.call("look", x_train, y_train, Callback(report, name="report")) == 784.0
        assert box.call("look", x_train, y_train, Callback(report, name="report")) == 784.0  # X is fresh each call
    total = float(x_train.sum(dtype=np.float64))
    assert seen == [("<f4", [60000, 784], True, True, "<i8", total)] * 2
    assert not x_train.flags.writeable and x_train[0].sum() < 784.0  # the grader's own copy is untouched
    anonymous, _ = held[0]
    assert anonymous < 64 * MIB, f"the child holds {anonymous / MIB:.0f} MiB of its own: a copy of the 180 MiB?"


@pytest.mark.mnist
def test_a_float64_copy_in_train_fits_gradescopes_limit_and_two_do_not(tmp_path, shared_mnist):
    x_train, y_train = shared_mnist.x_train, shared_mnist.y_train
    one = reference_with(tmp_path / "one", CORRECT["float64_training_set"].code)
    with Sandbox(one, GRADESCOPE) as box:
        model = box.call("MLP", seed=0)
        losses = box.call("train", model, x_train, y_train, epochs=1, timeout=300)
    assert len(losses) == 1 and losses[0] < 0.5

    # The float64 copy and a shuffled one each epoch need about 720 MiB: over 400 MiB, one line says so.
    heavy = reference_with(tmp_path / "heavy", CORRECT["float64_copies_each_epoch"].code)
    with Sandbox(heavy, GRADESCOPE) as box:
        model = box.call("MLP", seed=0)
        with pytest.raises(CallFailed) as failed:
            box.call("train", model, x_train, y_train, epochs=1, timeout=300)
    assert failed.value.kind == "memory"
    assert failed.value.message == ("ran out of memory: Unable to allocate 359 MiB for an array with shape "
                                    "(60000, 784) and data type float64; the submission may use 400 MiB")
    assert "X, Y = X[perm], Y[perm]" in failed.value.detail  # the traceback shows the student's line


def test_a_10_gb_allocation_is_stopped_with_a_note_naming_it(tmp_path):
    submission = reference_with(tmp_path / "s", '''
def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    X = X.astype(np.float64)
    pairs = X[:, :, None] * X[:, None, :]  # every example's pixel-pair products, as extra features
    return [0.0] * epochs
''')
    with Sandbox(submission, Limits(call_timeout=30.0, budget=60.0)) as box:
        model = box.call("MLP", seed=0)
        with pytest.raises(CallFailed) as failed:
            box.call("train", model, np.zeros((2000, 784), np.float32), np.zeros(2000, np.int64))
        assert box.call("relu_forward", np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]  # the same child goes on
        assert box.children_started == 1
    assert failed.value.kind == "memory" and "\n" not in failed.value.message
    assert failed.value.message == ("ran out of memory: Unable to allocate 9.16 GiB for an array with shape "
                                    "(2000, 784, 784) and data type float64; the submission may use 3072 MiB")


HOARD = '''
_hoard = []


def hoard(mib):
    _hoard.append(np.ones(mib << 17))  # float64: 2**17 of them make a MiB
    return len(_hoard)
'''


def test_when_the_grader_cannot_receive_the_inputs_the_report_says_so(tmp_path):
    submission = reference_with(tmp_path / "s", HOARD)
    limits = Limits(call_timeout=30.0, budget=120.0, memory_bytes=256 << 20)
    with Sandbox(submission, limits) as box:
        assert box.call("hoard", 230) == 1
        with pytest.raises(CallFailed) as failed:
            box.call("relu_forward", np.ones((4096, 2048)))  # 64 MiB in the frame: more than is left
        np.testing.assert_array_equal(box.call("relu_forward", np.array([-1.0, 3.0])), [0.0, 3.0])  # a fresh child
    assert failed.value.kind == "memory"
    assert failed.value.message == ("the grader's side of the submission's process could not allocate 64 MiB to "
                                    "receive the inputs: the submission holds the rest of its 256 MiB")
    assert box.children_started == 2 and "exited with status" not in " ".join(box.strength.restarts)


@pytest.mark.mnist
def test_when_the_grader_cannot_map_the_training_set_the_report_says_so(tmp_path, shared_mnist):
    submission = reference_with(tmp_path / "s", '''
_kept = []


def keep(X):
    _kept.append(X)  # the training set, kept past the call
    return len(_kept)
''')
    with Sandbox(submission, Limits(call_timeout=30.0, budget=120.0, memory_bytes=64 << 20)) as box:
        assert box.call("keep", shared_mnist.x_train) == 1
        with pytest.raises(CallFailed) as failed:
            box.call("keep", shared_mnist.x_train)  # a second mapping: the loan for the first is still out
    assert failed.value.kind == "memory"
    assert failed.value.message == ("the grader's side of the submission's process could not map the 179 MiB of "
                                    "training data it shares with the grader: the submission holds the rest of "
                                    "its 64 MiB")


def test_when_the_grader_cannot_encode_the_reply_the_report_says_so(tmp_path):
    submission = reference_with(tmp_path / "s", '''
def every_other_column():
    global _big
    _big = np.ones((3200, 8192))  # 200 MiB
    return _big[:, ::2]  # not contiguous: the grader's side must copy 100 MiB to send it
''')
    with Sandbox(submission, Limits(call_timeout=30.0, budget=120.0, memory_bytes=256 << 20)) as box:
        with pytest.raises(CallFailed) as failed:
            box.call("every_other_column")
    assert failed.value.kind == "memory"
    assert failed.value.message == ("the grader's side of the submission's process could not allocate 100 MiB to "
                                    "send the result back: the submission holds the rest of its 256 MiB")


def test_memory_that_rlimit_data_cannot_see_is_stopped_by_the_watchdog(tmp_path):
    submission = reference_with(tmp_path / "s", '''
import mmap
import time


def shared_scratch():
    region = mmap.mmap(-1, 768 << 20)  # shared and anonymous: no private memory, the watchdog sees it
    for offset in range(0, len(region), mmap.PAGESIZE):
        region[offset] = 1
    time.sleep(60)
''')
    started = time.monotonic()
    with Sandbox(submission, Limits(call_timeout=60.0, budget=120.0, memory_bytes=256 << 20)) as box:
        with pytest.raises(CallFailed) as failed:
            box.call("shared_scratch")
    assert time.monotonic() - started < 30
    assert failed.value.kind == "memory"
    assert re.fullmatch(r"ran out of memory: the submission's processes held \d+ MiB in all, more than the 256 MiB "
                        r"it may use \(and 128 MiB for Python and NumPy\); they were stopped", failed.value.message)


def test_threads_and_reserved_address_space_cost_the_submission_nothing(tmp_path):
    """The old address-space cap counted every thread's stack and malloc arena: four idle threads
    (progress bars' monitors) took 290 MiB of it. Memory counts what is committed, so they cost little."""
    submission = reference_with(tmp_path / "s", HOARD + '''
import threading
import time

for _ in range(4):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
''')
    with Sandbox(submission, Limits(call_timeout=30.0, budget=60.0, memory_bytes=256 << 20)) as box:
        assert box.call("hoard", 200) == 1  # 200 MiB next to four threads, within 256 MiB
