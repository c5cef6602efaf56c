"""The study's web app: the page, its script, the images and two JSON calls per trial.

Nothing the browser receives before an answer depends on whether the image is real: the
trial JSON has the same fields for every trial, image URLs are random ids, every image is
a PNG of one byte length served from memory with the same headers, and the label never
leaves the server (the answer is checked there). A study that shows classes sends every
trial's class (a generated image's asked class, a real image's label), matched in the plan
so that it says nothing about which is which. The results page (/results/OWNER) is for
the person running the study: its token is not a rater's and no rater page holds it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from bench.study import store
from bench.study.config import StudyConfig
from bench.study.live import live_rows, rater_progress
from bench.study.plan import Trial
from bench.study.staircase import next_exposure, staircase_input

HERE = Path(__file__).resolve().parent
NO_STORE = {"Cache-Control": "no-store"}
MAX_FRAME_MS = 1000 / 30  # a frame estimate longer than this is a stalled page, not a display
RESULTS_REFRESH_S = 10


@dataclass
class Study:
    db: Path
    cfg: StudyConfig
    images: dict[str, bytes]  # opaque id -> PNG
    tokens: set[str]
    secret: bytes  # keys the trial orders and HYPE-time's staircases; never sent
    classes: dict[str, int] | None = None  # opaque id -> class shown (cfg.show_class)
    owner: str = ""  # the token of the results page (/results/OWNER); never sent to raters
    trials: dict[str, list[Trial]] = field(default_factory=dict)

    def rater_trials(self, token: str) -> list[Trial]:
        if token not in self.tokens:
            raise HTTPException(404, "unknown study link")
        if token not in self.trials:
            self.trials[token] = store.read_trials(self.db, token)
        return self.trials[token]


class AnswerIn(BaseModel):
    index: int
    answer: Literal["real", "fake"]
    measured_ms: float | None = None
    frame_ms: float | None = None
    rt_ms: float | None = None


def exposure_for(
    study: Study, token: str, trials: list[Trial], answers: list[store.Answer], i: int
) -> int | None:
    """Requested exposure of trial i: none in HYPE-infinity; in HYPE-time the start value
    for practice, else the level of the staircase of the trial's model over this rater's
    answers to that model's earlier blocks of trials (an attention check: the level the
    model's trials around it are shown at; checks never move a staircase)."""
    cfg, trial = study.cfg, trials[i]
    if cfg.mode == "inf":
        return None
    if trial.practice:
        return cfg.start_ms
    mine = [t.index for t in trials if not (t.practice or t.check) and t.model == trial.model]
    before = sum(j < i for j in mine)
    done = mine[: before // cfg.block * cfg.block]
    earlier = [(answers[j].correct, answers[j].flagged) for j in done]
    return next_exposure(staircase_input(earlier, cfg, study.secret, token, trial.model), cfg)


def create_app(study: Study) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    cfg = study.cfg

    @app.get("/s/{token}", response_class=HTMLResponse)
    def page(request: Request, token: str):
        study.rater_trials(token)
        return templates.TemplateResponse(
            request, "study.html", {"cfg": cfg, "token": token}, headers=NO_STORE
        )

    @app.get("/api/{token}/trial")
    def trial(token: str):
        trials = study.rater_trials(token)
        answers = store.read_answers(study.db, token)
        i = len(answers)
        body = {
            "done": i >= len(trials),
            "index": i,
            "total": len(trials),
            "n_practice": sum(t.practice for t in trials),
            "mode": cfg.mode,
            "fixation_ms": cfg.fixation_ms,
            "mask_ms": cfg.mask_ms if cfg.mode == "time" else 0,
        }
        if i < len(trials):
            t = trials[i]
            body |= {
                "practice": t.practice,
                "image": f"/i/{t.image_id}",
                "exposure_ms": exposure_for(study, token, trials, answers, i),
            }
            if study.classes is not None:
                body["class"] = str(study.classes[t.image_id])
        return JSONResponse(body, headers=NO_STORE)

    @app.post("/api/{token}/answer")
    def answer(token: str, a: AnswerIn):
        trials = study.rater_trials(token)
        answers = store.read_answers(study.db, token)
        if not 0 <= a.index < len(trials) or a.index > len(answers):
            raise HTTPException(409, "not the current trial; reload the page")
        t = trials[a.index]
        correct = (a.answer == "real") == t.is_real
        if a.index < len(answers):  # resent after a lost reply: already stored
            return JSONResponse(_reply(t, answers[a.index].correct), headers=NO_STORE)
        exposure = exposure_for(study, token, trials, answers, a.index)
        flagged = False
        if exposure is not None and not t.practice:
            frame = min(a.frame_ms or MAX_FRAME_MS, MAX_FRAME_MS)
            flagged = a.measured_ms is None or abs(a.measured_ms - exposure) > frame
        row = store.Answer(
            a.index,
            a.answer == "real",
            correct,
            exposure,
            a.measured_ms,
            a.frame_ms,
            flagged,
            a.rt_ms,
        )
        if not store.write_answer(study.db, token, row):
            raise HTTPException(409, "not the current trial; reload the page")
        return JSONResponse(_reply(t, correct), headers=NO_STORE)

    @app.get("/results/{owner}", response_class=HTMLResponse)
    def results(request: Request, owner: str):
        if not study.owner or not hmac.compare_digest(owner.encode(), study.owner.encode()):
            raise HTTPException(404, "unknown study link")
        issued, started, finished = rater_progress(study.db)
        context = {"cfg": cfg, "rows": live_rows(study.db), "refresh_s": RESULTS_REFRESH_S}
        context |= {"issued": issued, "started": started, "finished": finished}
        return templates.TemplateResponse(request, "results.html", context, headers=NO_STORE)

    @app.get("/i/{image_id}")
    def image(image_id: str):
        png = study.images.get(image_id)
        if png is None:
            raise HTTPException(404, "no such image")
        return Response(png, media_type="image/png", headers=NO_STORE)

    return app


def _reply(t: Trial, correct: bool) -> dict:
    """Practice answers get feedback; scored ones get none (as in the paper)."""
    return {"ok": True, "feedback": ({"correct": correct} if t.practice else None)}
