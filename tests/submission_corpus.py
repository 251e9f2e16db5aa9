"""Submissions of real student mistakes and of correct-but-different code, for the rubric's tests.

Each is the reference ``mlp.py`` with functions redefined after it (a later ``def`` wins), so
exactly one idea differs from the reference. ``losers`` is the exact set of components that
must lose points; every other graded component must keep full marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.memory import FLOAT64_TRAIN, HEAVY_TRAIN
from grader.contract import COMPONENTS
from helpers import REFERENCE_SOURCE

WITHOUT_TRAINING = ",".join(c for c in COMPONENTS if c != "train")


@dataclass(frozen=True)
class Submission:
    code: str  # appended to the reference (or, with ``files``, the whole mlp.py)
    losers: frozenset[str] = frozenset()
    trains: bool = False  # graded with the full 20-epoch timed training (slow: only where it matters); else
    # with one informational epoch when train must lose points (its verified-step checks still count)
    diagnosis: str = ""  # a phrase the feedback must contain
    files: tuple[tuple[str, str], ...] = ()  # other modules beside mlp.py
    whole: bool = False  # the code is the whole mlp.py (as it is with ``files``)
    verify_train: bool = False  # a bug outside train graded with train's verified-step checks too (one epoch)
    epochs: int = 1  # epochs of the (informational) timed run when train loses points without the full run

    def grade_args(self) -> tuple[str, ...]:
        """How the rubric's tests grade it: the whole timed run for correct code and where it matters, else one
        informational epoch when train's verified steps count, else every component but ``train``."""
        if self.trains or not self.losers:
            return ()
        if "train" in self.losers or self.verify_train:
            return ("--epochs", str(self.epochs))
        return ("--only", WITHOUT_TRAINING)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        source = self.code if self.files or self.whole else REFERENCE_SOURCE + "\n\n# --- the variant ---\n" + self.code
        (folder / "mlp.py").write_text(source)
        for name, text in self.files:
            (folder / name).write_text(text)
        return folder


TRAIN_LOOP = '''
def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total, seen = 0.0, 0
        for start in range({stop}):
            batch = order[start:start + batch_size]
            {batch_line}
            loss, grads = model.loss_and_grads(Xb, yb)
            sgd_step(model.params, grads, lr)
            total += float(loss) * len(batch)
            seen += len(batch)
        history.append(total / seen)
        {print_line}
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
'''


def train_variant(stop: str = "0, n, batch_size", batch_line: str = "Xb, yb = X[batch], y[batch]",
                  print_line: str = "pass", prelude: str = "") -> str:
    return prelude + TRAIN_LOOP.format(stop=stop, batch_line=batch_line, print_line=print_line)


CORRECT = {
    "float32_training": Submission(train_variant(batch_line="Xb, yb = X32[batch], y[batch]").replace(
        "    rng = np.random.default_rng(seed)\n",
        "    rng = np.random.default_rng(seed)\n"
        "    for key in model.params:\n"
        "        model.params[key] = model.params[key].astype(np.float32)\n"
        "    X32, lr = X.astype(np.float32), np.float32(lr)\n", 1), trains=True),
    "einsum": Submission('''
def linear_forward(x, W, b):
    return np.einsum("nd,dm->nm", x, W) + b


def linear_backward(dout, x, W):
    return np.einsum("nm,dm->nd", dout, W), np.einsum("nd,nm->dm", x, dout), np.einsum("nm->m", dout)
''', trains=True),
    "np_where": Submission('''
def relu_forward(z):
    return np.where(z > 0, z, 0.0)


def relu_backward(dout, z):
    return dout * (z > 0)
''', trains=True),
    "he_uniform": Submission('''
def he_init(fan_in, fan_out, rng):
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))
''', trains=True),
    "dict_reassignment": Submission('''
def sgd_step(params, grads, lr):
    for key in list(params):
        params[key] = params[key] - lr * grads[key]
''', trains=True),
    "dropped_last_batch": Submission(train_variant(stop="0, n - batch_size + 1, batch_size"), trains=True),
    # A whole solution written independently of the reference: layer objects, mean over batches.
    "layer_objects": Submission((Path(__file__).parent / "independent_solution.py").read_text(), trains=True,
                                whole=True),
    "chatty_prints": Submission('''
import sys

_quiet_forward = MLP.forward


def _loud_forward(self, X):
    print("forward on a batch of", len(X), "with params", sorted(self.params))
    return _quiet_forward(self, X)


MLP.forward = _loud_forward
print("mlp.py imported; numpy", np.__version__, file=sys.stderr)
''' + train_variant(print_line=(  # the loss on all rows each epoch, through loss_and_grads: no batch, no step
        'full_loss, _ = model.loss_and_grads(X, y)\n'
        '        print(f"epoch {epoch}: loss {history[-1]:.4f}, on all rows {full_loss:.4f}")')), trains=True),
}

# How students write train in a notebook: plotting, progress bars and display at the top (real
# matplotlib and tqdm where the grading environment has them, stand-ins elsewhere), on_epoch by
# keyword, the mean over the batches, and the history returned as an array.
CORRECT["notebook_habits"] = Submission('''
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import clear_output, display
from keras.datasets import mnist
from tqdm.auto import tqdm, trange


def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    history = []
    for epoch in trange(epochs, desc="epochs"):
        order = rng.permutation(n)
        losses = []
        for start in tqdm(range(0, n, batch_size), leave=False):
            batch = order[start:start + batch_size]
            loss, grads = model.loss_and_grads(X[batch], y[batch])
            sgd_step(model.params, grads, lr)
            losses.append(loss)
        history.append(np.mean(losses))
        clear_output(wait=True)
        plt.plot(history)
        plt.title(f"epoch {epoch}: loss {history[-1]:.3f}")
        plt.show()
        if on_epoch is not None:
            on_epoch(epoch=epoch, mean_loss=history[-1])
    return np.array(history)
''', trains=True)
# Every call by keyword, with the student's own parameter names where the contract leaves them free (the
# grader calls loss_and_grads and sgd_step positionally), sgd_step reached through a default argument of
# train (bound when mlp.py is imported), NumPy floats in a tuple for the history.
CORRECT["keyword_calls_step_argument_tuple_history"] = Submission('''
def sgd_step(params, grads, learning_rate):
    for key in params:
        params[key] -= learning_rate * grads[key]


_reference_loss_and_grads = MLP.loss_and_grads


def _loss_and_grads(self, inputs, labels):
    return _reference_loss_and_grads(self, inputs, labels)


MLP.loss_and_grads = _loss_and_grads
''' + train_variant().replace(
    "history.append(total / seen)", "history.append(np.float32(total / seen))").replace(
    "on_epoch(epoch, history[-1])", "on_epoch(mean_loss=history[-1], epoch=epoch)").replace(
    "    return history", "    return tuple(history)").replace(
    "model.loss_and_grads(Xb, yb)", "model.loss_and_grads(inputs=Xb, labels=yb)").replace(
    "sgd_step(model.params, grads, lr)", "update(params=model.params, grads=grads, learning_rate=lr)").replace(
    "seed=0, on_epoch=None):", "seed=0, on_epoch=None, update=sgd_step):"),  # sgd_step bound at import
    trains=True)

# Memory-hungry habits that are still correct: the training set copied to float64 inside train (360 MiB
# of the submission's own), and on top of that a shuffled float64 copy each epoch and one-hot labels for
# every row (about 730 MiB): full marks with the grader's default memory limit.
# One pattern each, shared with the memory benchmark (bench/memory.py) so both measure the same code.
CORRECT["float64_training_set"] = Submission(train_variant().replace(
    "    rng = np.random.default_rng(seed)\n", FLOAT64_TRAIN + "    rng = np.random.default_rng(seed)\n", 1),
    trains=True)
CORRECT["float64_copies_each_epoch"] = Submission(HEAVY_TRAIN, trains=True)

_LAYERS, _NETWORK = REFERENCE_SOURCE.split("\nclass MLP", 1)
CORRECT["multi_file"] = Submission(
    "from collections.abc import Callable, Sequence\n\nimport numpy as np\n\n"
    "from layers import cross_entropy, he_init, linear_backward, linear_forward, relu_backward, relu_forward, "
    "sgd_step, softmax  # noqa: F401\n\n\nclass MLP" + _NETWORK,
    files=(("layers.py", _LAYERS),), trains=True)

BUGGY = {
    "gradient_missing_1_over_n": Submission('''
def cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1.0
    return float(-log_probs[np.arange(n), y].mean()), dlogits
''', frozenset({"cross_entropy", "MLP"}), diagnosis="1/N"),
    "loss_is_sum": Submission('''
_mean_ce = cross_entropy


def cross_entropy(logits, y):
    loss, dlogits = _mean_ce(logits, y)
    return loss * logits.shape[0], dlogits
''', frozenset({"cross_entropy", "MLP"}), diagnosis="sum", verify_train=True),
    "sum_in_loss_and_gradient": Submission('''
_mean_ce = cross_entropy


def cross_entropy(logits, y):
    loss, dlogits = _mean_ce(logits, y)
    return loss * logits.shape[0], dlogits * logits.shape[0]
''', frozenset({"cross_entropy", "MLP"})),
    "per_sample_loss": Submission('''
def cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1.0
    return -log_probs[np.arange(n), y], dlogits / n
''', frozenset({"cross_entropy", "MLP"})),
    "naive_log_softmax": Submission('''
def cross_entropy(logits, y):
    n = logits.shape[0]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    dlogits = p.copy()
    dlogits[np.arange(n), y] -= 1.0
    return float(-np.log(p[np.arange(n), y]).mean()), dlogits / n
''', frozenset({"cross_entropy"}), diagnosis="NaN"),
    "extra_p_times_one_minus_p": Submission('''
_good_ce = cross_entropy


def cross_entropy(logits, y):
    loss, dlogits = _good_ce(logits, y)
    p = softmax(logits)
    return loss, dlogits * p * (1 - p)
''', frozenset({"cross_entropy", "MLP"}), diagnosis="p(1 - p)"),
    "gradient_sign_flipped": Submission('''
_good_ce = cross_entropy


def cross_entropy(logits, y):
    loss, dlogits = _good_ce(logits, y)
    return loss, -dlogits
''', frozenset({"cross_entropy", "MLP"}), diagnosis="sign"),
    "bias_gradient_is_mean": Submission('''
def linear_backward(dout, x, W):
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)
''', frozenset({"linear_backward", "MLP"}), diagnosis="should be the sum"),
    "dW_transposed": Submission('''
def linear_backward(dout, x, W):
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)
''', frozenset({"linear_backward", "MLP"}), diagnosis="transpose"),
    "dx_without_transpose": Submission('''
def linear_backward(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(axis=0)
''', frozenset({"linear_backward", "MLP"})),
    "no_bias_in_forward": Submission('''
def linear_forward(x, W, b):
    return x @ W
''', frozenset({"linear_forward", "MLP"}), diagnosis="bias"),
    "relu_backward_times_z": Submission('''
def relu_backward(dout, z):
    return dout * z
''', frozenset({"relu_backward", "MLP"})),
    "relu_mask_inverted": Submission('''
def relu_backward(dout, z):
    return np.where(z < 0, dout, 0.0)
''', frozenset({"relu_backward", "MLP"}), diagnosis="inverted"),
    "relu_forward_in_place": Submission('''
def relu_forward(z):
    z[z < 0] = 0
    return z
''', frozenset({"relu_forward"}), diagnosis="in-place"),
    "relu_backward_in_place": Submission('''
def relu_backward(dout, z):
    dout[z <= 0] = 0
    return dout
''', frozenset({"relu_backward"}), diagnosis="in-place"),
    "softmax_without_max_shift": Submission('''
def softmax(logits):
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)
''', frozenset({"softmax"}), diagnosis="NaN"),
    "softmax_over_columns": Submission('''
def softmax(logits):
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)
''', frozenset({"softmax"}), diagnosis="columns"),
    "softmax_in_place": Submission('''
def softmax(logits):
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits
''', frozenset({"softmax"}), diagnosis="in-place"),
    "he_uses_fan_out": Submission('''
def he_init(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_out)
''', frozenset({"he_init", "MLP"}), diagnosis="fan_out"),
    "init_unscaled": Submission('''
def he_init(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out))
''', frozenset({"he_init", "MLP"}), diagnosis="unscaled"),
    "init_from_global_rng": Submission('''
def he_init(fan_in, fan_out, rng):
    return np.random.randn(fan_in, fan_out) * np.sqrt(2.0 / fan_in)
''', frozenset({"he_init", "MLP"}), diagnosis="global"),
    "init_float32": Submission('''
def he_init(fan_in, fan_out, rng):
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
''', frozenset({"he_init", "MLP"}), diagnosis="float32"),
    "sgd_rebinds_a_local": Submission('''
def sgd_step(params, grads, lr):
    for key in params:
        p = params[key]
        p = p - lr * grads[key]
''', frozenset({"sgd_step", "train"}), trains=True, diagnosis="rebinds a local name"),
    "sgd_ascent": Submission('''
def sgd_step(params, grads, lr):
    for key in params:
        params[key] += lr * grads[key]
''', frozenset({"sgd_step"}), diagnosis="ascent"),
    "sgd_modifies_grads": Submission('''
def sgd_step(params, grads, lr):
    for key in params:
        grads[key] *= lr
        params[key] -= grads[key]
''', frozenset({"sgd_step"})),
    "random_biases": Submission('''
_good_init = MLP.__init__


def _init(self, sizes=(784, 128, 64, 10), seed=0):
    _good_init(self, sizes, seed)
    for key in self.params:
        if key.startswith("b"):
            self.params[key] = np.random.default_rng(seed + 1).normal(size=self.params[key].shape)


MLP.__init__ = _init
''', frozenset({"MLP"})),
    "shared_params_dict": Submission('''
_SHARED = {}
_good_init = MLP.__init__


def _init(self, sizes=(784, 128, 64, 10), seed=0):
    _good_init(self, sizes, seed)
    _SHARED.update(self.params)
    self.params = _SHARED


MLP.__init__ = _init
''', frozenset({"MLP"}), diagnosis="shared"),
    "forward_without_relu": Submission('''
def _linear_only(self, X):
    self._cache = []
    a = X
    for k in range(1, self.num_layers + 1):
        z = linear_forward(a, self.params[f"W{k}"], self.params[f"b{k}"])
        self._cache.append((a, z))
        a = z
    return a


MLP.forward = _linear_only
''', frozenset({"MLP"})),
    "backward_uses_first_forward": Submission('''
_good_forward = MLP.forward


def _forward_once(self, X):
    if getattr(self, "_frozen", None) is None:
        self._frozen = True
        return _good_forward(self, X)
    saved = self._cache
    out = _good_forward(self, X)
    self._cache = saved
    return out


MLP.forward = _forward_once
''', frozenset({"MLP"})),
    "predict_returns_probabilities": Submission('''
MLP.predict = lambda self, X: softmax(self.forward(X))
''', frozenset({"MLP"})),
    "dx_wrong_only_for_non_square_W": Submission('''
def linear_backward(dout, x, W):
    dx = np.zeros_like(x)
    for d in range(W.shape[1]):  # loops over M where D is meant: the same when W is square
        dx[:, d] = dout @ W[d]
    return dx, x.T @ dout, dout.sum(axis=0)
''', frozenset({"linear_backward", "MLP"})),
    "train_ignores_lr": Submission(train_variant().replace("sgd_step(model.params, grads, lr)",
                                                           "sgd_step(model.params, grads, 0.1)"),
                                   frozenset({"train"}), diagnosis="lr=0.1 (the default)"),
    "train_ignores_batch_size": Submission(train_variant(stop="0, n, 64").replace(
        "order[start:start + batch_size]", "order[start:start + 64]"), frozenset({"train"}), diagnosis="batch_size"),
    "train_reinitialises_the_model": Submission(train_variant().replace(
        "    rng = np.random.default_rng(seed)\n",
        "    model.__init__(seed=seed)\n    rng = np.random.default_rng(seed)\n", 1),
        frozenset({"train"}), diagnosis="re-initialised"),
    "history_of_example_sums": Submission(train_variant().replace("history.append(total / seen)",
                                                                  "history.append(total)"),
                                          frozenset({"train"}), diagnosis="sum over the examples"),
    "history_of_batch_sums": Submission(train_variant().replace(
        "total += float(loss) * len(batch)", "total += float(loss)").replace(
        "history.append(total / seen)", "history.append(total)"), frozenset({"train"}), diagnosis="sum of the batches"),
    "history_of_the_last_batch": Submission(train_variant().replace("history.append(total / seen)",
                                                                    "history.append(float(loss))"),
                                            frozenset({"train"}), diagnosis="last batch"),
    "on_epoch_after_every_batch": Submission(train_variant(batch_line=(
        "Xb, yb = X[batch], y[batch]\n            if on_epoch is not None:\n"
        "                on_epoch(epoch, 0.0)")), frozenset({"train"}), diagnosis="once after each epoch"),
    # Honest on the few rows of the verified-step checks; off the contract on the full data only,
    # where the observed run must see it (each one loses the observation's points, nothing else).
    "lr_decayed_each_epoch": Submission(train_variant(print_line="lr = lr * 0.9 if n > 1000 else lr"),
                                        frozenset({"train"}), epochs=2, diagnosis="train keeps lr=0.1 constant"),
    "batches_in_data_order": Submission(train_variant().replace(
        "order = rng.permutation(n)", "order = rng.permutation(n) if n < 1000 else np.arange(n)"),
        frozenset({"train"}), diagnosis="in the data order"),
    "same_shuffle_every_epoch": Submission(train_variant().replace(
        "order = rng.permutation(n)", "order = np.random.default_rng(seed).permutation(n)"),
        frozenset({"train"}), epochs=2, diagnosis="same order as epoch 1"),
    "half_the_rows_each_epoch": Submission(train_variant().replace(
        "order = rng.permutation(n)", "order = rng.permutation(n)[: n // 2 if n > 1000 else n]"),
        frozenset({"train"}), diagnosis="used 30000 of the 60000 rows"),
    "two_steps_per_batch": Submission(train_variant().replace(
        "            sgd_step(model.params, grads, lr)\n",
        "            sgd_step(model.params, grads, lr)\n            if n > 1000:\n"
        "                sgd_step(model.params, grads, lr)\n"), frozenset({"train"}),
        diagnosis="sgd_step calls for 938 batches"),
    "batches_of_128_always": Submission(train_variant(stop="0, n, 128 if n > 1000 else batch_size").replace(
        "order[start:start + batch_size]", "order[start:start + (128 if n > 1000 else batch_size)]"),
        frozenset({"train"}), diagnosis="batches of 128"),
    "extra_hidden_epochs": Submission(train_variant().replace(
        "for epoch in range(1, epochs + 1):", "for epoch in range(1, epochs + 1 + (2 if n > 1000 else 0)):").replace(
        "        if on_epoch is not None:", "        if on_epoch is not None and epoch <= epochs:"),
        frozenset({"train"}), diagnosis="more steps after its last on_epoch"),
    # Weight decay added to the gradients in a "train mode" that train switches on for the full data only:
    # the steps match the recorded gradients, which are not what loss_and_grads gives for that batch.
    "gradients_other_in_the_timed_run": Submission('''
_plain_loss_and_grads = MLP.loss_and_grads


def _loss_and_grads(self, X, y):
    loss, grads = _plain_loss_and_grads(self, X, y)
    if getattr(self, "training", False):
        for key in grads:
            if key.startswith("W"):
                grads[key] = grads[key] + 1e-2 * self.params[key]
    return loss, grads


MLP.loss_and_grads = _loss_and_grads
''' + train_variant().replace("    rng = np.random.default_rng(seed)\n",
                              "    model.training = X.shape[0] > 1000\n    rng = np.random.default_rng(seed)\n", 1),
        frozenset({"train"}), diagnosis="not what loss_and_grads gives for that batch"),
    "labels_shuffled_apart_from_images": Submission(
        train_variant(batch_line="Xb, yb = X[batch], y[np.sort(batch)]"),
        frozenset({"train"}), trains=True, diagnosis="shuffled apart"),
}


def corpus_params(names) -> list:
    """``names`` as parameters for tests that use the ``corpus_grade`` fixture: slow where the grade is a full
    timed run."""
    corpus = {**CORRECT, **BUGGY}
    return [pytest.param(name, marks=[pytest.mark.slow] if not corpus[name].grade_args() else []) for name in names]
