"""Text from a submission made safe to show: no terminal control sequences, no spreadsheet formulas.

Every string the child sends is cleaned when its frame is decoded (``sandbox/wire.py``) and what
it prints when it is captured (``sandbox/output.py``); the writers clean again what they take
from elsewhere (folder names, reasons) before a terminal, Markdown, JUnit or CSV sees it. HTML
escapes on top of this (Jinja2 autoescape).
"""

from __future__ import annotations

import re

# ESC sequences as terminals parse them: CSI (ESC [ ... final byte), OSC/DCS/PM/APC strings (up to
# BEL or ESC \), and the other escapes (intermediate bytes, then one final byte); then any C0
# control but tab and newline, DEL, the C1 controls, and the Unicode bidirectional overrides and
# isolates (they reorder what a reader sees).
_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)|\x1b[ -/]*[0-~]|"
                        r"\x9b[0-?]*[ -/]*[@-~]|[\x9d\x90\x98\x9e\x9f].*?(?:\x07|\x9c|$)", re.DOTALL)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV injection advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean_text(text: str) -> str:
    """``text`` without terminal control sequences or invisible reordering; newlines and tabs kept."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: cleaned, and a leading formula character quoted with '."""
    text = clean_text(text)
    return "'" + text if text.startswith(_FORMULA_START) else text
