"""HYPE-time's adaptive staircase over exposure time, as pure functions of the answers.

`up` correct answers in a row shorten the exposure by one step, one wrong answer lengthens
it by one step (a 3-up/1-down staircase converges near 79.4% correct; Levitt 1971), within
[min_ms, max_ms]. Trials whose measured exposure was off are skipped: they neither move the
staircase nor count towards the threshold."""

from __future__ import annotations

from collections.abc import Sequence

from bench.study.config import StudyConfig


def walk(correct: Sequence[bool], cfg: StudyConfig) -> tuple[list[int], list[int]]:
    """(exposure shown at each answer plus the next one, exposures at reversals)."""
    level, run, last_move = cfg.start_ms, 0, 0
    levels, reversal_levels = [level], []
    for ok in correct:
        move = 0
        if ok:
            run += 1
            if run == cfg.up:
                move, run = -1, 0
        else:
            move, run = 1, 0
        if move:
            if last_move and move != last_move:
                reversal_levels.append(level)
            last_move = move
            level = min(cfg.max_ms, max(cfg.min_ms, level + move * cfg.step_ms))
        levels.append(level)
    return levels, reversal_levels


def next_exposure(correct: Sequence[bool], cfg: StudyConfig) -> int:
    return walk(correct, cfg)[0][-1]


def threshold(correct: Sequence[bool], cfg: StudyConfig) -> float:
    """Mean exposure at the last `cfg.reversals` reversals; with fewer than two reversals
    (the staircase sat at a bound), the exposure it would show next."""
    levels, reversal_levels = walk(correct, cfg)
    if len(reversal_levels) < 2:
        return float(levels[-1])
    last = reversal_levels[-cfg.reversals :]
    return sum(last) / len(last)
