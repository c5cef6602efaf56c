"""Progress bars that also work in logs: live on a terminal, a line every 30 s otherwise."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(**kwargs) -> tqdm:
    interactive = sys.stderr.isatty()
    return tqdm(mininterval=0.1 if interactive else 30.0, leave=False, file=sys.stderr, **kwargs)
