"""A human study's scores on their way to the leaderboard: each study's numbers kept apart
on the job runs and named on the report, with old stores (plain `hype_*`) still reported."""

from conftest import run_cli

from bench.record import JobRecord, open_output_store
from bench.report.leaderboard import build_leaderboards
from bench.report.render import cell, to_csv, to_markdown
from bench.study import store as answers
from bench.study.hype import below_minimum, hype_infinity, hype_time
from bench.study.results import log_study_scores

FD = "fd_pixels_n50_train"  # the primary metric: HYPE columns are not ranked here


def add_job(client, exp, model: str, metrics: dict, reference: bool = False) -> str:
    record = JobRecord(
        job_key=model, fit_key=f"fit-{model}", samples_key="s", suite="s", suite_version="1",
        dataset="digits", dataset_hash="h", model=model, model_ref=model, source="trained",
        seed=0, reference=reference, metrics=metrics,
    )  # fmt: skip
    client.start_job(exp, record, None)
    client.finish_job(record)
    return record.run_id


def inf_scores(error: float, raters: int, judgements: int, lo=None, hi=None) -> dict:
    lo, hi = error if lo is None else lo, error if hi is None else hi
    return {
        "hype_inf": error, "hype_inf_lo": lo, "hype_inf_hi": hi,
        "hype_raters": float(raters), "hype_judgements": float(judgements),
    }  # fmt: skip


def test_two_studies_on_one_output_keep_their_own_scores(tmp_path):
    """Before, each study wrote `hype_inf` onto the same run: the later one replaced the
    earlier one's number on the leaderboard, and nothing said which study it came from."""
    client = open_output_store(tmp_path)
    exp = client.experiment("s", tmp_path / "mlruns" / "artifacts")
    run = add_job(client, exp, "vae", {FD: 3.0})
    log_study_scores(tmp_path, "perfect", {"vae": inf_scores(0.0, 1, 4)}, {"vae": run})
    log_study_scores(tmp_path, "random", {"vae": inf_scores(0.5, 1, 4)}, {"vae": run})
    [board] = build_leaderboards(client.records("s"))
    assert board.table.loc["vae", ("hype_inf/perfect", "mean")] == 0.0
    assert board.table.loc["vae", ("hype_inf/random", "mean")] == 0.5
    md = to_markdown([board])
    assert "hype_inf ↑ (study perfect)" in md and "hype_inf ↑ (study random)" in md


def test_plain_hype_columns_of_an_old_store_still_report(tmp_path):
    """A store written before studies were named holds `hype_inf` etc. without a name: it
    reports as before, beside a named study's columns."""
    client = open_output_store(tmp_path)
    exp = client.experiment("s", tmp_path / "mlruns" / "artifacts")
    add_job(client, exp, "old", {FD: 3.0, **inf_scores(0.25, 2, 40, 0.1, 0.4)})
    run = add_job(client, exp, "new", {FD: 4.0})
    log_study_scores(tmp_path, "named", {"new": inf_scores(0.5, 1, 4)}, {"new": run})
    [board] = build_leaderboards(client.records("s"))
    assert board.table.loc["old", ("hype_inf", "mean")] == 0.25
    assert board.table.loc["new", ("hype_inf/named", "mean")] == 0.5
    md = to_markdown([board])
    assert "| hype_inf ↑ |" in md and "hype_inf ↑ (study named)" in md
    assert "written before genbench named them" in md


def one_board(tmp_path, scores: dict[str, dict], study: str = "s1"):
    """A board of models with FD and one study's scores each."""
    client = open_output_store(tmp_path)
    exp = client.experiment("s", tmp_path / "mlruns" / "artifacts")
    runs = {m: add_job(client, exp, m, {FD: float(i)}) for i, m in enumerate(scores)}
    log_study_scores(tmp_path, study, scores, runs)
    [board] = build_leaderboards(client.records("s"))
    return board


def test_a_hype_score_is_one_cell_with_its_interval_counts_and_flag(tmp_path):
    """Issue 26: one rater, 4 judgements gave hype_inf 1.0 with interval [1.0, 1.0] and no
    warning, over 11 columns (each score, its _lo and _hi, the counts)."""
    wrong = hype_infinity(["r"] * 4, ["a", "b", "c", "d"], [True, False] * 2, [False] * 4)
    board = one_board(tmp_path, {"vae": wrong})
    assert board.metrics == [FD, "hype_inf/s1", "hype_inf_fake/s1", "hype_inf_real/s1"]
    md = to_markdown([board])
    # bold: the best (only) model; the counts are the model's, beside its overall score
    assert "| **1 [1, 1] (1 rater, 4 judgements) ‡** | **1 [1, 1] ‡** | 1 [1, 1] ‡ |" in md
    assert "_lo" not in md and "hype_raters" not in md
    assert "‡: fewer raters than the HYPE paper's 30" in md
    csv = to_csv([board])
    assert csv["hype_inf/s1_below_minimum"].tolist() == [True]
    assert csv["hype_inf/s1_lo"].tolist() == [1.0] and csv["hype_inf/s1_raters"].tolist() == [1]


def test_the_flag_follows_the_papers_raters_and_judgements(tmp_path):
    board = one_board(
        tmp_path,
        {
            "enough": inf_scores(0.3, 30, 3000, 0.25, 0.35),
            "few-raters": inf_scores(0.3, 29, 3000, 0.25, 0.35),
            "few-judgements": inf_scores(0.3, 30, 2999, 0.25, 0.35),
        },
    )
    flags = board.table[("hype_inf/s1", "below_minimum")].to_dict()
    assert flags == {"enough": False, "few-raters": True, "few-judgements": True}
    cells = {m: cell(board, m, "hype_inf/s1") for m in board.models}
    assert cells == {
        "enough": "0.3 [0.25, 0.35] (30 raters, 3000 judgements)",
        "few-raters": "0.3 [0.25, 0.35] (29 raters, 3000 judgements) ‡",
        "few-judgements": "0.3 [0.25, 0.35] (30 raters, 2999 judgements) ‡",
    }
    # HYPE-time's interval resamples raters: only their number counts
    assert not below_minimum("hype_time_ms", 30, 10) and below_minimum("hype_time_ms", 29, 900)


def test_a_hype_time_cell_counts_its_excluded_trials(tmp_path):
    scores = hype_time([300.0, 340.0], n_boot=200) | {
        "hype_judgements": 20.0, "hype_time_excluded": 3.0,
    }  # fmt: skip
    board = one_board(tmp_path, {"vae": scores}, study="timed")
    lo, hi = scores["hype_time_ms_lo"], scores["hype_time_ms_hi"]
    text = cell(board, "vae", "hype_time_ms/timed")
    assert text == f"320 [{lo:.4g}, {hi:.4g}] (2 raters, 20 judgements, 3 excluded) ‡"
    assert "hype_time_ms ↑ (study timed)" in to_markdown([board])


# -- through the CLI: two studies of one suite's output, then `genbench report` ---------


STUDY = ["--trials", "8", "--practice", "0", "--images", "20", "--score"]


def answer_all(db, says_real) -> None:
    """The study's one rater answers every trial: "real" where says_real(trial)."""
    [token] = answers.rater_tokens(db)
    for t in answers.read_trials(db, token):
        real = says_real(t)
        a = answers.Answer(t.index, real, real == t.is_real, None, None, None, False, 900.0)
        assert answers.write_answer(db, token, a)


def test_two_studies_through_the_cli_each_reach_the_report(suite_out):
    out = str(suite_out)
    # a perfect rater (error 0), then one who calls everything real (error 0.5)
    for name, says_real in (("perfect", lambda t: t.is_real), ("gullible", lambda t: True)):
        res = run_cli("study", "--out", out, "--name", name, *STUDY)  # creates the study
        assert res.returncode == 0, res.stderr
        answer_all(suite_out / "study" / f"{name}.sqlite", says_real)
        res = run_cli("study", "--out", out, "--name", name, *STUDY)
        assert res.returncode == 0, res.stderr
    records = {r.model: r for r in open_output_store(suite_out).records("studied")}
    assert records["mean"].metrics["hype_inf/perfect"] == 0.0
    assert records["mean"].metrics["hype_inf/gullible"] == 0.5
    assert "! below the HYPE paper's minimum (30 raters and 3000 judgements)" in res.stdout
    res = run_cli("report", "--out", out)
    assert res.returncode == 0, res.stderr
    board = (suite_out / "leaderboard.md").read_text()
    assert "hype_inf ↑ (study perfect)" in board and "hype_inf ↑ (study gullible)" in board
    assert "| 0 [0, 0] (1 rater, 4 judgements) ‡ |" in board
