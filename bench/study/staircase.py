"""HYPE-time's adaptive staircase over exposure time, as pure functions of the answers.

`up` correct answers in a row shorten the exposure by one step, one wrong answer lengthens
it by one step (a 3-up/1-down staircase converges near 79.4% correct; Levitt 1971), within
[min_ms, max_ms]. Trials whose measured exposure was off are skipped: they neither move the
staircase nor count towards the threshold.

The staircase moves in blocks, so that its exposures do not tell a rater which answers were
wrong: each rater's trials of a model are taken `block` at a time, every trial of a block is
shown at the level the staircase had when the block began, and the block's answers then
enter the staircase as its counts of right and wrong answers, arranged in an order drawn
from the study's secret. Exposures are therefore a function of how many answers of each
block were wrong, never of which."""

from __future__ import annotations

from collections.abc import Sequence

from bench.study.config import StudyConfig
from bench.study.secret import keyed_rng


def staircase_input(
    answers: Sequence[tuple[bool, bool]], cfg: StudyConfig, secret: bytes, *key: str
) -> list[bool]:
    """What the staircase walks: (correct, flagged) of one rater's answers to one model's
    trials in trial order (whole blocks), as the right/wrong counts of each block of
    `cfg.block` in a secret order keyed by the block's number and `key`; flagged answers
    left out."""
    out: list[bool] = []
    for start in range(0, len(answers), cfg.block):
        kept = [correct for correct, flagged in answers[start : start + cfg.block] if not flagged]
        counts = sorted(kept)  # the wrong ones first: nothing of the trial order is left
        order = keyed_rng(secret, "staircase", *key, str(start // cfg.block))
        out += [counts[i] for i in order.permutation(len(counts))]
    return out


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
