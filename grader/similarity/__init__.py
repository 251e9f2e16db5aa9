"""``python -m grader similarity DIR``: which submissions are suspiciously alike. Advisory: no grade changes.

Built on ``copydetect`` (maintained; the MOSS method): each submission's code is tokenised with
Pygments, identifiers are normalised (so renaming variables and functions changes nothing), and
k-grams of tokens are fingerprinted by winnowing (position independent, so reordering functions
changes nothing either). The template's fingerprints are subtracted as boilerplate first: the
skeleton every student starts from never counts. A pair's score is the larger of the two shares
of each one's remaining code found in the other.

Writes ``similarity.csv`` (pairs at or above the threshold: score, shares, the shared line ranges)
and ``similarity.json``, which the class page (``grader/summary``) shows as side-by-side views.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import time
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

try:  # the optional 'similarity' extra
    import copydetect.utils
    from copydetect import CodeFingerprint, compare_files
except ImportError:
    CodeFingerprint = compare_files = None

from grader.errors import GraderError, UsageError
from grader.notebook import notebook_module
from grader.report.results_json import write_atomically
from grader.submission import UnusableSubmission, module_dir, submission_files
from grader.text import clean_text, csv_cell

NOISE_TOKENS = 25  # k-grams shorter than this are never reported (copydetect's default noise threshold)
GUARANTEE_TOKENS = 30  # any shared run this long is always found (its default guarantee threshold)
THRESHOLD = 0.6  # see docs/similarity.md: renamed copies score above 0.9, independent solutions below 0.3
TOP_PAIRS = 10  # shown side by side on the class page
CONTEXT_LINES = 1


def stable_kgram_hashes(text: str, k: int) -> np.ndarray:
    """The hash of every k-gram of ``text`` (int64), the same in every process.

    copydetect hashes k-grams with Python's ``hash()``, which is salted per process: winnowing then
    keeps other k-grams in each run, and the same class screened twice (or here and on a Dask
    client) gave other shares. A screening must be reproducible, so this replaces it.
    """
    return np.array([int.from_bytes(hashlib.blake2b(text[offset:offset + k].encode(), digest_size=8).digest(),
                                    "little", signed=True) for offset in range(len(text) - k + 1)], dtype=np.int64)


if CodeFingerprint is not None:
    copydetect.utils.hashed_kgrams = stable_kgram_hashes


@dataclass
class Pair:
    """Two submissions' overlap. Line ranges are 1-based and inclusive, in each one's own code."""

    a: str
    b: str
    score: float
    share_a: float  # of a's code (boilerplate aside) found in b
    share_b: float
    lines_a: list[tuple[int, int]]
    lines_b: list[tuple[int, int]]


def submission_code(folder: Path) -> str:
    """The module a submission grades as (mlp.py, or its notebook's defining cells) and its other .py files."""
    where = module_dir(folder)
    main = where / "mlp.py"
    code = main.read_text(encoding="utf-8", errors="replace") if main.is_file() else \
        notebook_module(where / "mlp.ipynb").source
    others = [path.read_text(encoding="utf-8", errors="replace") for relative, path in submission_files(where)
              if relative.endswith(".py") and relative != "mlp.py"]
    return "\n\n".join([code, *others])


def _fingerprint(name: str, code: str, boilerplate: np.ndarray, window: int) -> CodeFingerprint:
    return CodeFingerprint(f"{name}.py", NOISE_TOKENS, window, boilerplate=boilerplate, fp=io.StringIO(code),
                           language="python")


def _line_ranges(code: str, slices) -> list[tuple[int, int]]:
    """The 1-based inclusive line ranges that copydetect's character slices cover."""
    ranges: list[tuple[int, int]] = []
    if len(slices) != 2:  # no overlap: copydetect gives an empty array
        return ranges
    for start, end in zip(*slices):
        first, last = code.count("\n", 0, int(start)) + 1, code.count("\n", 0, max(int(end) - 1, 0)) + 1
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
    return ranges


def compare(codes: dict[str, str], template: str | None = None) -> list[Pair]:
    """Every pair of ``codes`` (name -> code), most similar first; ``template``'s code is boilerplate."""
    if compare_files is None:
        raise GraderError("similarity needs copydetect: pip install 'mlp-autograder[similarity]'")
    # Every k-gram of the template (a window of 1, as copydetect does for boilerplate), not just the winnowed ones.
    boilerplate = np.unique(np.array(sorted(_fingerprint("template", template, np.array([]), 1).hashes))) \
        if template else np.array([])
    window = GUARANTEE_TOKENS - NOISE_TOKENS + 1
    prints = {name: _fingerprint(name, code, boilerplate, window) for name, code in codes.items()}
    pairs = []
    for a, b in combinations(sorted(prints), 2):
        _, (share_a, share_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
        pairs.append(Pair(a, b, round(float(max(share_a, share_b)), 4), round(float(share_a), 4),
                          round(float(share_b), 4), _line_ranges(codes[a], slices_a), _line_ranges(codes[b], slices_b)))
    return sorted(pairs, key=lambda pair: (-pair.score, pair.a, pair.b))


def views(pair: Pair, codes: dict[str, str]) -> dict:
    """What the class page shows of a pair: each side's lines, the shared ones marked, with some context."""
    def side(code: str, ranges: list[tuple[int, int]]) -> list[tuple[int, str, bool]]:
        lines = code.splitlines()
        shared = {n for first, last in ranges for n in range(first, last + 1)}
        shown = {n for s in shared for n in range(s - CONTEXT_LINES, s + CONTEXT_LINES + 1) if 1 <= n <= len(lines)}
        return [(n, clean_text(lines[n - 1])[:200], n in shared) for n in sorted(shown)]

    return {**asdict(pair), "view_a": side(codes[pair.a], pair.lines_a), "view_b": side(codes[pair.b], pair.lines_b)}


def _ranges_text(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(f"{first}-{last}" if last > first else str(first) for first, last in ranges)


def write_similarity(out: Path, pairs: list[Pair], codes: dict[str, str], threshold: float) -> list[Pair]:
    """similarity.csv and similarity.json in ``out``; the pairs at or above ``threshold``."""
    flagged = [pair for pair in pairs if pair.score >= threshold]
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["student_a", "student_b", "score", "share_a", "share_b", "lines_a", "lines_b"])
    for pair in flagged:
        writer.writerow([csv_cell(pair.a), csv_cell(pair.b), f"{pair.score:.3f}", f"{pair.share_a:.3f}",
                         f"{pair.share_b:.3f}", _ranges_text(pair.lines_a), _ranges_text(pair.lines_b)])
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "similarity.csv", stream.getvalue())
    document = {"threshold": threshold, "pairs": len(pairs), "submissions": len(codes),
                "top": [views(pair, codes) for pair in flagged[:TOP_PAIRS]]}
    write_atomically(out / "similarity.json", json.dumps(document, indent=1) + "\n")
    return flagged


def class_codes(submissions: Path) -> dict[str, str]:
    """Each student folder's code; folders that cannot be read are named on stderr and left out."""
    codes = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            codes[folder.name] = submission_code(folder)
        except (UnusableSubmission, OSError) as exc:
            print(clean_text(f"similarity: {folder.name} left out ({exc})"), file=sys.stderr)
    return codes


def main(submissions: Path, out: Path | None = None, threshold: float = THRESHOLD,
         template: Path | None = None) -> int:
    """Compare every pair of student folders in ``submissions``; write the files into ``out``."""
    if not 0 < threshold <= 1:
        raise UsageError("--threshold must be above 0 and at most 1")
    if not submissions.is_dir():
        raise UnusableSubmission(f"{submissions}: no such directory")
    template = template or Path("student_template") / "mlp.py"
    skeleton = template.read_text(encoding="utf-8") if template.is_file() else None
    codes = class_codes(submissions)
    if len(codes) < 2:
        raise UnusableSubmission(f"{submissions}: fewer than two submissions to compare")
    started = time.monotonic()
    pairs = compare(codes, skeleton)
    flagged = write_similarity(out or submissions, pairs, codes, threshold)
    seconds = time.monotonic() - started
    print(f"{len(pairs)} pairs compared in {seconds:.1f} s ({len(pairs) / max(seconds, 1e-9):.0f} per second)"
          f"{'' if skeleton else ' (no template found: nothing subtracted as boilerplate)'}; "
          f"{len(flagged)} at or above {threshold:g}: {(out or submissions) / 'similarity.csv'}")
    return 0
