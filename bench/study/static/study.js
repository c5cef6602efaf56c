// One trial: fixation cross, image, (HYPE-time) noise mask, answer. Timing is driven by
// requestAnimationFrame: the image is made visible in one frame callback and hidden in the
// first callback at least (exposure - half a frame) later; the difference of those two
// callbacks' timestamps (performance.now's clock) is the measured exposure, sent with the
// answer. The answer is stored by the server before the next trial is fetched.
"use strict";
(function () {
  const root = document.getElementById("study");
  const token = root.dataset.token;
  const $ = (id) => document.getElementById(id);
  const state = { phase: "intro", trial: null, answerAt: 0, measured: null, frame: null };
  window.genbenchStudy = state;

  function setPhase(p) {
    state.phase = p;
    document.body.dataset.phase = p;
  }
  function show(id, on) { $(id).hidden = !on; }
  function fail(msg) {
    $("error").textContent = msg + " Reload the page to continue where you were.";
    show("error", true);
    setPhase("error");
  }
  function frames(n) {  // timestamps of the next n animation frames
    return new Promise((resolve) => {
      const ts = [];
      const tick = (t) => { ts.push(t); if (ts.length < n) requestAnimationFrame(tick); else resolve(ts); };
      requestAnimationFrame(tick);
    });
  }
  function median(xs) { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }
  function until(ms, start) {  // resolves with the first frame timestamp >= start + ms
    return new Promise((resolve) => {
      const tick = (t) => (t - start >= ms ? resolve(t) : requestAnimationFrame(tick));
      requestAnimationFrame(tick);
    });
  }
  function drawMask() {
    const c = $("mask"), ctx = c.getContext("2d"), img = ctx.createImageData(c.width, c.height);
    for (let i = 0; i < img.data.length; i += 4) {
      const v = Math.random() * 256;
      img.data[i] = v; img.data[i + 1] = Math.random() * 256; img.data[i + 2] = v; img.data[i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  async function next() {
    let trial;
    try {
      const r = await fetch(`/api/${token}/trial`, { cache: "no-store" });
      if (!r.ok) return fail(`The server answered ${r.status}.`);
      trial = await r.json();
    } catch (e) { return fail("The server cannot be reached."); }
    if (trial.done) { show("task", false); show("done", true); setPhase("done"); return; }
    state.trial = trial;
    const stim = $("stimulus");
    stim.hidden = true;
    stim.src = trial.image;
    try { await stim.decode(); } catch (e) { return fail("An image did not load."); }
    const scored = trial.index - trial.n_practice + 1;
    $("progress").textContent = trial.practice
      ? `Practice ${trial.index + 1} of ${trial.n_practice}`
      : `Image ${scored} of ${trial.total - trial.n_practice}`;
    $("feedback").textContent = "";
    if ("class" in trial) $("class").textContent = trial.class;
    await run(trial);
  }

  async function run(trial) {
    setPhase("fixation");
    show("fixation", true); show("mask", false);
    const fix = await frames(Math.max(10, Math.round(trial.fixation_ms / 16.7)));
    const gaps = fix.slice(1).map((t, i) => t - fix[i]);
    state.frame = median(gaps);
    const last = fix[fix.length - 1];
    if (trial.fixation_ms > last - fix[0]) await until(trial.fixation_ms - (last - fix[0]), last);
    await new Promise((resolve) => requestAnimationFrame((tOn) => {
      show("fixation", false);
      $("stimulus").hidden = false;
      state.shownAt = tOn;
      resolve();
    }));
    state.measured = null;
    if (trial.exposure_ms !== null) {
      setPhase("exposure");
      const tOff = await until(trial.exposure_ms - state.frame / 2, state.shownAt);
      $("stimulus").hidden = true;
      drawMask();
      show("mask", true);
      state.measured = tOff - state.shownAt;
      setPhase("mask");
      await until(trial.mask_ms, tOff);
      show("mask", false);
    }
    state.answerAt = performance.now();
    setPhase("answer");
    $("answer-real").disabled = false;
    $("answer-fake").disabled = false;
  }

  async function answer(choice) {
    if (state.phase !== "answer") return;
    setPhase("saving");
    $("answer-real").disabled = true;
    $("answer-fake").disabled = true;
    const trial = state.trial;
    const body = {
      index: trial.index, answer: choice, measured_ms: state.measured,
      frame_ms: state.frame, rt_ms: performance.now() - state.answerAt,
    };
    let reply;
    try {
      const r = await fetch(`/api/${token}/answer`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!r.ok) return fail(`Your answer was not saved (server answered ${r.status}).`);
      reply = await r.json();
    } catch (e) { return fail("Your answer was not saved: the server cannot be reached."); }
    $("stimulus").hidden = true;
    if (reply.feedback) {
      $("feedback").textContent = reply.feedback.correct ? "Correct" : "Wrong";
      setPhase("feedback");
      await frames(45);
    }
    await next();
  }

  $("start").addEventListener("click", () => {
    show("intro", false); show("task", true);
    next();
  });
  $("answer-real").addEventListener("click", () => answer("real"));
  $("answer-fake").addEventListener("click", () => answer("fake"));
  document.addEventListener("keydown", (e) => {
    if (e.key === "r" || e.key === "R") answer("real");
    if (e.key === "f" || e.key === "F") answer("fake");
  });
  fetch(`/api/${token}/trial`, { cache: "no-store" }).then((r) => r.json()).then((t) => {
    $("n-practice").textContent = String(t.n_practice);
    if (t.index > 0) $("start").textContent = t.done ? "See status" : "Continue";
  }).catch(() => {});
})();
