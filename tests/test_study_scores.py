"""A human study's scores on their way to the leaderboard: each study's numbers kept apart
on the job runs and named on the report, with old stores (plain `hype_*`) still reported."""

import textwrap

import pytest
from conftest import run_cli

from bench.record import JobRecord, open_output_store
from bench.report.leaderboard import build_leaderboards
from bench.report.render import to_markdown
from bench.study import store as answers
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


# -- through the CLI: two studies of one suite's output, then `genbench report` ---------


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory):
    from bench.job import RunOptions
    from bench.runner import Runner
    from bench.suite import load_suite

    tmp = tmp_path_factory.mktemp("scores-suite")
    (tmp / "s.yaml").write_text(
        textwrap.dedent("""\
        name: studied
        datasets: [digits]
        n_samples: 200
        budget: {steps: 2}
        metrics: [fd_pixels]
        models:
          - name: mean
            model: plugin_models:MeanModel
          - name: copier
    """)
    )
    Runner(load_suite(tmp / "s.yaml"), RunOptions(tmp / "out")).run()
    return tmp / "out"


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
    res = run_cli("report", "--out", out)
    assert res.returncode == 0, res.stderr
    board = (suite_out / "leaderboard.md").read_text()
    assert "hype_inf ↑ (study perfect)" in board and "hype_inf ↑ (study gullible)" in board
