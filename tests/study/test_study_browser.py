"""The study page in headless Chromium with scripted raters: scores recovered, staircase
threshold recovered, exposure measured, nothing leaks the label, a reload resumes."""

import io
import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from bench.imageio import save_npz
from bench.study import store
from bench.study.results import study_scores

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install chromium chromium-driver); "
    ".ci/run installs it",
)
PHASE = "document.body.dataset.phase"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from bench.data import load_dataset

    tmp = tmp_path_factory.mktemp("browser-study")
    noise = torch.randint(0, 256, (120, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    save_npz(tmp / "noise.npz", noise.to(torch.uint8))
    save_npz(tmp / "copy.npz", load_dataset("digits").test.x[:120])
    return tmp


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield b
        b.close()


def args(files, out, *extra, models=("noise", "copy")):
    samples = [x for m in models for x in ("--samples", f"{m}={files / (m + '.npz')}")]
    return ["--out", str(out), *samples, "--dataset", "digits", "--images", "30", *extra]


def rate(page, url: str, decide, stop_after: int | None = None, dom: dict | None = None) -> int:
    """Open the link and answer every trial with decide(trial) -> True for "real"; returns
    the number of answers given (stops early after `stop_after`). `dom` collects the page's
    HTML as each trial waits for its answer."""
    page.goto(url)
    page.click("#start")
    given = 0
    while stop_after is None or given < stop_after:
        page.wait_for_function(f"['answer', 'done', 'error'].includes({PHASE})", timeout=60_000)
        phase = page.evaluate(PHASE)
        if phase == "done":
            return given
        assert phase == "answer", page.inner_text("#error")
        trial = page.evaluate("window.genbenchStudy.trial")
        if dom is not None:
            dom[trial["index"]] = page.evaluate("document.documentElement.outerHTML")
        page.keyboard.press("r" if decide(trial) else "f")
        given += 1
        page.wait_for_function(
            f"{PHASE} === 'done' || ({PHASE} !== 'saving' && {PHASE} !== 'feedback' && "
            f"window.genbenchStudy.trial.index !== {trial['index']})",
            timeout=60_000,
        )
    return given


def truth(db) -> dict[str, bool]:
    return {f"/i/{p.id}": p.is_real for p in store.read_pool(db)}


def test_scripted_raters_are_recovered_and_nothing_leaks(study_server, files, tmp_path, browser):
    """Two raters answer right with probability 0.75 on `copy` trials and 0.5 on `noise`
    trials. Which trials a rater gets depends on its random token, so whether each answer
    is right is drawn from a generator seeded per rater and model, never from what was
    shown: the judgements' correctness is the same in every run (copy 28/40, noise 20/40)."""
    out = tmp_path / "out"
    server = study_server(
        *args(files, out, "--raters", "2", "--trials", "40", "--practice", "2",
              "--fixation-ms", "50")
    )  # fmt: skip
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    seen: list = []
    for n, (link, token) in enumerate(zip(server.links, server.tokens, strict=True)):
        trials = store.read_trials(db, token)
        rngs = {m: np.random.default_rng([n, k]) for k, m in enumerate(["noise", "copy"])}

        def decide(trial, trials=trials, rngs=rngs):
            t = trials[trial["index"]]
            if t.practice:
                return is_real[trial["image"]]
            u = rngs[t.model].random()
            if t.model == "copy":
                return is_real[trial["image"]] == (u < 0.75)
            return is_real[trial["image"]] == (u < 0.5)  # right half the time

        page = browser.new_page()
        if n == 0:
            page.on("response", lambda r: seen.append(r))
        dom: dict[int, str] = {}
        assert rate(page, link, decide, dom=dom) == 42
        if n == 0:
            leaks = records(seen, dom, trials, is_real)
        page.close()
    scores = study_scores(db)
    copy, noise = scores["copy"], scores["noise"]
    print({m: {k: round(v, 3) for k, v in s.items()} for m, s in scores.items()})
    assert copy["hype_judgements"] == 40 and copy["hype_raters"] == 2
    assert copy["hype_inf_lo"] <= 0.25 <= copy["hype_inf_hi"]  # error 1 - p
    assert copy["hype_inf_hi"] - copy["hype_inf_lo"] < 0.45
    assert noise["hype_inf_lo"] <= 0.5 <= noise["hype_inf_hi"]
    assert abs(noise["hype_inf"] - 0.5) < 0.2
    real_records, fake_records = leaks
    assert len(real_records) == 1 and real_records == fake_records, (real_records, fake_records)


def records(responses, dom, trials, is_real) -> tuple[set, set]:
    """What the browser received and showed per scored trial, with the parts that differ
    between any two trials (random ids, counters, dates) masked: one record per class."""
    by_class: dict[bool, set] = {True: set(), False: set()}
    bodies = {}
    for r in responses:
        path = re.sub(r"^https?://[^/]+", "", r.url)
        if path.startswith("/i/") or "/trial" in path:
            bodies.setdefault(path, []).append(r)
    trial_path = next(p for p in bodies if "/trial" in p)
    for t in (json.loads(r.body()) for r in bodies[trial_path]):
        if t["done"] or trials[t["index"]].practice:
            continue
        img = bodies[t["image"]][0]
        png = img.body()
        pil = Image.open(io.BytesIO(png))
        headers = {k: v for k, v in img.headers.items() if k != "date"}
        fields = {k: v for k, v in t.items() if k not in ("index", "image")}
        page = re.sub(r"/i/[A-Za-z0-9_-]{22}", "ID", dom[t["index"]])
        record = (
            re.sub(r"\d+", "N", page),
            json.dumps(fields, sort_keys=True),
            re.sub(r"[A-Za-z0-9_-]{22}$", "ID", t["image"]),
            len(t["image"]),
            json.dumps(headers, sort_keys=True),
            img.status,
            len(png),
            pil.size,
            pil.mode,
            json.dumps(pil.info, sort_keys=True, default=str),
        )
        by_class[is_real[t["image"]]].add(record)
    return by_class[True], by_class[False]


def test_staircase_rater_threshold_is_recovered(study_server, files, tmp_path, browser):
    """A rater who is right exactly when the exposure is at least 250 ms: HYPE-time lies
    between 250 - step and 250 + (block - 1) * step / 2 (the staircase moves after each
    block of 4 trials, so a block below the threshold lifts it 4 steps at once)."""
    out = tmp_path / "out"
    server = study_server(
        *args(files, out, "--mode", "time", "--trials", "30", "--practice", "0",
              "--start-ms", "400", "--step-ms", "50", "--reversals", "4",
              "--fixation-ms", "100", "--mask-ms", "100", models=("copy",))
    )  # fmt: skip
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    page = browser.new_page()
    rate(page, server.links[0], lambda t: is_real[t["image"]] == (t["exposure_ms"] >= 250))
    page.close()
    s = study_scores(db)["copy"]
    assert 200 <= s["hype_time_ms"] <= 325, s
    answers = store.read_answers(db, server.tokens[0])
    assert {a.exposure_ms for a in answers} >= {400, 300, 200}


def test_measured_exposures(study_server, files, tmp_path, browser):
    """Requested vs measured exposure at 500, 250 and 100 ms (an always-right rater walks
    the staircase 500 -> 250 -> 100). Printed for the README; each flag must agree with
    its measurement."""
    out = tmp_path / "out"
    server = study_server(
        *args(files, out, "--mode", "time", "--trials", "14", "--practice", "0",
              "--start-ms", "500", "--step-ms", "250", "--min-ms", "100",
              "--fixation-ms", "200", "--mask-ms", "100", models=("copy",))
    )  # fmt: skip
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    page = browser.new_page()
    rate(page, server.links[0], lambda t: is_real[t["image"]])
    page.close()
    answers = store.read_answers(db, server.tokens[0])
    table = {}
    for a in answers:
        assert a.measured_ms is not None and a.frame_ms is not None
        assert a.flagged == (abs(a.measured_ms - a.exposure_ms) > min(a.frame_ms, 1000 / 30))
        table.setdefault(a.exposure_ms, []).append(a.measured_ms)
    assert set(table) == {500, 250, 100}
    for requested, measured in sorted(table.items()):
        assert 0.5 * requested < np.median(measured) < 1.5 * requested
        print(
            f"requested {requested} ms: measured median {np.median(measured):.1f}, "
            f"min {min(measured):.1f}, max {max(measured):.1f} (n={len(measured)}, "
            f"frame {np.median([a.frame_ms for a in answers]):.2f} ms)"
        )


def test_reload_and_server_restart_resume(study_server, files, tmp_path, browser):
    from playwright.sync_api import expect

    out = tmp_path / "out"
    study = args(files, out, "--trials", "8", "--practice", "0", "--fixation-ms", "50")
    server = study_server(*study)
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    page = browser.new_page()
    assert rate(page, server.links[0], lambda t: is_real[t["image"]], stop_after=3) == 3
    port = int(server.url.rsplit(":", 1)[1])
    server.kill()
    assert len(store.read_answers(db, server.tokens[0])) == 3
    study_server(*study, port=port)
    page.reload()
    # the label comes from the page's own fetch of the trial, which may land after "load"
    expect(page.locator("#start")).to_have_text("Continue", timeout=60_000)
    page.click("#start")
    page.wait_for_function(f"{PHASE} === 'answer'", timeout=60_000)
    assert page.evaluate("window.genbenchStudy.trial.index") == 3
    assert "Image 4 of 8" in page.inner_text("#progress")
    page.close()
