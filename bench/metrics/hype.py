"""The columns a human study writes onto job runs (bench/study: `genbench study`)."""

from bench.metrics import register_columns

register_columns(
    "hype",
    {
        "hype_inf": {"direction": "higher", "order": 18.1, "headline": True},
        "hype_inf_fake": ("higher", 18.1),
        "hype_time_ms": ("higher", 18.2),
        "hype_inf_real": (None, 18.3),  # real images called fake: not a model's quality
        # bounds and counts (bench.study.hype SCORES and COUNTS): recorded, and shown inside
        # their score's leaderboard cell
        "hype_inf_lo": (None, 18.5, False),
        "hype_inf_hi": (None, 18.5, False),
        "hype_inf_fake_lo": (None, 18.5, False),
        "hype_inf_fake_hi": (None, 18.5, False),
        "hype_inf_real_lo": (None, 18.5, False),
        "hype_inf_real_hi": (None, 18.5, False),
        "hype_time_ms_lo": (None, 18.5, False),
        "hype_time_ms_hi": (None, 18.5, False),
        "hype_raters": (None, 18.5, False),
        "hype_judgements": (None, 18.5, False),
        "hype_time_excluded": (None, 18.5, False),
        # raters the study's quality controls left out (bench.study.quality)
        "hype_excluded_raters": (None, 18.5, False),
        "hype_excluded_attention": (None, 18.5, False),
        "hype_excluded_fast": (None, 18.5, False),
        "hype_excluded_judgements": (None, 18.5, False),
    },
    summary="Human eye perceptual evaluation (HYPE, Zhou et al. 2019) from `genbench study`: "
    "hype_inf, the share of images raters misjudged (0.5: indistinguishable from real), and "
    "hype_time_ms, the exposure at which raters tell the model's images from real ones; "
    "suites do not compute it.",
)
