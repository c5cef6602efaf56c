"""The HTML report in a real browser: every image loads and the leaderboard is visible."""

import shutil
import textwrap

import pytest

from bench.job import RunOptions
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install chromium chromium-driver); "
    ".ci/run installs it",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    suite = tmp / "s.yaml"
    suite.write_text(
        textwrap.dedent("""\
        name: browser
        datasets: [digits]
        n_samples: 200
        budget: {steps: 5}
        metrics: [fd_classifier, class_coverage, memorization, throughput]
        models:
          - name: mean
            model: plugin_models:MeanModel
          - name: copier
          - name: pixel-gaussian
    """)
    )
    runner = Runner(load_suite(suite), RunOptions(tmp / "out"))
    runner.run()
    write_report(runner.store, tmp / "out", "browser")
    return tmp / "out" / "leaderboard.html"


def test_every_image_loads_and_the_table_is_visible(report, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(report.as_uri())
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])"
        )
        assert len(images) >= 7  # 3 sample grids, 3 neighbour grids, plots
        broken = [alt for complete, width, alt in images if not (complete and width > 0)]
        assert broken == []
        assert page.is_visible("table")
        assert page.inner_text("table >> nth=0").count("mean") >= 1
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
