"""The report's sweep and class-conditional sections, from records written by hand: the
guidance sweep (figure and table, best w per metric), a truncation sweep on an unconditional
board, and the per-class breakdown (worst class marked)."""

import base64
import html
import json
import math
import re

import numpy as np
import pytest

from bench.record import JobRecord, open_output_store
from bench.report.conditional import best_value, option_sweeps, worst_class
from bench.report.leaderboard import build_leaderboards
from bench.report.render import write_report

FD = "fd_classifier_n1000_train"
INTRA = "intra_fd_classifier_n1000_train"
WORST = "intra_fd_worst_classifier_n1000_train"
ACC = "cond_accuracy"
PREC = "precision_classifier_k3"
REC = "recall_classifier_k3"
K = 10

# One trained guided model at three w; each metric is best at a different w.
SWEEP = {
    0.0: {FD: 6.0, INTRA: 30.0, WORST: 60.0, ACC: 0.55, PREC: 0.60, REC: 0.70},
    1.0: {FD: 4.0, INTRA: 20.0, WORST: 50.0, ACC: 0.80, PREC: 0.70, REC: 0.60},
    3.0: {FD: 9.0, INTRA: 25.0, WORST: 55.0, ACC: 0.95, PREC: 0.85, REC: 0.40},
}
BEST = {FD: 1.0, INTRA: 1.0, ACC: 3.0, PREC: 3.0, REC: 0.0}
# One trained StyleGAN at three truncations psi: (FD, precision, recall).
TRUNCATION = {1.0: (4.0, 0.6, 0.7), 0.7: (6.0, 0.8, 0.5), 0.5: (9.0, 0.9, 0.3)}


def per_class(worst: int, rng: np.random.Generator) -> dict:
    """A breakdown whose class `worst` has the largest intra-class FD and lowest accuracy."""
    fd = rng.uniform(5, 15, K)
    acc = rng.uniform(0.7, 0.99, K)
    fd[worst], acc[worst] = 40.0, 0.2
    return {"classes": list(range(K)), "intra_fd_classifier": fd.tolist(), ACC: acc.tolist()}


def add(store, exp, suite, model, metrics, fit, options=None, report_data=None, ref=False,
        sample_options=None, sweep_options=None):  # fmt: skip
    record = JobRecord(
        job_key=f"{suite}-{model}", fit_key=fit, samples_key=f"s-{model}", suite=suite,
        suite_version="1", dataset="digits", dataset_hash="h", model=model, model_ref=model,
        source="trained", seed=0, reference=ref, metrics=metrics,
        params={f"option.{k}": v for k, v in (options or {}).items()},
        artifacts={"report_data.json": json.dumps(report_data).encode()} if report_data else {},
        sample_options=json.dumps(sample_options) if sample_options else None,
        sweep_options=json.dumps(sweep_options) if sweep_options is not None else None,
    )  # fmt: skip
    store.start_job(exp, record, None)
    store.finish_job(record)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("cond")
    store = open_output_store(out)
    rng = np.random.default_rng(0)
    exp = store.experiment("cond", out / "mlruns" / "artifacts")
    for w, values in SWEEP.items():
        data = {"per_class": per_class(worst=3, rng=rng)} if w == 1.0 else None
        # w=0 is the model's default: the entry does not set it, the model reports it
        options = {"steps": 20} if w == 0.0 else {"guidance": w, "steps": 20}
        add(store, exp, "cond", f"cddpm-w{w:g}", values, "fit-cddpm", options, data,
            sample_options={"steps": 20, "guidance": w})  # fmt: skip
    # the same trained model with fewer DDIM steps: one w there, so no second sweep
    add(store, exp, "cond", "cddpm-w1-ddim5", {**SWEEP[1.0], FD: 12.0}, "fit-cddpm",
        {"guidance": 1.0, "steps": 5})  # fmt: skip
    add(store, exp, "cond", "cvae", {**SWEEP[0.0], FD: 15.0}, "fit-cvae", {},
        {"per_class": per_class(worst=7, rng=rng)})  # fmt: skip
    add(store, exp, "cond", "label-shuffler", {FD: 0.1, ACC: 0.1}, "fit-ls", {},
        {"per_class": per_class(worst=0, rng=rng)}, ref=True)  # fmt: skip
    # an unconditional suite with a DDIM step sweep on one trained model
    uexp = store.experiment("uncond", out / "mlruns" / "artifacts")
    for steps, fd in ((10, 5.0), (50, 4.0)):
        add(store, uexp, "uncond", f"ddpm-ddim{steps}", {FD: fd, PREC: 0.5, REC: 0.5},
            "fit-ddpm", {"steps": steps}, {"class_histogram": None},
            sample_options={"steps": steps}, sweep_options={})  # fmt: skip
    # a truncation sweep its model declares (psi = 1 is its default: no entry option)
    for psi, (fd, prec, rec) in TRUNCATION.items():
        add(store, uexp, "uncond", f"stylegan-psi{psi:g}", {FD: fd, PREC: prec, REC: rec},
            "fit-stylegan", {} if psi == 1.0 else {"truncation": psi},
            sample_options={"truncation": psi, "noise": "random"},
            sweep_options={"truncation": "psi"})  # fmt: skip
    write_report(store, out / "cond", "cond")
    write_report(store, out / "uncond", "uncond")
    return store, out


def test_best_value_follows_each_metric_direction():
    ws = [0.0, 1.0, 3.0]
    assert best_value(ws, [6.0, 4.0, 9.0], FD) == 1.0  # lower
    assert best_value(ws, [0.55, 0.8, 0.95], PREC) == 3.0  # higher
    assert best_value(ws, [0.9, 0.9, 0.2], PREC) == 0.0  # a tie: the smaller w
    assert best_value(ws, [math.nan, 4.0, 9.0], FD) == 1.0
    assert best_value(ws, [3.0, 1.0, 2.0], FD) == 1.0
    assert best_value(ws, [math.nan] * 3, FD) is None
    assert best_value(ws, [1.0, 2.0, 3.0], "cond_accuracy_real_ceiling") is None


def test_worst_class_follows_each_metric_direction():
    classes = [0, 1, 2, 3]
    assert worst_class(classes, [5.0, 9.0, math.nan, 1.0], "intra_fd_classifier") == 1
    assert worst_class(classes, [0.9, 0.4, 0.4, 1.0], ACC) == 1  # a tie: the first
    assert worst_class(classes, [0.9, 0.4, 0.1, 1.0], "cond_accuracy_real_ceiling") is None
    assert worst_class(classes, [1.0, 1.0, 1.0, 1.0], ACC) is None  # no class fails more


def test_the_sweep_is_the_guided_rows_of_one_trained_model(report):
    store, _ = report
    [board] = build_leaderboards(store.records("cond"))
    [sweep] = option_sweeps(board)  # older records (no declaration): guidance
    assert sweep.models == ["cddpm-w0", "cddpm-w1", "cddpm-w3"]  # not the ddim5 row
    assert (sweep.option, sweep.symbol, sweep.values) == ("guidance", "w", [0.0, 1.0, 3.0])
    assert sweep.fd == FD and sweep.against == [ACC, PREC, REC]
    assert sweep.metrics == [FD, INTRA, ACC, PREC, REC]
    assert sweep.best == BEST


def test_the_html_report_has_the_sweep_figure_table_and_per_class_tables(report):
    _, out = report
    text = (out / "cond" / "leaderboard.html").read_text()
    assert "<h3>Guidance sweep: cddpm-w0, cddpm-w1, cddpm-w3</h3>" in text
    [png] = re.findall(r'src="data:image/png;base64,([^"]+)" alt="guidance sweep"', text)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    sweep = text.split("<h3>Guidance sweep", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", sweep.split("<tbody>", 1)[1])
    assert [re.findall(r"<td>([^<]*)</td>", r)[:2] for r in rows] == [
        ["0", "cddpm-w0"], ["1", "cddpm-w1"], ["3", "cddpm-w3"],
    ]  # fmt: skip
    best = [re.findall(r'<td class="best">([^<]*)</td>', r) for r in rows]
    assert best == [["0.7"], ["4", "20"], ["0.95", "0.85"]]  # recall; FD, intra; acc, precision

    breakdown = text.split("<h3>Per-class breakdown</h3>", 1)[1].split("<h3>", 1)[0]
    tables = breakdown.split("<h4>")[1:]
    assert [t.split("</h4>")[0] for t in tables] == ["intra_fd_classifier ↓", f"{ACC} ↑"]
    for table in tables:
        head = re.findall(r"<th>([^<]*)</th>", table)
        assert head == ["class", "cddpm-w1", "cvae", "label-shuffler (ref)"]
        rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1])
        assert len(rows) == K
        marked = {
            (i, j)
            for i, r in enumerate(rows)
            for j, c in enumerate(re.findall(r"<td( class=\"worst\")?>", r))
            if c
        }
        assert marked == {(3, 1), (7, 2), (0, 3)}  # each model's planted worst class
    assert "Marked (red): each model's worst class" in html.unescape(text)
    assert "red in the HTML report" not in text  # #26: the markdown's caption


def test_the_html_headline_holds_the_ranking_and_the_declared_headline_columns(report):
    _, out = report
    text = (out / "cond" / "leaderboard.html").read_text()
    first = text.split('<table class="board">', 2)[1]
    heads = re.findall(r"<th>([^<]*)</th>", first)
    assert heads == ["rank", "model", "seeds", "steps", f"{FD} ↓ (primary)", f"{PREC} ↑",
                     f"{REC} ↑", f"{ACC} ↑"]  # fmt: skip


def test_the_markdown_report_has_the_sweep_and_per_class_tables(report):
    _, out = report
    md = (out / "cond" / "leaderboard.md").read_text()
    sweep = md.split("### Guidance sweep: cddpm-w0, cddpm-w1, cddpm-w3\n", 1)[1]
    lines = sweep.strip().splitlines()[:5]
    assert lines[0].startswith("| w | model | fd_classifier_n1000_train ↓ |")
    assert lines[2].startswith("| 0 | cddpm-w0 | 6 | 30 | 0.55 | 0.6 | **0.7** |")
    assert lines[3].startswith("| 1 | cddpm-w1 | **4** | **20** | 0.8 | 0.7 | 0.6 |")
    per_class = md.split("### Per class: intra_fd_classifier ↓\n", 1)[1].strip().splitlines()
    assert per_class[0] == "| class | cddpm-w1 | cvae | label-shuffler (ref) |"
    rows = per_class[2 : 2 + K]
    assert [r.split(" | ")[0] for r in rows] == [f"| {c}" for c in range(K)]
    assert rows[3].split(" | ")[1] == "**40**" and rows[7].split(" | ")[2] == "**40**"
    assert "### Per class: cond_accuracy ↑" in md


def test_an_unconditional_suite_shows_only_the_declared_truncation_sweep(report):
    store, out = report
    [board] = build_leaderboards(store.records("uncond"))
    [sweep] = option_sweeps(board)  # the DDIM step rows: steps is not declared a sweep
    assert (sweep.option, sweep.symbol, sweep.values) == ("truncation", "psi", [0.5, 0.7, 1.0])
    assert sweep.models == ["stylegan-psi0.5", "stylegan-psi0.7", "stylegan-psi1"]
    assert sweep.fd == FD and sweep.against == [PREC, REC]
    assert sweep.best == {FD: 1.0, PREC: 0.5, REC: 1.0}
    for name in ("leaderboard.html", "leaderboard.md"):
        text = (out / "uncond" / name).read_text()
        assert "Guidance sweep" not in text and "Per-class" not in text
        assert "Per class" not in text
        assert "Truncation sweep: stylegan-psi0.5, stylegan-psi0.7, stylegan-psi1" in text
    html = (out / "uncond" / "leaderboard.html").read_text()
    [png] = re.findall(r'src="data:image/png;base64,([^"]+)" alt="truncation sweep"', html)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    md = (out / "uncond" / "leaderboard.md").read_text()
    lines = md.split("### Truncation sweep: ", 1)[1].strip().splitlines()
    assert lines[2].startswith("| psi | model | fd_classifier_n1000_train ↓ |")
    assert lines[4].startswith("| 0.5 | stylegan-psi0.5 | 9 | **0.9** | 0.3 |")


def test_the_sweep_figure_stars_the_best_w_of_each_panel(monkeypatch):
    import matplotlib.pyplot as plt

    from bench.report import plots

    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"")
    ws = list(SWEEP)
    col = lambda m: np.array([SWEEP[w][m] for w in ws])  # noqa: E731
    plots.option_sweep(ws, col(FD), FD, {m: col(m) for m in (ACC, PREC, REC)}, BEST, "w")
    [fig] = figures
    assert len(fig.axes) == 3
    for ax, metric in zip(fig.axes, (ACC, PREC, REC), strict=True):
        [star] = ax.collections  # the one scatter: the starred point
        i = ws.index(BEST[metric])
        assert star.get_offsets().tolist() == [[SWEEP[ws[i]][metric], SWEEP[ws[i]][FD]]]
        assert sorted(t.get_text() for t in ax.texts) == ["w=0", "w=1", "w=3"]
        assert ax.get_xlabel().startswith(metric)
    plt.close(fig)
