"""The labels of a study's samples files (`--samples LABEL=PATH`), checked before anything
is read or written: they are kept in the study's database one per line, so each is a
suite model name's kind of word, and none is the real images' name. (The study's own
name is checked by results.check_study_name.)"""

from __future__ import annotations

import re
from pathlib import Path

from bench.errors import UserError
from bench.study.plan import REAL

MAX_NAME = 100
LABEL = re.compile(r"[\w.\-+]+")  # what a suite's model names may hold


def samples_args(args: list[str]) -> list[tuple[str, Path]]:
    """(label, path) of each `LABEL=PATH` or `PATH` argument (label: the file's stem)."""
    out: list[tuple[str, Path]] = []
    for arg in args:
        label, _, path = arg.partition("=") if "=" in arg else ("", "", arg)
        label = label or Path(path).stem
        check_label(label, arg)
        if label in (seen for seen, _ in out):
            raise UserError(f"two samples files are labelled {label!r}; use LABEL=PATH")
        out.append((label, Path(path)))
    return out


def check_label(label: str, arg: str) -> None:
    if not LABEL.fullmatch(label) or len(label) > MAX_NAME:
        raise UserError(
            f"--samples {arg!r}: its label {label!r} may hold only letters, digits, '_', '.', "
            f"'-' and '+', at most {MAX_NAME} characters; pass LABEL=PATH"
        )
    if label == REAL:
        raise UserError(
            f"--samples {arg!r}: the label {REAL!r} names the study's real images; pass "
            "another LABEL=PATH"
        )
