"""Progress bars that also work in logs: live on a terminal, a line every 30 s otherwise.
Parallel jobs print through `tagged_output`: whole lines, each tagged with its job."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from tqdm.auto import tqdm


def progress_bar(**kwargs) -> tqdm:
    interactive = sys.stderr.isatty()
    return tqdm(mininterval=0.1 if interactive else 30.0, leave=False, file=sys.stderr, **kwargs)


class TaggedLines(io.TextIOBase):
    """A text stream that writes whole lines to `target`, each as `[tag] line`. A
    progress bar's carriage returns end lines too, and blank lines (a bar erasing itself)
    are dropped, so that lines from processes sharing a terminal or log never mix."""

    encoding = "utf-8"

    def __init__(self, target: TextIO, tag: str):
        self.target, self.tag, self.pending = target, tag, ""

    def write(self, text: str) -> int:
        *lines, self.pending = re.split(r"[\r\n]", self.pending + text)
        shown = "".join(f"[{self.tag}] {line.strip()}\n" for line in lines if line.strip())
        if shown:  # one write per call: lines of other processes go between, not inside
            self.target.write(shown)
            self.target.flush()
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def tagged_output(tag: str) -> Iterator[None]:
    """stdout and stderr as TaggedLines while the block runs; what is left of a last,
    unterminated line is written at its end."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TaggedLines(saved[0], tag), TaggedLines(saved[1], tag)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.write("\n")
        sys.stdout, sys.stderr = saved
