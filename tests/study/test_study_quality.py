"""The study's quality controls (#26 item 5): attention-check trials with a known answer,
a minimum response time, and the raters they exclude from the scores, counted and said
why; checks look like ordinary trials in the page and every response."""

import numpy as np
import pytest
import requests
import torch
from test_study import SECRET, study_args, truth

from bench.study import store
from bench.study.app import Study, exposure_for
from bench.study.attention import attention_images
from bench.study.config import StudyConfig
from bench.study.plan import ATTENTION, build_pool, rater_trials
from bench.study.quality import exclusions
from bench.study.results import study_scores


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory):
    """test_study's two samples files: noise, and digits' test images."""
    from bench.data import load_dataset
    from bench.imageio import save_npz

    tmp = tmp_path_factory.mktemp("quality-samples")
    noise = torch.randint(0, 256, (120, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    save_npz(tmp / "noise.npz", noise.to(torch.uint8))
    save_npz(tmp / "copy.npz", load_dataset("digits").test.x[:120])
    return tmp


def test_each_rater_gets_the_attention_checks_among_the_scored_trials():
    cfg = StudyConfig(trials=8, practice=2, images=8, attention=3)
    pool = build_pool(cfg, {"a": 20, "b": 20}, 40, SECRET)
    checks = [p for p in pool if p.source == ATTENTION]
    assert len(checks) == 3 and not any(p.practice or p.is_real for p in checks)
    trials = rater_trials(cfg, ["a", "b"], pool, SECRET, "tok")
    assert len(trials) == 2 + 8 + 3 and not any(t.check for t in trials[:2])
    shown = [t for t in trials if t.check]
    assert {t.image_id for t in shown} == {p.id for p in checks}
    assert all(not t.practice and not t.is_real and t.model in ("a", "b") for t in shown)
    places = {
        tuple(t.index for t in rater_trials(cfg, ["a", "b"], pool, SECRET, f"r{k}") if t.check)
        for k in range(20)
    }
    assert len(places) > 10  # shuffled in among the scored trials, somewhere else for each
    assert min(min(p) for p in places) == 2 and max(max(p) for p in places) == 12
    for label in ("a", "b"):  # each model keeps its balanced real and generated trials
        mine = [t for t in trials if t.model == label and not t.check and not t.practice]
        assert len(mine) == 4 and sum(t.is_real for t in mine) == 2


def test_attention_images_are_pixel_noise_with_the_real_images_statistics():
    real = torch.from_numpy(np.random.default_rng(0).integers(0, 120, (500, 1, 8, 8), np.uint8))
    checks = attention_images(200, real, SECRET)
    assert checks.shape == (200, 1, 8, 8) and checks.dtype == torch.uint8
    assert torch.equal(checks, attention_images(200, real, SECRET))  # the same when reopened
    assert not torch.equal(checks, attention_images(200, real, b"another secret"))
    assert abs(checks.double().mean().item() - real.double().mean().item()) < 3


def test_a_check_is_shown_at_the_exposure_of_its_models_trials_and_moves_nothing():
    cfg = StudyConfig(mode="time", trials=16, practice=0, images=16, attention=4, step_ms=50)
    pool = build_pool(cfg, {"m": 40}, 40, SECRET)
    trials = rater_trials(cfg, ["m"], pool, SECRET, "tok")
    study = Study(None, cfg, {}, {"tok"}, SECRET)
    answers = [
        store.Answer(t.index, not t.is_real, False, None, None, None, False, 900.0) for t in trials
    ]  # fmt: skip  (every answer wrong: the staircase rises)
    shown = [exposure_for(study, "tok", trials, answers, t.index) for t in trials]
    assert len(set(shown)) > 1  # it moved
    scored = [i for i, t in enumerate(trials) if not t.check]
    for i, t in enumerate(trials):
        if t.check:
            before = [j for j in scored if j < i]
            block_start = len(before) // cfg.block * cfg.block
            same_block = scored[block_start] if block_start < len(scored) else before[-1]
            assert shown[i] == shown[same_block]
    without_checks = [a for a, t in zip(answers, trials, strict=True) if not t.check]
    plain = [t for t in trials if not t.check]
    renumbered = [
        type(t)(k, t.image_id, t.model, t.is_real, False) for k, t in enumerate(plain)
    ]  # the same rater without the checks: the same staircase
    again = [exposure_for(study, "tok", renumbered, without_checks, k) for k in range(len(plain))]
    assert again == [shown[i] for i in scored]


def rows(token: str, checks_missed: int, rt_ms: float | None, n: int = 6):
    """(token, check, correct, rt_ms) of a rater's 3 checks and n scored answers."""
    out = [(token, True, k >= checks_missed, rt_ms) for k in range(3)]
    return out + [(token, False, True, rt_ms) for _ in range(n)]


def test_exclusion_rules():
    cfg = StudyConfig(attention=3, max_missed=1, min_rt_ms=400)
    answers = rows("ok", 1, 800.0) + rows("careless", 2, 800.0) + rows("fast", 0, 150.0)
    answers += rows("no-times", 0, None)
    gone = exclusions(cfg, answers)
    assert gone.attention == {"careless"} and gone.fast == {"fast", "no-times"}
    assert gone.raters == {"careless", "fast", "no-times"}
    assert exclusions(StudyConfig(), answers).raters == set()  # no controls: nobody


def test_excluded_raters_leave_the_scores_which_say_how_many_and_why(tmp_path):
    """A careless rater (calls everything real, noise included) and a rater who clicks
    through in 100 ms are left out; the careful rater's score remains, and the scores
    count who was left out, for which rule, with how many judgements."""
    cfg = StudyConfig(trials=8, practice=0, images=10, attention=2, min_rt_ms=300)
    pool = build_pool(cfg, {"m": 20}, 20, SECRET)
    db = tmp_path / "s.sqlite"
    tokens = ["careful", "careless", "fast"]
    raters = {t: rater_trials(cfg, ["m"], pool, SECRET, t) for t in tokens}
    store.init_study(db, cfg, ["m"], "digits", SECRET, pool, raters)
    for token, trials in raters.items():
        for t in trials:
            says_real = True if token == "careless" else t.is_real
            rt = 100.0 if token == "fast" else 900.0
            a = store.Answer(t.index, says_real, says_real == t.is_real, None, None, None,
                             False, rt)  # fmt: skip
            assert store.write_answer(db, token, a)
    scores = study_scores(db)["m"]
    assert scores["hype_raters"] == 1 and scores["hype_judgements"] == 8
    assert scores["hype_inf"] == 0.0  # the careful rater's: always right
    assert scores["hype_excluded_raters"] == 2
    assert scores["hype_excluded_attention"] == 1 and scores["hype_excluded_fast"] == 1
    assert scores["hype_excluded_judgements"] == 16  # their 8 scored trials each, no checks


def test_checks_look_like_ordinary_trials_and_exclude_a_careless_rater(
    study_server, sample_files, tmp_path
):
    """Served: a check's trial JSON has the same fields and kinds of value as any scored
    trial's, its image the same byte length, its answer the same reply. A rater who calls
    every image real misses the checks and is excluded; the printed scores say so."""
    out = tmp_path / "out"
    server = study_server(*study_args(sample_files, out, "--attention", "3", "--raters", "2"))
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    checks = {f"/i/{p.id}" for p in store.read_pool(db) if p.source == ATTENTION}
    careful, careless = server.tokens
    seen: dict[bool, list] = {True: [], False: []}
    for token in (careful, careless):
        t = requests.get(f"{server.url}/api/{token}/trial", timeout=30).json()
        while not t["done"]:
            real = is_real[t["image"]] if token == careful else True
            body = {"index": t["index"], "answer": "real" if real else "fake", "rt_ms": 900}
            r = requests.post(f"{server.url}/api/{token}/answer", json=body, timeout=30)
            image = requests.get(server.url + t["image"], timeout=30)
            if not t["practice"]:
                shape = {k: type(v).__name__ for k, v in t.items() if k not in ("index",)}
                seen[t["image"] in checks].append(
                    (
                        shape,
                        t["exposure_ms"],
                        len(image.content),
                        dict(image.headers).keys(),
                        r.status_code,
                        r.content,
                    )  # fmt: skip
                )
            t = requests.get(f"{server.url}/api/{token}/trial", timeout=30).json()
    assert len(seen[True]) == 6  # 3 checks per rater
    ordinary = {repr(s) for s in seen[False]}
    assert {repr(s) for s in seen[True]} <= ordinary
    printed = server.stop()
    assert "excluded 1 rater(s)" in printed and "1 missed attention checks" in printed
    scores = study_scores(db)
    assert all(s["hype_raters"] == 1 and s["hype_inf"] == 0.0 for s in scores.values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--attention", "-1"], "--attention must be at least 0, got -1"),
        (["--min-rt-ms", "-5"], "--min-rt-ms must be at least 0, got -5"),
        (["--attention", "2", "--max-missed", "2"], "--max-missed 2 excludes nobody"),
    ],
)
def test_bad_quality_settings_get_one_line(sample_files, tmp_path, args, message):
    from conftest import run_cli
    from test_study import one_line_error

    res = run_cli("study", *study_args(sample_files, tmp_path / "o", *args), "--score")
    assert message in one_line_error(res)
    assert not (tmp_path / "o").exists()


# -- the live results page -----------------------------------------------------------------


def test_the_results_page_is_the_owners_alone_and_shows_counts_only(
    study_server, sample_files, tmp_path
):
    """`genbench study` prints an owner link to a results page that refreshes itself: per
    model the score so far with its interval, raters, judgements and raters excluded. A
    rater's token (or any other) gets 404 there, the owner's token opens no rater page, no
    rater page or trial holds it, and the page names no rater."""
    out = tmp_path / "out"
    server = study_server(*study_args(sample_files, out, "--attention", "2", "--raters", "3"))
    owner_lines = [line for line in server.head if "/results/" in line]
    assert len(owner_lines) == 1 and owner_lines[0].startswith("  -> http://127.0.0.1:")
    owner = owner_lines[0].strip().rsplit("/", 1)[1]
    assert owner not in server.tokens and len(owner) >= 32
    db = out / "study" / "default.sqlite"
    is_real = truth(db)
    careful, careless, _ = server.tokens
    for token in (careful, careless):
        t = requests.get(f"{server.url}/api/{token}/trial", timeout=30).json()
        while not t["done"]:
            real = is_real[t["image"]] if token == careful else True
            body = {"index": t["index"], "answer": "real" if real else "fake", "rt_ms": 900}
            assert requests.post(f"{server.url}/api/{token}/answer", json=body, timeout=30).ok
            t = requests.get(f"{server.url}/api/{token}/trial", timeout=30).json()
    page = requests.get(f"{server.url}/results/{owner}", timeout=30)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<meta http-equiv="refresh" content="10">' in html
    assert "3 rater links, 2 started, 2 finished" in html
    for model in ("noise", "copy"):  # the careful rater's score alone: always right
        assert f"<tr><td>{model}</td><td>0 [0, 0]</td><td>1</td>\n      <td>4</td>" in html
    assert html.count("1 (1 missed attention checks, 0 too fast)") == 2
    assert "below the HYPE paper&#39;s minimum" in html or "below the HYPE paper's minimum" in html
    for token in server.tokens:
        assert token not in html  # nothing tells raters apart
        assert requests.get(f"{server.url}/results/{token}", timeout=30).status_code == 404
        assert owner not in requests.get(f"{server.url}/s/{token}", timeout=30).text
        assert owner not in requests.get(f"{server.url}/api/{token}/trial", timeout=30).text
    assert requests.get(f"{server.url}/results/nope", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/s/{owner}", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/api/{owner}/trial", timeout=30).status_code == 404
    server.kill()
    again = study_server(*study_args(sample_files, out, "--attention", "2", "--raters", "3"))
    assert any(line.strip().endswith(f"/results/{owner}") for line in again.head)  # kept
