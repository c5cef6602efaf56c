"""The leaderboard rebuilt from an MLflow store that the test fills by hand."""

import math
import os
import re
from stat import S_IMODE

import pandas as pd
import pytest
from conftest import run_cli

from bench.record import JobRecord, Store, default_tracking_uri
from bench.report.leaderboard import best_models, build_leaderboards
from bench.report.render import write_report

FD = "fd_classifier_n1000_train"
COV = "coverage_classifier_k5"


def add_record(store, exp, suite, dataset, model, seed, metrics, reference=False, **result):
    """A job run written through the record, as a finished (or failed) job leaves it."""
    record = JobRecord(
        job_key=f"{model}-{seed}", fit_key=f"fit-{model}-{seed}", samples_key="s",
        suite=suite, suite_version="1", dataset=dataset, dataset_hash="h", model=model,
        model_ref=model, source="trained", seed=seed, reference=reference, metrics=metrics,
    )  # fmt: skip
    store.start_job(exp, record, None)
    if result.get("status") == "FAILED":
        store.fail_job(record.run_id, result["error"])
    else:
        store.finish_job(record)
    return record


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("store")
    client = Store(default_tracking_uri(tmp_path))
    exp = client.experiment("suite-x", tmp_path / "mlruns" / "artifacts")

    def add(model, seed, metrics, reference=False, status="FINISHED", error=None):
        add_record(client, exp, "suite-x", "digits", model, seed, metrics, reference,
                   status=status, error=error)  # fmt: skip

    add("vae", 0, {FD: 10.0, COV: 0.8})
    add("vae", 1, {FD: 12.0, COV: 0.7})
    add("vae", 2, {FD: 14.0, COV: 0.9})
    add("<script>alert(1)</script>", 0, {FD: 5.0, COV: 0.5})
    add("copier", 0, {FD: 0.1, COV: 1.0}, reference=True)
    add("broken", 0, {}, status="FAILED", error="samples contain NaN or inf")
    return client, tmp_path


def test_table_values_mean_std_best_and_order(store):
    client, _ = store
    [board] = build_leaderboards(client.records("suite-x"))
    t = board.table
    assert t.loc["vae", (FD, "mean")] == pytest.approx(12.0)
    assert t.loc["vae", (FD, "std")] == pytest.approx(2.0)  # sample std of 10, 12, 14
    # 95% t-interval half-width with 2 degrees of freedom: t = 4.3027
    assert t.loc["vae", (FD, "ci95")] == pytest.approx(4.302653 * 2.0 / 3**0.5, rel=1e-6)
    assert t.loc["vae", ("seeds", "")] == 3
    assert math.isnan(t.loc["copier", (FD, "std")])
    assert board.primary == FD and board.models == ["<script>alert(1)</script>", "vae"]
    assert board.references == ["copier"]
    # best among learned models: the copier reference is not ranked
    assert board.best[FD] == {"<script>alert(1)</script>"}
    assert board.best[COV] == {"vae"}
    assert list(t.index) == ["<script>alert(1)</script>", "vae", "copier"]
    assert board.failures == [{"model": "broken", "seed": 0, "error": "samples contain NaN or inf"}]


def test_written_files_escape_names_and_mark_best(store):
    client, out = store
    write_report(client, out, "suite-x")
    html = (out / "leaderboard.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = (out / "leaderboard.md").read_text()
    assert "| 2 | vae | 3 | – | 12 ± 4.968 | **0.8 ± 0.2484** |" in md
    assert "| ref | copier | 1 | – | 0.1 | 1 |" in md
    assert "FAILED: broken seed 0: samples contain NaN or inf" in md
    csv = (out / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("suite,dataset,model,reference,seeds")
    assert any(line.startswith("suite-x,digits,vae,False,3") for line in csv)


def test_leaderboard_files_are_readable_by_all_under_umask_022(store, tmp_path):
    """#26 item 6: they were written 0600 (through a temp file) whatever the umask."""
    client, _ = store
    old = os.umask(0o022)
    try:
        write_report(client, tmp_path, "suite-x")
    finally:
        os.umask(old)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_unknown_suite_lists_what_the_store_has(store):
    client, _ = store
    with pytest.raises(ValueError, match="no suite 'other'.*suite-x"):
        client.records("other")


def without_the_suite(folder):
    Store(default_tracking_uri(folder)).experiment("another-suite")
    return "no suite 'suite-x' in this MLflow store"


@pytest.mark.parametrize(
    "make_before",
    [lambda folder: "before: no MLflow store at", without_the_suite],
    ids=["missing", "without-the-suite"],
)
def test_a_compare_folder_that_cannot_be_read_changes_nothing(store, tmp_path, make_before):
    """#26 item 8: --compare was read only after AFTER's leaderboards were rewritten."""
    _, out = store
    message = make_before(tmp_path / "before")
    boards = ("leaderboard.md", "leaderboard.csv", "leaderboard.html")
    for name in boards:
        (out / name).write_text("as it was")
    args = ["--out", str(out), "--suite", "suite-x", "--compare", str(tmp_path / "before")]
    res = run_cli("report", *args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
    assert [(out / name).read_text() for name in boards] == ["as it was"] * 3
    assert not (out / "compare.md").exists()


def test_compare_names_rank_changes_and_moves_beyond_the_interval(store):
    import copy

    from bench.report.compare import compare

    client, _ = store
    [old] = build_leaderboards(client.records("suite-x"))
    assert "No metric moved beyond its uncertainty." in compare([old], [old])
    new = copy.deepcopy(old)
    new.table.loc["vae", (FD, "mean")] = 1.0  # far outside 12 ± 4.97
    new.table.loc["vae", (COV, "mean")] = 0.81  # inside 0.8 ± 0.25
    new.table = new.table.loc[["vae", "<script>alert(1)</script>", "copier"]]
    text = compare([new], [old], after="runs/b", before="runs/a")
    assert "Before: `runs/a`. After: `runs/b`." in text
    assert "- vae: rank 2 -> 1" in text
    assert f"| vae | {FD} | 12 | 1 | 9.937 |" in text
    assert COV not in text.split("| vae |", 1)[1]
    assert "Budget or protocol differ" not in text


def test_compare_lists_single_seed_changes_as_noise_unknown_and_skips_std(store):
    import copy

    from bench.report.compare import compare

    client, _ = store
    [old] = build_leaderboards(client.records("suite-x"))
    new = copy.deepcopy(old)
    name = "<script>alert(1)</script>"  # one seed: no interval
    new.table.loc[name, (FD, "mean")] = 50.0
    std_col = "kid_pixels_n200_std"
    for b, value in ((old, 0.1), (new, 0.9)):
        b.metrics = [*b.metrics, std_col]
        for stat in ("mean", "std", "ci95"):
            b.table[(std_col, stat)] = value if stat == "mean" else 0.0
    text = compare([new], [old])
    moved, unknown = text.split("Noise unknown", 1)
    assert "No metric moved beyond its uncertainty." in moved
    assert f"| {name} | {FD} | 5 | 50 |" in unknown
    assert std_col not in text


def test_compare_reports_budget_and_protocol_differences(tmp_path):
    from bench.report.compare import compare

    def board(folder, n, steps, weights, metrics):
        client = Store(default_tracking_uri(folder))
        exp = client.experiment("suite-x", folder / "mlruns" / "artifacts")
        record = JobRecord(
            job_key="k", fit_key="f", samples_key="s", suite="suite-x", suite_version="1",
            dataset="digits", dataset_hash="h", model="vae", model_ref="vae", source="trained",
            seed=0, metrics=metrics, params={"n_samples": n, "budget_steps": steps},
            features={"classifier_weights_sha256": weights},
        )  # fmt: skip
        client.start_job(exp, record, None)
        client.finish_job(record)
        [b] = build_leaderboards(client.records("suite-x"))
        return b

    before = board(tmp_path / "a", 1000, 300, "aa11", {FD: 3.0, COV: 0.5})
    after = board(tmp_path / "b", 2000, 300, "bb22", {FD: 3.0})
    text = compare([after], [before])
    assert "Budget or protocol differ" in text
    assert "- n_samples: before 1000, after 2000" in text
    assert "- classifier_weights_sha256: before aa11, after bb22" in text
    assert f"- metrics only before: {COV}" in text
    assert "budget_steps" not in text  # the same on both sides
    same = compare([before], [before])
    assert "Budget or protocol differ" not in same


def test_primary_metric_is_a_quality_metric_never_throughput():
    import pandas as pd

    from bench.report.leaderboard import metric_columns, primary_metric

    cols = metric_columns(
        pd.DataFrame(columns=["kid_classifier_n1000", "throughput_img_s_b256_cpu"])
    )
    assert cols == ["throughput_img_s_b256_cpu", "kid_classifier_n1000"]  # speed sits first
    assert primary_metric(cols) == "kid_classifier_n1000"
    assert primary_metric(["throughput_img_s_b256_cpu"]) is None


def test_suite_rank_by_on_the_experiment_ranks_and_breaks_ties(tmp_path):
    client = Store(default_tracking_uri(tmp_path))
    exp = client.experiment("modes", tmp_path / "mlruns" / "artifacts")
    for model, captured, hq, fd in [("a", 8, 0.1, 0.01), ("b", 8, 0.9, 0.5), ("c", 7, 0.95, 0.2)]:
        metrics = {"modes_captured": captured, "modes_hq": hq, "fd_pixels_n100_train": fd}
        add_record(client, exp, "modes", "ring8", model, 0, metrics)

    def order(rank_by=None):
        [board] = build_leaderboards(client.records("modes"), rank_by)
        return board.models, board.rank_by

    assert order() == (["a", "c", "b"], ["fd_pixels_n100_train"])  # the default: first FD
    client.set_rank_by(exp, ["modes_captured", "modes_hq"])
    assert order() == (["b", "a", "c"], ["modes_captured", "modes_hq"])
    assert order(["modes_hq"]) == (["c", "b", "a"], ["modes_hq"])  # --primary overrides
    write_report(client, tmp_path, "modes")
    head = (tmp_path / "leaderboard.md").read_text().splitlines()[2]
    assert "modes_captured ↑ (primary)" in head and "modes_hq ↑ (tie-break)" in head
    with pytest.raises(ValueError, match="--primary 'kid_pixels_n100' is not on the modes/ring8"):
        build_leaderboards(client.records("modes"), ["kid_pixels_n100"])
    client.set_rank_by(exp, ["kid_pixels_n100", "modes_hq"])  # as far as it has them
    assert order() == (["c", "b", "a"], ["modes_hq"])
    client.set_rank_by(exp, ["fd_pixels_n999_train"])  # e.g. a wrong n: no column
    with pytest.raises(ValueError, match="rank_by fd_pixels_n999_train matches no leaderboard"):
        order()


def test_quality_vs_speed_labels_do_not_cover_each_other(monkeypatch):
    import matplotlib.pyplot as plt
    import numpy as np

    from bench.report import plots

    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"")
    names = ["ddpm-ddim100", "ddpm", "ddpm-ddim25", "ddpm-ddim10", "vae", "wgan-gp", "copier"]
    speed = np.array([171.6, 346, 703.7, 1736, 9.97e4, 1.34e5, 9.8e6])  # a DDIM sweep, crowded
    fd = np.array([3.70, 3.73, 3.82, 4.87, 10.39, 10.05, 0.08])
    plots.quality_vs_speed(names, speed, fd, FD, "throughput_img_s_b256_cpu", {"copier"})
    [fig] = figures
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].texts]
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(names)
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    plt.close(fig)


def test_a_disturbed_throughput_figure_is_marked(tmp_path):
    client = Store(default_tracking_uri(tmp_path))
    exp = client.experiment("speed")
    tp, flag, rsd = (
        "throughput_img_s_b4_cpu",
        "throughput_disturbed_b4_cpu",
        "throughput_rsd_b4_cpu",
    )
    add_record(
        client, exp, "speed", "digits", "calm", 0, {FD: 1.0, tp: 100.0, flag: 0.0, rsd: 0.01}
    )
    add_record(client, exp, "speed", "digits", "busy", 0, {FD: 2.0, tp: 50.0, flag: 1.0, rsd: 0.4})
    [board] = write_report(client, tmp_path, "speed")
    assert board.metrics == [FD, tp]  # the spread and the flag are recorded, not columns
    lines = (tmp_path / "leaderboard.md").read_text().splitlines()
    assert "| 50 † |" in next(line for line in lines if "| busy |" in line)
    assert "†" not in next(line for line in lines if "| calm |" in line)
    assert "†: a throughput figure measured while" in (tmp_path / "leaderboard.html").read_text()


def test_the_throughput_metric_records_how_clean_its_figure_is(monkeypatch):
    import torch

    from bench import throughput
    from bench.data import load_dataset
    from bench.metrics.model import score_throughput
    from bench.scoring import ScoringContext

    row = {"batch_size": 8, "img_s": 10.0, "rsd": 0.3, "load": float("nan"), "disturbed": True}
    monkeypatch.setattr(throughput, "sweep", lambda *a, **k: [row])
    data = load_dataset("digits")
    ctx = ScoringContext(data, data.test.x[:4], torch.device("cpu"), model=object())
    assert score_throughput(ctx) == {
        "throughput_img_s_b8_cpu": 10.0,
        "throughput_disturbed_b8_cpu": 1.0,
        "throughput_rsd_b8_cpu": 0.3,  # load unmeasured (NaN): not recorded
    }


def test_every_model_tied_with_the_best_as_printed_is_bold():
    cols = pd.MultiIndex.from_tuples([("reference", ""), (FD, "mean"), (COV, "mean")])
    table = pd.DataFrame(
        [[False, 1.16101e-4, 0.5], [False, 1.16099e-4, 0.9], [False, 2.0, 0.9], [True, 0.0, 1.0]],
        index=["a", "b", "c", "copier"],
        columns=cols,
    )
    best = best_models(table, [FD, COV])
    assert best[FD] == {"a", "b"}  # both print as 1.161e-04
    assert best[COV] == {"b", "c"}  # the reference's 1.0 is not ranked


def test_provenance_names_the_model_of_each_plugin_hash_and_version(tmp_path):
    from bench.report.render import provenance

    client = Store(default_tracking_uri(tmp_path))
    exp = client.experiment("prov", tmp_path / "mlruns" / "artifacts")
    for model, source, version in [("mine", "abc", "mypkg==1.2"), ("theirs", "def", "")]:
        record = JobRecord(
            job_key=model, fit_key=model, samples_key="s", suite="prov", suite_version="1",
            dataset="digits", dataset_hash="h", model=model, model_ref=model, source="trained",
            seed=0, metrics={FD: 1.0}, model_source_sha256=source, model_version=version,
        )  # fmt: skip
        client.start_job(exp, record, None)
        client.finish_job(record)
    [board] = build_leaderboards(client.records("prov"))
    prov = provenance(board)
    assert prov["model_source_sha256"] == "mine: abc, theirs: def"
    assert prov["model_version"] == "mine: mypkg==1.2"  # none recorded for theirs: not shown


def test_report_of_a_store_without_job_runs_writes_nothing(tmp_path):
    """The one-line refusal came after empty leaderboards had replaced the files."""
    client = Store(default_tracking_uri(tmp_path))
    client.experiment("empty", tmp_path / "mlruns" / "artifacts")
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        (tmp_path / name).write_text("as it was")
    res = run_cli("report", "--out", str(tmp_path))
    assert res.returncode == 2 and "holds no genbench job runs" in res.stderr
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert (tmp_path / name).read_text() == "as it was"


def board_tables(html: str) -> list[list[str]]:
    """The column heads of each leaderboard table of the HTML report, in page order."""
    tables = re.findall(r'<table class="board">(.*?)</table>', html, re.S)
    return [re.findall(r"<th>([^<]*)</th>", t) for t in tables]


def test_the_html_board_is_a_headline_table_then_a_table_per_metric_group(store, tmp_path):
    """#26: one table of every raw column was 3,400 px wide; the headline holds the ranking
    and the declared headline columns (fd_*, not coverage), then each metric group's own."""
    client, _ = store
    write_report(client, tmp_path, "suite-x")
    html = (tmp_path / "leaderboard.html").read_text()
    fd, cov = f"{FD} ↓ (primary)", f"{COV} ↑"
    assert board_tables(html) == [
        ["rank", "model", "seeds", "steps", fd],  # the learned models
        ["rank", "model", "seeds", "steps", fd],  # the references
        ["rank", "model", fd],  # every column, metric group fd
        ["rank", "model", cov],  # metric group prdc
    ]
    assert re.findall(r"<h4>([^<]*)</h4>", html) == ["fd", "prdc"]


def test_references_are_never_bold_and_the_caption_says_why(store, tmp_path):
    """#26: the references table bolded nothing and nothing said why (the copier's FD of 0.1
    is the lowest of all, by copying the training set)."""
    client, _ = store
    write_report(client, tmp_path, "suite-x")
    md = (tmp_path / "leaderboard.md").read_text()
    html = (tmp_path / "leaderboard.html").read_text()
    assert "| ref | copier | 1 | – | 0.1 | 1 |" in md
    references = re.findall(r'<tr class="reference">(.*?)</tr>', html)
    assert len(references) == 3 and all("best" not in row for row in references)
    why = "References are not ranked and never bold: they bound the scale"
    assert why in md.split("References (floor and ceiling):", 1)[1]
    assert why in html.split("<h3>References (floor and ceiling)</h3>", 1)[1]


def test_every_report_section_has_its_template():
    from bench.report.page import SECTIONS, TEMPLATES

    assert SECTIONS and len({s.name for s in SECTIONS}) == len(SECTIONS)
    assert [
        s.name for s in SECTIONS if not (TEMPLATES / "sections" / f"{s.name}.html").is_file()
    ] == []


def test_a_section_added_to_the_page_is_rendered_escaped_where_it_stands(store, monkeypatch):
    from bench.report import page
    from bench.report.render import collect_assets

    client, _ = store
    boards = build_leaderboards(client.records("suite-x"))
    shown = page.Section("provenance", lambda board, assets: {"rows": {"<b>": "extra"}})
    monkeypatch.setattr(page, "SECTIONS", [page.SECTIONS[0], shown])
    html = page.to_html(boards, collect_assets(client, boards))
    assert "<td>&lt;b&gt;</td><td>extra</td>" in html
    assert html.index('<table class="board">') < html.index("<h3>Provenance</h3>")
    assert "References" not in html and "<h4>" not in html  # only the sections listed
