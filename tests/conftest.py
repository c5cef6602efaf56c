import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Extractor weights and reference features go to a per-session cache, not ~/.cache."""
    path = tmp_path_factory.mktemp("genbench-cache")
    os.environ["GENBENCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks train fastest on one thread (and far faster on a busy machine); the
    count is put back after the module, so that no other test inherits it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600, **popen
):
    """Run `python -m bench.cli ...` in a subprocess; the tests folder is importable."""
    # the checkout under test, whatever the cwd (an editable install may point elsewhere)
    path = os.pathsep.join([str(TESTS), str(ROOT)])
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


def write_suite(
    folder: Path,
    models: str,
    *,
    name: str = "tiny",
    datasets: str = "[digits]",
    seeds: str = "[0]",
    n_samples: int = 200,
    steps: int = 3,
    metrics: str = "[fd_pixels]",
    extra: str = "",
) -> Path:
    """A suite file in `folder`; `models` is the YAML list under `models:`, `extra` more
    top-level keys."""
    path = folder / f"{name}.yaml"
    head = textwrap.dedent(f"""\
        name: {name}
        datasets: {datasets}
        seeds: {seeds}
        n_samples: {n_samples}
        budget: {{steps: {steps}}}
        metrics: {metrics}
        """)
    path.write_text(
        head + textwrap.dedent(extra) + "models:\n" + textwrap.indent(textwrap.dedent(models), "  ")
    )
    return path


def job_runs(store, suite: str) -> list:
    """Every job run of a suite in any status (RUNNING, KILLED, ...), straight from MLflow."""
    exp = store.client.get_experiment_by_name(suite).experiment_id
    return store.client.search_runs([exp], "tags.`genbench.kind` = 'job'", max_results=10000)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudyServer:
    """A `genbench study` process: its base URL and the rater links it printed."""

    def __init__(self, proc, url: str, links: list[str], head: list[str]):
        self.proc, self.url, self.links = proc, url, links
        self.head = head  # every line it printed before serving

    @property
    def tokens(self) -> list[str]:
        return [link.rsplit("/", 1)[1] for link in self.links]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> str:
        """Ctrl-C: the server stops and prints the scores; returns its stdout."""
        import signal

        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        return out


@pytest.fixture
def study_server():
    """Start `genbench study ARGS --port P` (a free port unless given); waits until it
    serves. Every process still running at the end of the test is killed."""
    import time
    import urllib.request

    procs = []

    def start(*args: str, port: int | None = None) -> StudyServer:
        port = port or free_port()
        env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cli", "study", *args, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        links, head = [], []
        for line in proc.stdout:
            head.append(line)
            if line.startswith("  http://"):
                links.append(line.strip())
            if line.startswith("Ctrl-C"):
                break
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"genbench study exited: {proc.stderr.read()}")
            try:
                urllib.request.urlopen(url + "/static/study.css", timeout=5).read()
                return StudyServer(proc, url, links, head)
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("genbench study did not start serving")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory):
    """A finished two-model suite output (a plug-in model and the copier) on digits, for
    the study tests; a test module may define its own `suite_out`."""
    from bench.job import RunOptions
    from bench.runner import Runner
    from bench.suite import load_suite

    tmp = tmp_path_factory.mktemp("study-suite")
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
